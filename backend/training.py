"""Train one project's head from the labels and embeddings in the store, and publish it.

A plain function (no RQ here) so the labeling study, the benchmarks and the job share one code path.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass

import numpy as np
from threadpoolctl import threadpool_limits

from backend.calibration import version_calibration
from backend.config import Config
from backend.heads import fit_head, head_kind
from backend.store import Store

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """What one training run did (returned as the RQ job's result)."""

    project: int
    status: str  # "published", "stale", "skipped"
    reason: str = ""
    version: str | None = None
    generation: int = 0
    labels: int = 0
    seconds: float = 0.0
    snapshot: int = 0  # the spread snapshot the head averages in (0: none)
    spread_behind: bool = False  # the newest snapshot predates these labels: the graph lane should run

    def as_dict(self) -> dict:
        return asdict(self)


def train_project(store: Store, config: Config, pid: int, *, threads: int = 1) -> TrainResult:
    """Fit a head on every labeled task that has an embedding, and publish it as a new version.

    The generation is read BEFORE the labels, so a label that arrives during the fit makes the published
    head look older than the labels, and the run that label queued publishes after this one.

    Args:
        threads: BLAS threads for the fit; one is fastest for these small problems on a shared machine.
    """
    t0 = time.perf_counter()
    generation = store.generation(pid)
    project = store.project(pid)
    classes = list(project.get("classes") or [])
    labels = store.labels(pid)
    result = TrainResult(project=pid, status="skipped", generation=generation)
    encoder = store.current_encoder(pid)
    if encoder is None:
        result.reason = "the project has no encoder yet: run `dalt encode`"
        return result
    min_labels = int(project.get("min_annotations") or 0)
    if classes:
        labels = {t: v for t, v in labels.items() if v in classes}
    bulk = store.bulk_tasks(pid)  # bulk-accepted labels: training on them is a setting, calibrating never
    if bulk and not config.train_on_bulk:
        labels = {t: v for t, v in labels.items() if t not in bulk}
    if not labels or len(labels) < max(1, min_labels):
        result.reason = f"{len(labels)} labels, {max(1, min_labels)} needed"
        return result
    task_ids = np.fromiter(labels.keys(), dtype=np.int64, count=len(labels))
    X, found = store.get_embeddings(pid, encoder.version, task_ids, encoder.dim)
    if not found.any():
        result.reason = f"none of the {len(labels)} labeled tasks has an embedding yet"
        return result
    y = [labels[int(t)] for t in task_ids[found]]
    kind = head_kind(config.head)
    unlabeled = unlabeled_ids = snapshot = None
    if kind.needs_unlabeled:  # the rebuild-per-fit head learns from every embedding (O(project) per fit)
        unlabeled_ids, unlabeled = store.all_embeddings(pid, encoder.version)
    if kind.uses_snapshot:  # the fast lane: only the newest spread snapshot's metadata, never its rows
        snapshot = store.latest_snapshot(pid, encoder.version)
        result.spread_behind = snapshot is None or int(snapshot.get("generation", -1)) < generation
    with threadpool_limits(threads):
        head = fit_head(
            config.head,
            X[found],
            y,
            classes or sorted(set(y)),
            unlabeled=unlabeled,
            unlabeled_ids=unlabeled_ids,
            snapshot=snapshot,
        )
        calibration = version_calibration(store, config, pid, head, encoder.version, X[found], y, task_ids[found],
                                          bulk, unlabeled=unlabeled, unlabeled_ids=unlabeled_ids,
                                          snapshot=snapshot)
    fit_seconds = time.perf_counter() - t0
    meta = {
        "head": head.kind,
        "classes": head.classes,
        "labels": int(found.sum()),
        "labels_without_embedding": int((~found).sum()),
        "encoder_version": encoder.version,
        "dim": encoder.dim,
        "train_seconds": round(fit_seconds, 4),
        "calibration": calibration,
    }
    result.snapshot = int(getattr(head, "snapshot", 0))
    if result.snapshot:
        meta["snapshot"] = result.snapshot
    version = store.publish_head(pid, head.to_bytes(), meta, generation)
    result.labels = int(found.sum())
    result.seconds = time.perf_counter() - t0
    if version is None:
        result.status, result.reason = "stale", "a head trained on newer labels is already current"
    else:
        result.status, result.version = "published", version
    log.info("project %s: training %s %s (%d labels, %.3fs)", pid, result.status, version or "", result.labels,
             result.seconds)
    return result
