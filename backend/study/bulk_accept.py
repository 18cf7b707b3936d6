"""The study's bulk-accept replay: at 100, 200, 500 and 1,000 human labels, what ``dalt accept`` would
accept of the remaining tasks for each precision target, and how right it would be.

The threshold comes from exactly the evidence ``dalt accept`` uses (``backend.accept``): the version's
held-out calibration evidence plus the live evaluation's per-bin counts recorded so far; the remaining
tasks' true labels only measure the outcome (coverage, realised precision, expected calibration error).
Self-training (does training on the accepted labels help the tasks still left to people?) is measured at
the 500-label checkpoint by refitting the head with and without the accepted labels.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from backend.accept import evidence_for
from backend.calibration import METHODS, Evidence, calibrate, pick_threshold, pick_threshold_expected
from backend.config import Config
from backend.heads import Head, fit_head
from backend.predict import spread_for
from backend.store import Store
from backend.training import train_project

BULK_CHECKPOINTS = (100, 200, 500, 1000)
BULK_TARGETS = (0.99, 0.995)
SELF_TRAINING_AT = 500
DEFAULT = METHODS[0]  # the method `dalt accept` uses by default


def checkpoint(store: Store, pid: int, head: Head, meta: dict[str, Any], X: np.ndarray, ids: np.ndarray,
               truth: np.ndarray, spread: tuple[np.ndarray, np.ndarray] | None = None) -> dict[str, Any]:
    """Bulk accept on the remaining tasks (``X``, ``ids``, ``truth``) with the current version.

    ``spread``: the snapshot rows of ``ids`` for heads that use the graph lane's snapshot (as /predict reads them).
    """
    pred, raw = head.predict(X, ids, spread)
    scores = calibrate(meta, raw).astype(float)
    right = np.asarray(pred) == truth
    ev = evidence_for(store, pid, meta)
    rest_ev = Evidence.of(scores, right)
    out: dict[str, Any] = {"remaining": len(truth), "ece": rest_ev.ece(), "raw_ece": Evidence.of(raw, right).ece(),
                           "reliability": rest_ev.table(), "evidence": int(ev.n.sum()), "method": DEFAULT,
                           "targets": {}, "other_methods": {}}
    for method in METHODS:
        for target in BULK_TARGETS:
            t, bound = pick_threshold(ev, target) if method == "bound" else pick_threshold_expected(ev, scores, target)
            taken = scores >= t if t is not None else np.zeros(len(scores), bool)
            row = {
                "threshold": t, "estimate": round(bound, 5), "coverage": float(taken.mean()) if len(taken) else 0.0,
                "accepted": int(taken.sum()), "wrong": int((taken & ~right).sum()),
                "realised_precision": float(right[taken].mean()) if taken.any() else None,
                "expected_wrong": float((1 - scores[taken]).sum()),
            }
            if method == DEFAULT:
                out["targets"][f"{target:g}"] = row
            else:
                out["other_methods"].setdefault(method, {})[f"{target:g}"] = row
    return out


def self_training(head_name: str, X_lab: np.ndarray, y_lab: list[str], classes: list[str], X_rest: np.ndarray,
                  ids_rest: np.ndarray, truth: np.ndarray, accepted: np.ndarray, pseudo: list[str],
                  unlabeled: np.ndarray, unlabeled_ids: np.ndarray) -> dict[str, Any]:
    """Accuracy on the tasks NOT accepted (what people still label) of heads fit without / with the accepted
    labels as training labels."""
    left = ~accepted
    out = {"accepted": int(accepted.sum()), "left": int(left.sum())}
    for name, (Xf, yf) in {"off": (X_lab, y_lab),
                           "on": (np.vstack([X_lab, X_rest[accepted]]), [*y_lab, *np.asarray(pseudo)[accepted]])
                           }.items():
        head = fit_head(head_name, Xf, yf, classes, unlabeled=unlabeled, unlabeled_ids=unlabeled_ids)
        pred, _ = head.predict(X_rest[left], ids_rest[left])
        out[f"left_accuracy_{name}"] = float(np.mean(np.asarray(pred) == truth[left])) if left.any() else None
    return out


def calibration_cost(store: Store, pid: int, config: Config) -> dict[str, float]:
    """Seconds of one training run with and without calibration (same labels; the run itself publishes
    nothing new: its generation is not newer)."""
    out = {}
    for name, folds in (("without", 0), ("with", config.calibration_folds)):
        t0 = time.perf_counter()
        cfg = Config(redis_url=config.redis_url, head=config.head, calibration_folds=folds, calibration_growth=0)
        train_project(store, cfg, pid, threads=1)
        out[f"train_seconds_{name}"] = round(time.perf_counter() - t0, 4)
    out["ratio"] = round(out["train_seconds_with"] / max(out["train_seconds_without"], 1e-9), 2)
    return out


def at_checkpoint(store: Store, pid: int, config: Config, n: int, head: Head, meta: dict[str, Any],
                  stored: np.ndarray, task_ids: np.ndarray, order: np.ndarray, labels: np.ndarray,
                  classes: list[str]) -> dict[str, Any] | None:
    """Everything the study measures about bulk accept after ``n`` human labels (None off checkpoints)."""
    if n not in BULK_CHECKPOINTS or n >= len(order):
        return None
    rest, done = order[n:], order[:n]
    spread = spread_for(store, pid, head, task_ids[rest])
    out = checkpoint(store, pid, head, meta, stored[rest], task_ids[rest], labels[rest], spread)
    if n == SELF_TRAINING_AT:
        t = out["targets"][f"{BULK_TARGETS[0]:g}"]["threshold"]
        pred, raw = head.predict(stored[rest], task_ids[rest], spread)
        accepted = calibrate(meta, raw) >= t if t is not None else np.zeros(len(rest), bool)
        out["self_training"] = self_training(config.head, stored[done], [str(v) for v in labels[done]], classes,
                                             stored[rest], task_ids[rest], labels[rest], accepted, pred,
                                             stored, task_ids)
    if n == max(BULK_CHECKPOINTS):
        out["calibration_cost"] = calibration_cost(store, pid, config)
    return out


def summary(detail: dict[str, dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """The report's ``bulk_accept``: ``{labels: {target: {threshold, coverage, realised_precision}}}``."""
    return {n: {t: {k: v[k] for k in ("threshold", "coverage", "realised_precision")}
                for t, v in d["targets"].items()} for n, d in detail.items()}
