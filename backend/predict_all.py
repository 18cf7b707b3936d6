"""``dalt predict``: the current version's predictions for every task, written to Label Studio in bulk.

Why: Label Studio's "Retrieve predictions" sends all selected tasks to ``/predict`` in one request with a
100 s timeout, and the label stream asks task by task; neither gets predictions onto a million tasks, and
bulk accept filters on stored prediction scores. This computes the predictions from the cached embeddings
(the same head and calibrated score ``/predict`` serves), skips tasks that already have a prediction of
this version (so an interrupted run resumes), and writes the rest in batches through the project's
import-predictions endpoint (one request per batch instead of one per task). Every written suggestion
is remembered like ``/predict``'s (``Store.record_served``), so the live evaluation compares it with the
annotation that follows.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from backend.calibration import bin_of, calibrate
from backend.heads import load_head
from backend.labelconfig import ClassificationConfig
from backend.labelstudio import LabelStudioAccess, import_predictions, prediction_versions
from backend.predict import spread_for
from backend.projects import Projects
from backend.store import Store

BATCH = 1000


@dataclass
class CurrentPredictions:
    """The current version's suggestion for every unlabeled task with an embedding."""

    version: str
    meta: dict[str, Any]
    labels: dict[int, tuple[str, float]]  # task id -> (label, calibrated score)
    labeled: int  # tasks skipped: already labeled


def current_predictions(store: Store, pid: int) -> CurrentPredictions:
    """Predict every cached embedding's task with the served version (labeled tasks left out).

    Raises:
        LookupError: the project has no head yet.
    """
    version = store.current_version(pid)
    record = store.head(pid, version) if version else None
    if record is None:
        raise LookupError(f"project {pid} has no model version yet: label some tasks first")
    head, meta = load_head(record.blob), record.meta
    ids, X = store.all_embeddings(pid, meta.get("encoder_version") or "")
    done = store.labels(pid)
    keep = ~np.isin(ids, np.fromiter(done.keys(), np.int64, len(done)))
    ids, X = ids[keep], X[keep]
    spread = spread_for(store, pid, head, ids) if len(ids) else None  # the graph lane's rows, as /predict reads
    labels, raw = head.predict(X, ids, spread) if len(ids) else ([], np.zeros(0))
    scores = calibrate(meta, raw)
    out = {int(t): (str(lab), round(float(s), 4)) for t, lab, s in zip(ids, labels, scores, strict=True)}
    return CurrentPredictions(version, meta, out, int((~keep).sum()))


def prediction_body(cfg: ClassificationConfig, task: int, label: str, score: float, version: str) -> dict[str, Any]:
    """One Label Studio prediction, shaped as ``/predict`` shapes it."""
    return {"task": task, "model_version": version, "score": score,
            "result": [{"from_name": cfg.from_name, "to_name": cfg.to_name, "type": "choices",
                        "value": {"choices": [label]}, "score": score}]}


@dataclass
class PushResult:
    """What one ``dalt predict`` run did."""

    project: int
    version: str
    written: int = 0
    skipped: int = 0  # already had a prediction of this version (or any, with missing_only)
    labeled: int = 0
    seconds: float = 0.0

    @property
    def tasks_per_second(self) -> float:
        return self.written / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "tasks_per_second": round(self.tasks_per_second, 1)}


def push_predictions(store: Store, access: LabelStudioAccess, pid: int, *, missing_only: bool = False,
                     batch: int = BATCH, progress: bool = True) -> PushResult:
    """Write the current version's predictions for every unlabeled task that lacks one (see module docstring).

    Args:
        missing_only: skip tasks with a prediction of ANY version (default: only of the current one).
    """
    t0 = time.perf_counter()
    cfg = Projects(store).config(pid)
    current = current_predictions(store, pid)
    url, key = str(access.url), str(access.api_key)
    existing = prediction_versions(url, key, pid)
    todo = [t for t in sorted(current.labels)
            if not (existing.get(t) and (missing_only or current.version in existing[t]))]
    res = PushResult(pid, current.version, skipped=len(current.labels) - len(todo), labeled=current.labeled)
    bar = tqdm(total=len(todo), desc=f"predict project {pid}", unit="task", disable=not progress)
    for start in range(0, len(todo), batch):
        chunk = todo[start : start + batch]
        bodies = [prediction_body(cfg, t, *current.labels[t], current.version) for t in chunk]
        res.written += import_predictions(url, key, pid, bodies)
        store.record_served(pid, {t: {"version": current.version, "label": current.labels[t][0],
                                      "score": current.labels[t][1], "bin": bin_of(current.labels[t][1])}
                                  for t in chunk})
        bar.update(len(chunk))
    bar.close()
    res.seconds = time.perf_counter() - t0
    return res
