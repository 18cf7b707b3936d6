"""The graph lane: keep the neighbour graph current as tasks are encoded, and propagate labels over it.

Two plain functions (no RQ here; ``backend.jobs`` runs them on the graph queue, the study calls them
directly):

* :func:`update_graph`: builds the current encoder's graph once (``backend.graph.build_graph`` over every
  stored embedding), later adds the tasks encoded since (exact search both ways; an existing task's
  neighbour list only changes where a new task is closer than its 10th neighbour). Never runs on the
  training path.
* :func:`spread_project`: label spreading over the stored graph, warm-started from the newest snapshot's
  distributions, written as a new snapshot (once, not per head version: :func:`spread_snapshot`); then the
  fast lane's code (``backend.training.train_project``) publishes a head that names it, under the usual
  publish rule, so ``/setup`` and ``/predict`` always serve one coherent version (:func:`publish_naming`).

Both hold the project's graph lock, so an update and a propagation never overlap. The graph and the
snapshot can also be made for an encoder that is not current yet (``version``): a regrow builds its
candidate's before switching to it (``backend.regrow``), so the first head after the switch uses them.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field

import numpy as np
from threadpoolctl import threadpool_limits

from backend import graph
from backend.config import Config
from backend.store import Store
from backend.training import TrainResult, train_project

log = logging.getLogger(__name__)


@dataclass
class LaneResult:
    """What one graph update or propagation did (returned as the RQ job's result)."""

    project: int
    status: str  # "built", "added", "unchanged", "spread", "skipped"
    reason: str = ""
    tasks: int = 0
    added: int = 0
    changed: int = 0
    snapshot: int = 0
    sweeps: int = 0
    seconds: float = 0.0
    published: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


def update_graph(store: Store, config: Config, pid: int, version: str | None = None) -> LaneResult:
    """Build the current encoder's graph, or add the tasks encoded since it was built (see the module).

    Args:
        version: build or grow this encoder version's graph instead (a regrow's candidate, not current yet).
    """
    t0 = time.perf_counter()
    result = LaneResult(project=pid, status="skipped")
    encoder = store.encoder_info(pid, version) if version else store.current_encoder(pid)
    if encoder is None:
        result.reason = f"the project has no encoder {version}" if version else "the project has no encoder yet"
        return result
    ids, X = store.all_embeddings(pid, encoder.version)
    meta = store.graph_meta(pid, encoder.version)
    result.tasks = len(ids)
    if len(ids) < 2:
        result.reason = f"{len(ids)} embeddings"
        return result
    threads = max(1, config.graph_threads)
    with threadpool_limits(threads):
        if meta is None:
            std = graph.Standardizer.fit(X)
            rows = graph.build_graph(ids, std(X), threads=threads)
            meta = {"k": graph.K, "mean": std.mean.tolist(), "scale": std.scale.tolist(), "tasks": len(ids),
                    "built_at": time.time(), "build_seconds": round(time.perf_counter() - t0, 3)}
            store.put_graph_rows(pid, encoder.version, rows, meta, whole=True)
            result.status, result.added = "built", len(ids)
        else:
            std = graph.Standardizer(np.asarray(meta["mean"], np.float32), np.asarray(meta["scale"], np.float32))
            old = store.read_graph(pid, encoder.version, int(meta.get("k", graph.K)))
            keep = graph.index_of(ids, old.ids) >= 0  # rows whose embedding went (forgotten) take no part
            old = graph.Neighbours(old.ids[keep], old.nbr[keep], old.dist[keep])
            in_graph = graph.index_of(old.ids, ids) >= 0
            if in_graph.all():
                result.status = "unchanged"
                result.seconds = time.perf_counter() - t0
                return result
            # all_embeddings and read_graph both list task ids ascending, so X[in_graph] lines up with old;
            # new tasks usually have the highest ids: then the existing vectors are a view, not a copy
            n_old = int(in_graph.sum())
            X_old = X[:n_old] if in_graph[:n_old].all() else X[in_graph]
            new_rows, changed = graph.add_to_graph(old, X_old, ids[~in_graph], X[~in_graph], k=old.nbr.shape[1],
                                                   threads=threads, transform=std)
            meta = dict(meta, tasks=len(ids), added_at=time.time())
            store.put_graph_rows(pid, encoder.version, new_rows)
            store.put_graph_rows(pid, encoder.version, changed, meta)
            result.status, result.added, result.changed = "added", len(new_rows), len(changed)
    result.seconds = time.perf_counter() - t0
    log.info("project %s: graph %s (%d tasks, +%d, %d changed, %.2fs)", pid, result.status, result.tasks,
             result.added, result.changed, result.seconds)
    return result


def spread_project(store: Store, config: Config, pid: int) -> LaneResult:
    """Propagate the labels over the stored graph into a new snapshot, then publish a head naming it."""
    t0 = time.perf_counter()
    result = spread_snapshot(store, config, pid)
    if result.status != "spread":
        return result
    result.published = publish_naming(store, config, pid, result.snapshot).as_dict()
    result.seconds = time.perf_counter() - t0
    log.info("project %s: spread snapshot %d (%d tasks, %d sweeps, %.2fs) -> %s", pid, result.snapshot,
             result.tasks, result.sweeps, result.seconds, result.published.get("status"))
    return result


def spread_snapshot(store: Store, config: Config, pid: int, version: str | None = None) -> LaneResult:
    """Propagate the labels over the current encoder's stored graph into a new snapshot; publish nothing.

    Args:
        version: spread over this encoder version's graph instead (a regrow's candidate, not current yet);
            the snapshot names it, so only heads of that encoder use it.
    """
    t0 = time.perf_counter()
    result = LaneResult(project=pid, status="skipped")
    generation = store.generation(pid)  # before the labels, as training does
    classes = list(store.project(pid).get("classes") or [])
    labels = store.labels(pid)
    if classes:
        labels = {t: v for t, v in labels.items() if v in classes}
    encoder = store.encoder_info(pid, version) if version else store.current_encoder(pid)
    if encoder is None or not labels:
        result.reason = "no encoder yet" if encoder is None else "no labels"
        return result
    meta = store.graph_meta(pid, encoder.version)
    if meta is None:
        result.reason = "no graph yet (it is built after encoding)"
        return result
    rows = store.read_graph(pid, encoder.version, int(meta.get("k", graph.K)))
    result.tasks = len(rows)
    seen = set(labels.values())
    order = [c for c in classes if c in seen] or sorted(seen)  # the regression's classes (backend.heads.logreg)
    lab_ids = np.fromiter(labels.keys(), np.int64, len(labels))
    pos = graph.index_of(rows.ids, lab_ids)  # read_graph lists task ids ascending
    hit = pos >= 0
    if not hit.any():
        result.reason = "no labeled task is in the graph yet"
        return result
    index = {c: i for i, c in enumerate(order)}
    targets = np.array([index[labels[int(t)]] for t in lab_ids[hit]], np.int64)
    start = None
    previous = store.latest_snapshot(pid, encoder.version)
    if previous is not None and list(previous.get("classes", [])) == order:
        prev_ids, prev_rows = store.all_snapshot_rows(pid, previous)
        start = np.zeros((len(rows), len(order)), np.float32)
        at = graph.index_of(rows.ids, prev_ids)
        start[at[at >= 0]] = prev_rows[at >= 0]
    with threadpool_limits(max(1, config.graph_threads)):
        S = graph.propagation_matrix(rows)
        dist, result.sweeps = graph.spread(S, pos[hit], targets, len(order), start=start, sweeps=config.spread_sweeps)
    snap = store.put_snapshot(pid, rows.ids, dist, {
        "encoder_version": encoder.version, "classes": order, "generation": generation, "labels": int(hit.sum()),
        "sweeps": result.sweeps, "warm": start is not None, "seconds": round(time.perf_counter() - t0, 3)})
    result.status, result.snapshot = "spread", int(snap["snapshot"])
    result.seconds = time.perf_counter() - t0
    return result


def publish_naming(store: Store, config: Config, pid: int, snapshot: int) -> TrainResult:
    """Publish a head with the fast lane's code (it names the current encoder's newest snapshot); once the
    served head names ``snapshot``, drop the older snapshots, so one copy of the per-task rows stays at rest."""
    published = train_project(store, config, pid)
    newest = store.versions(pid)[:1]
    if snapshot and newest and newest[0].get("snapshot") == snapshot:
        store.drop_snapshots_before(pid, snapshot)
    return published
