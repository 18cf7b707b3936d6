"""Live evaluation: how often annotators keep the pre-annotation, per model version, and how long they take.

Why: the labeling study measures DALT on datasets with known answers; in production the only ground
truth is what annotators submit. ``/predict`` remembers what it suggested for each task
(``Store.record_served``); when the annotation arrives, the webhook's ledger records its outcome, which
counts it as *accepted* (submitted label == suggested label) or *corrected* for the version that made the
suggestion, and adds the annotation's ``lead_time`` (seconds Label Studio measured the annotator working)
to that bucket. The mean lead time of accepted vs corrected tasks is the time a correct pre-annotation saves.

Only the first annotation after a suggestion counts (an update of the same annotation does not count
twice). One Lua script, in the same round trip as the label itself (``backend.ledger``): the webhook
stays fast. :func:`record_outcome` does the same for callers outside the webhook (the labeling study).
Each outcome is also counted per bin of the served (calibrated) score, with the scores' sum: the
reliability table (expected vs observed share right per bin, ``backend.calibration``) from real
annotators. Bulk-accepted annotations (made from the prediction itself) are counted apart as ``bulk``
and are no evidence. ``/metrics`` exposes the counters and ``dalt report`` (``backend.report``) prints them.
"""

from __future__ import annotations

import logging
from typing import Any

from backend.calibration import Evidence
from backend.events import finite_lead_time
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
        return store.record_outcome(pid, task_id, label, finite_lead_time(lead_time))
    except Exception:  # evaluation is best effort: the label itself is already recorded
        log.warning("project %s: could not record the live evaluation of task %s", pid, task_id, exc_info=True)
        return None


def _version_number(version: str) -> int:
    return int(version[1:]) if version[1:].isdigit() else -1


def _summarize(counts: dict[str, float]) -> dict[str, Any]:
    acc, cor = counts.get("accepted", 0.0), counts.get("corrected", 0.0)
    out: dict[str, Any] = {"accepted": int(acc), "corrected": int(cor), "evaluated": int(acc + cor),
                           "acceptance_rate": acc / (acc + cor) if acc + cor else None,
                           "bulk": int(counts.get("bulk", 0.0))}
    evidence = Evidence.from_counters(counts)  # per served-score bin: expected vs observed (reliability)
    out["reliability"], out["ece"] = evidence.table(), evidence.ece()
    for o in OUTCOMES:
        n = counts.get(f"{o}:lead_n", 0.0)
        out[f"lead_time_{o}_mean"] = counts.get(f"{o}:lead_sum", 0.0) / n if n else None
        out[f"lead_time_{o}_sum"] = counts.get(f"{o}:lead_sum", 0.0)
        out[f"lead_time_{o}_count"] = int(n)
    return out


def evaluation_summary(store: Store, pid: int) -> dict[str, Any]:
    """Per version (oldest first) and in total: accepted, corrected, acceptance rate, mean lead times."""
    return summarize_evaluation(store.evaluation(pid))


def summarize_evaluation(raw: dict[str, dict[str, float]]) -> dict[str, Any]:
    """:func:`evaluation_summary` of counters already read (``Store.evaluation``, ``Store.overview``)."""
    versions = {v: _summarize(raw[v]) for v in sorted(raw, key=_version_number)}
    total: dict[str, float] = {}
    for counts in raw.values():
        for k, v in counts.items():
            total[k] = total.get(k, 0.0) + v
    return {"versions": versions, "total": _summarize(total)}
