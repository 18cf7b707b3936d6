"""Live evaluation: how often annotators keep the pre-annotation, per model version, and how long they take.

Why: the labeling study measures DALT on datasets with known answers; in production the only ground
truth is what annotators submit. ``/predict`` remembers what it suggested for each task
(``Store.record_served``); when the annotation arrives, the webhook calls :func:`record_outcome`, which
counts it as *accepted* (submitted label == suggested label) or *corrected* for the version that made the
suggestion, and adds the annotation's ``lead_time`` (seconds Label Studio measured the annotator working)
to that bucket. The mean lead time of accepted vs corrected tasks is the time a correct pre-annotation saves.

Only the first annotation after a suggestion counts (an update of the same annotation does not count
twice). One Lua call, one round trip: the webhook stays fast. ``/metrics`` exposes the counters and
``scripts/report.py`` prints them.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from backend.store import Store

log = logging.getLogger(__name__)
OUTCOMES = ("accepted", "corrected")


def record_outcome(store: Store, pid: int, task_id: int, label: str | None, lead_time: object = None) -> str | None:
    """Count whether ``label`` kept the prediction served for ``task_id``; never raises.

    Args:
        label: the submitted class (None for a cancelled or empty annotation: not counted).
        lead_time: the annotation's ``lead_time`` from the webhook payload (ignored unless a finite number >= 0).

    Returns:
        ``"accepted"``, ``"corrected"``, or None (nothing served, already counted, no label, or Redis failed).
    """
    if label is None:
        return None
    try:
        return store.record_outcome(pid, task_id, label, _lead(lead_time))
    except Exception:  # evaluation is best effort: the label itself is already recorded
        log.warning("project %s: could not record the live evaluation of task %s", pid, task_id, exc_info=True)
        return None


def record_label_and_outcome(
    store: Store, pid: int, annotation_id: int, task_id: int, label: str | None, lead_time: object = None
) -> tuple[bool, str | None]:
    """Record an annotation's label and its live evaluation in one round trip (the webhook's hot path).

    Returns:
        ``(label changed, outcome)`` as :meth:`Store.record_annotation` and :func:`record_outcome`.
    """
    changed, outcome = store.record_annotation_and_outcome(pid, annotation_id, task_id, label, _lead(lead_time))
    if isinstance(outcome, Exception):  # evaluation is best effort: the label itself is recorded
        log.warning("project %s: could not record the live evaluation of task %s: %s", pid, task_id, outcome)
        return changed, None
    return changed, outcome


def _lead(lead_time: object) -> float | None:
    """The annotation's lead_time when it is a finite number >= 0."""
    if isinstance(lead_time, int | float) and not isinstance(lead_time, bool):
        if math.isfinite(lead_time) and lead_time >= 0:
            return float(lead_time)
    return None


def _version_number(version: str) -> int:
    return int(version[1:]) if version[1:].isdigit() else -1


def _summarize(counts: dict[str, float]) -> dict[str, Any]:
    acc, cor = counts.get("accepted", 0.0), counts.get("corrected", 0.0)
    out: dict[str, Any] = {"accepted": int(acc), "corrected": int(cor), "evaluated": int(acc + cor),
                           "acceptance_rate": acc / (acc + cor) if acc + cor else None}
    for o in OUTCOMES:
        n = counts.get(f"{o}:lead_n", 0.0)
        out[f"lead_time_{o}_mean"] = counts.get(f"{o}:lead_sum", 0.0) / n if n else None
        out[f"lead_time_{o}_sum"] = counts.get(f"{o}:lead_sum", 0.0)
        out[f"lead_time_{o}_count"] = int(n)
    return out


def evaluation_summary(store: Store, pid: int) -> dict[str, Any]:
    """Per version (oldest first) and in total: accepted, corrected, acceptance rate, mean lead times."""
    raw = store.evaluation(pid)
    versions = {v: _summarize(raw[v]) for v in sorted(raw, key=_version_number)}
    total: dict[str, float] = {}
    for counts in raw.values():
        for k, v in counts.items():
            total[k] = total.get(k, 0.0) + v
    return {"versions": versions, "total": _summarize(total)}
