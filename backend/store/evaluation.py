"""Live evaluation: what ``/predict`` suggested per task, and how annotators answered each suggestion.

``/predict`` records its suggestion per task; when the task's annotation arrives, ``lua/record_outcome.lua``
counts it as accepted or corrected for the suggesting version, once per suggestion (an update of the
annotation does not count again; a new suggestion does), and adds the annotation's lead time. See
``backend.evaluation`` for why and for the summary.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from backend.store import keys
from backend.store.base import StoreBase
from backend.store.scripts import Batch, Reply


def _outcome(raw: Any) -> str | None:
    return raw.decode() if raw else None


class EvaluationParts(StoreBase):
    """Served suggestions and their outcomes."""

    def record_served(self, pid: int, served: Mapping[int, Mapping[str, Any]]) -> None:
        """Remember what was suggested for each task, to compare with the annotation that follows."""
        if served:
            self.r.hset(keys.served(pid), mapping={int(t): json.dumps(dict(v)) for t, v in served.items()})

    def served(self, pid: int, task_id: int) -> dict | None:
        """What /predict last suggested for a task (None if nothing)."""
        raw = self.r.hget(keys.served(pid), int(task_id))
        return json.loads(raw) if raw else None

    def record_outcome_in(
        self, batch: Batch, pid: int, task_id: int, label: str, lead_time: float | None = None, bulk: bool = False
    ) -> Reply[str | None]:
        """Queue :meth:`record_outcome` on ``batch``."""
        lead = "" if lead_time is None else repr(float(lead_time))
        args = [int(task_id), label, lead, "1" if bulk else ""]
        return batch.script("record_outcome", [keys.served(pid), keys.evaluation(pid)], args, decode=_outcome)

    def record_outcome(
        self, pid: int, task_id: int, label: str, lead_time: float | None = None, bulk: bool = False
    ) -> str | None:
        """Compare a submitted label with what /predict served for the task, in one round trip.

        Counts the outcome per version and per score bin of the served (calibrated) score.

        Args:
            bulk: the annotation was made from the prediction in bulk: no evidence, only marked ``"bulk"``.

        Returns:
            ``"accepted"``, ``"corrected"`` or ``"bulk"`` (counted for the served version), or None when
            nothing was served for the task or that suggestion was already evaluated (an update).
        """
        return self._alone(self.record_outcome_in, pid, task_id, label, lead_time, bulk)

    def record_annotation_and_outcome(
        self, pid: int, annotation_id: int, task_id: int, label: str | None, lead_time: float | None = None
    ) -> tuple[bool, str | None | Exception]:
        """``record_annotation`` and, for a label, :meth:`record_outcome` in ONE round trip.

        The outcome is best effort: a failure comes back as the exception (the label itself is recorded
        or its error raised).

        Returns:
            ``(label changed, outcome or None or the exception the outcome raised)``.
        """
        batch = self.batch()
        changed = self.record_annotation_in(batch, pid, annotation_id, task_id, label)  # type: ignore[attr-defined]
        outcome = self.record_outcome_in(batch, pid, task_id, label, lead_time) if label else None
        batch.execute()
        if outcome is None:
            return changed.value, None
        return changed.value, outcome.error or outcome.value

    def evaluation(self, pid: int) -> dict[str, dict[str, float]]:
        """Live-evaluation counters by model version: ``{version: {"accepted": n, "accepted:lead_sum": s, ...}}``."""
        out: dict[str, dict[str, float]] = {}
        for k, v in self.r.hgetall(keys.evaluation(pid)).items():
            version, _, rest = k.decode().partition(":")
            out.setdefault(version, {})[rest] = float(v)
        return out
