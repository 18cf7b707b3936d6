"""Bulk accept: tasks whose label was accepted from a prediction in bulk, and the audit of the last run.

``P:bulk`` holds each bulk-accepted task's label until a person labels the task (``lua/review_bulk.lua``);
``P:audit`` holds the audit sample of the last ``dalt accept`` run, each task ``pending`` until a person's
label on it ``confirmed`` or ``corrected`` the accepted one; ``P:accept`` holds that run (target,
threshold, promised error rate). See ``backend.accept``.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from backend.store import keys
from backend.store.base import StoreBase
from backend.store.scripts import Batch, Reply


def _verdict(raw: Any) -> str | None:
    return raw.decode() if raw else None


class AcceptParts(StoreBase):
    """Bulk-accepted tasks and the audit of the last accept run."""

    def mark_bulk_in(self, batch: Batch, pid: int, labels: Mapping[int, str]) -> None:
        """Queue: these tasks' labels were accepted from predictions in bulk (no person looked)."""
        if labels:
            batch.command("hset", keys.bulk_tasks(pid), mapping={int(t): v for t, v in labels.items()})

    def review_bulk_in(self, batch: Batch, pid: int, task_id: int, label: str) -> Reply[str | None]:
        """Queue: a person labeled ``task_id`` (ends its bulk state; an audit verdict if it was sampled)."""
        return batch.script("review_bulk", [keys.bulk_tasks(pid), keys.audit(pid)], [int(task_id), label],
                            decode=_verdict)

    def bulk_tasks(self, pid: int) -> set[int]:
        """Task ids whose current label was bulk-accepted and no person has labeled since."""
        return {int(t) for t in self.r.hkeys(keys.bulk_tasks(pid))}

    def save_accept_run(self, pid: int, run: Mapping[str, Any], audit: Iterable[int]) -> None:
        """Replace the last accept run and its audit sample (every sampled task ``pending``)."""
        pipe = self.r.pipeline(transaction=False)  # one-off CLI write; a Redis Cluster has no MULTI across calls
        pipe.delete(keys.audit(pid))
        sample = {int(t): "pending" for t in audit}
        if sample:
            pipe.hset(keys.audit(pid), mapping=sample)
        pipe.set(keys.accept_run(pid), json.dumps(dict(run)))
        pipe.execute()

    def accept_run(self, pid: int) -> dict[str, Any] | None:
        """The last accept run with its audit counts (``pending``, ``confirmed``, ``corrected``), or None."""
        raw = self.r.get(keys.accept_run(pid))
        if not raw:
            return None
        run = json.loads(raw)
        counts = Counter(v.decode() for v in self.r.hvals(keys.audit(pid)))
        run["audit_counts"] = {k: counts.get(k, 0) for k in ("pending", "confirmed", "corrected")}
        return run
