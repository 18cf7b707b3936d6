"""Bulk accept with a known error rate: which tasks ``dalt accept`` accepts for a precision target.

Methods (stated in docs/bulk-accept.md). The evidence is every human-checked suggestion the current
version's scores speak for: the version's held-out calibration pairs (``backend.calibration``: each label
predicted by a head fit without it) plus the live evaluation's per-bin counts (suggestions annotators
later kept or corrected; bulk-accepted labels are not evidence). The threshold is the lowest score-bin
edge ``t`` (with evidence in its bin) where

* ``expected`` (the default): the accepted tasks' mean calibrated score (their expected precision) AND
  the evidence's observed precision at scores >= ``t`` both reach the target
  (:func:`backend.calibration.pick_threshold_expected`);
* ``bound``: the evidence at scores >= ``t`` has a one-sided 95% Clopper-Pearson lower bound on precision
  of at least the target (:func:`backend.calibration.pick_threshold`): a stronger guarantee that needs
  hundreds of right suggestions per threshold, so it accepts nothing early on.

The expected number of wrong labels among the accepted tasks is the sum of ``1 - score``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from backend.calibration import Evidence, pick_threshold, pick_threshold_expected
from backend.store import Store

AUDIT_SHARE = 0.01
AUDIT_MIN = 50


def evidence_for(store: Store, pid: int, meta: dict[str, Any]) -> Evidence:
    """Held-out calibration evidence of the version plus the live per-bin counts of every version."""
    total: dict[str, float] = {}
    for counts in store.evaluation(pid).values():
        for k, v in counts.items():
            total[k] = total.get(k, 0.0) + v
    return Evidence.from_dict((meta.get("calibration") or {}).get("evidence")) + Evidence.from_counters(total)


@dataclass
class AcceptPlan:
    """What ``dalt accept`` would accept: threshold, tasks, per-class coverage, audit sample."""

    project: int
    version: str
    target: float
    threshold: float | None
    estimate: float  # the expected precision (method "expected") or its lower bound ("bound") at the threshold
    evidence: int
    method: str = "expected"
    tasks: list[int] = field(default_factory=list)
    per_class: dict[str, int] = field(default_factory=dict)
    expected_wrong: float = 0.0
    predicted: int = 0
    audit: list[int] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """Everything but the task lists (what is saved and printed)."""
        d = asdict(self)
        d.pop("tasks"), d.pop("audit")
        d.update(accepted=len(self.tasks), audit_size=len(self.audit),
                 coverage=len(self.tasks) / self.predicted if self.predicted else 0.0,
                 promised_error_rate=1 - self.target)
        return d


def plan_accept(store: Store, pid: int, version: str, meta: dict[str, Any], predictions: dict[int, tuple[str, float]],
                target: float, audit_share: float = AUDIT_SHARE, audit_min: int = AUDIT_MIN,
                seed: int = 0, method: str = "expected") -> AcceptPlan:
    """Pick the threshold for ``target`` and the tasks whose prediction of ``version`` scores at least it.

    Args:
        predictions: task id -> (label, calibrated score) of ``version`` (tasks already labeled excluded).
    """
    ev = evidence_for(store, pid, meta)
    if method == "bound":
        t, estimate = pick_threshold(ev, target)
    else:
        t, estimate = pick_threshold_expected(ev, np.array([s for _, s in predictions.values()]), target)
    plan = AcceptPlan(pid, version, target, t, round(estimate, 5), int(ev.n.sum()), method,
                      predicted=len(predictions))
    if t is None:
        return plan
    chosen = sorted(tid for tid, (_, s) in predictions.items() if s >= t)
    plan.tasks = chosen
    plan.per_class = dict(Counter(predictions[tid][0] for tid in chosen).most_common())
    plan.expected_wrong = round(float(sum(1 - predictions[tid][1] for tid in chosen)), 2)
    size = min(len(chosen), max(audit_min, int(np.ceil(audit_share * len(chosen)))))
    rng = np.random.default_rng(seed)
    plan.audit = sorted(int(x) for x in rng.choice(chosen, size=size, replace=False)) if size else []
    return plan


@dataclass
class AcceptResult:
    """What ``dalt accept`` did: the plan, the tabs it created, the annotations it asked for."""

    plan: AcceptPlan
    tab: int | None = None
    audit_tab: int | None = None
    applied: int = 0
    previous_model_version: str | None = None  # the project's model version before (restored after --apply)

    def as_dict(self) -> dict[str, Any]:
        return {**self.plan.summary(), "tab": self.tab, "audit_tab": self.audit_tab, "applied": self.applied,
                "previous_model_version": self.previous_model_version}


def run_accept(store: Store, access: Any, pid: int, target: float, *, dry_run: bool = False, apply: bool = False,
               audit_share: float = AUDIT_SHARE, audit_min: int = AUDIT_MIN, seed: int = 0,
               batch: int = 1000, method: str = "expected") -> AcceptResult:
    """Plan bulk accept for ``target``; unless ``dry_run``, create the two data manager tabs (accept, audit)
    and record the run (its audit sample is what ``dalt report`` measures the realised error on); with
    ``apply``, run "Create Annotations From Predictions" on the accepted tasks through the API.

    The accepted tasks need this version's predictions in Label Studio (``dalt predict``) for the tab's
    score filter and the action. The project's model version is set to this version (the data manager's
    score reads only that version's predictions); ``apply`` restores the previous one afterwards.
    """
    import time

    from backend.labelstudio import (
        create_tab,
        id_tab_filters,
        predictions_to_annotations,
        score_tab_filters,
        set_model_version,
    )
    from backend.predict_all import current_predictions

    current = current_predictions(store, pid)
    plan = plan_accept(store, pid, current.version, current.meta, current.labels, target, audit_share, audit_min,
                       seed, method)
    result = AcceptResult(plan)
    if dry_run or plan.threshold is None or not plan.tasks:
        return result
    url, key = str(access.url), str(access.api_key)
    result.previous_model_version = set_model_version(url, key, pid, current.version)
    pct = f"{100 * target:g}%"
    result.tab = create_tab(url, key, pid, f"DALT accept {pct} ({current.version}, score >= {plan.threshold:g})",
                            score_tab_filters(plan.threshold, current.version))
    result.audit_tab = create_tab(url, key, pid, f"DALT audit {pct} ({len(plan.audit)} tasks)",
                                  id_tab_filters(plan.audit))
    store.save_accept_run(pid, {**plan.summary(), "tab": result.tab, "audit_tab": result.audit_tab,
                                "created_at": time.time()}, plan.audit)
    if apply:
        for start in range(0, len(plan.tasks), batch):
            chunk = plan.tasks[start : start + batch]
            predictions_to_annotations(url, key, pid, chunk, current.version)
            result.applied += len(chunk)
        if result.previous_model_version and result.previous_model_version != current.version:
            set_model_version(url, key, pid, result.previous_model_version)
    return result


def format_accept(result: AcceptResult) -> str:
    """What ``dalt accept`` prints: method, threshold, coverage per class, expected wrong labels, tabs."""
    p = result.plan
    how = ("expected precision of the accepted tasks and observed precision of the evidence" if p.method == "expected"
           else "one-sided 95% Clopper-Pearson lower bound on the evidence's precision")
    lines = [f"project {p.project} ({p.version}): target precision {p.target:g}, evidence {p.evidence} "
             f"human-checked suggestions (held-out + live); method {p.method}: {how}"]
    if p.threshold is None:
        lines.append("  no score threshold reaches the target: label more tasks")
        return "\n".join(lines)
    cov = len(p.tasks) / p.predicted if p.predicted else 0.0
    what = "expected precision" if p.method == "expected" else "lower bound"
    lines.append(f"  threshold: score >= {p.threshold:g} ({what} {p.estimate:.4f})")
    lines.append(f"  accepts {len(p.tasks)} of {p.predicted} unlabeled tasks ({100 * cov:.1f}%), "
                 f"expected wrong labels {p.expected_wrong:.1f}")
    lines.append("  per class: " + ", ".join(f"{c} {n}" for c, n in p.per_class.items()))
    if result.tab is not None:
        lines.append(f"  tab {result.tab}: run 'Create Annotations From Predictions' on it (model version {p.version})")
        if not result.applied and result.previous_model_version != p.version:
            lines.append(f"  the project's model version is now {p.version} (the tab's score filter reads it); set it "
                         f"back to {result.previous_model_version or 'the ML backend'} in the project settings after "
                         "the action, so annotators get live suggestions again")
        lines.append(f"  audit tab {result.audit_tab}: {len(p.audit)} random accepted tasks for a person to review")
    if result.applied:
        lines.append(f"  created {result.applied} annotations from predictions")
    return "\n".join(lines)
