"""Retrain a project's encoder once the project has grown well past the images it was trained on.

Why: ``dalt encode`` trains the encoder on the tasks present at that moment; a project imported in parts
(or one that drifts) is later encoded by an encoder that never saw most of it. When the current encoder
has encoded ``DALT_ENCODER_REGROW`` times (2x) as many tasks as it was trained on (:func:`regrow_due`, three
commands whatever the project's size), the ``TASKS_CREATED`` encoding job queues :func:`regrow_encoder`
(``backend.jobs.regrow_encoder_job``), which:

1. trains a candidate encoder on all the project's tasks (the bulk path: ``backend.bulk``), stored
   beside the current one but NOT current, and encodes every task with it;
2. compares the two on the labels annotators gave: cross-validated logistic-regression accuracy on the
   labeled tasks' vectors (the study's measure of what a head can learn from them);
3. switches the project to the candidate only if it is not worse (:func:`switch_encoder`): the candidate's
   neighbour graph and spread snapshot are built first, with the graph lane's own functions, so the head
   published right after the switch is already the graph-based one (never a regression-only head while
   the graph lane catches up). Otherwise the candidate is dropped.

Until the switch, predictions keep using the current encoder and head.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import numpy as np

from backend.config import Config
from backend.store import Store

log = logging.getLogger(__name__)


@dataclass
class RegrowResult:
    """What a regrow run did (the RQ job's return value)."""

    project: int
    status: str  # "switched", "kept" (candidate worse), "skipped" (no encoder / not grown)
    old_version: str | None = None
    new_version: str | None = None
    old_accuracy: float | None = None
    new_accuracy: float | None = None
    labels: int = 0
    trained_on: int = 0
    graph: str = ""  # the candidate's graph build before the switch ("built", or why "skipped")
    snapshot: int = 0  # the spread snapshot of the candidate made before the switch (0: none, e.g. no labels)
    head_version: str | None = None  # the head published right after the switch
    head_training_queued: bool = False  # no head could be published in the job: the fast lane follows
    spread_queued: bool = False  # labels arrived during the job: the graph lane brings the snapshot up to date

    def as_dict(self) -> dict:
        return asdict(self)


def regrow_due(store: Store, config: Config, pid: int) -> bool:
    """Whether the current encoder has encoded ``encoder_regrow`` times the tasks the project held when it was
    trained (its training sample is capped by ``--train-limit``, so the sample size would regrow forever).

    Every new-task job asks, so the answer costs three commands whatever the project's size: the encoder's
    embedding count is kept by the store in the same Lua steps that write and clear embedding slots
    (``backend.store.embeddings``), so it stays exact with several encoding jobs at once (a task counts once,
    when its slot first gets a vector) and with deleted tasks (forgetting one takes it off). An encoder
    stored before counts were kept is counted once, on its first check, and its count kept from then on.
    """
    if config.encoder_regrow <= 0:
        return False
    info = store.current_encoder(pid)
    trained_at = info.meta.get("project_tasks") or info.meta.get("samples") if info is not None else None
    if info is None or not trained_at:
        return False
    encoded = store.encoded_count(pid, info.version, info.dim)
    return encoded >= config.encoder_regrow * int(trained_at)


def held_out_accuracy(vectors: np.ndarray, labels: list[str], seed: int = 0) -> float | None:
    """Cross-validated logistic-regression accuracy (up to 5 stratified folds); None: too few labels."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    _, counts = np.unique(np.asarray(labels), return_counts=True)
    folds = min(5, int(counts.min())) if len(counts) >= 2 else 0
    if folds < 2:
        return None
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
    return float(cross_val_score(model, vectors, np.asarray(labels), cv=cv).mean())


def _labeled(store: Store, pid: int, version: str, dim: int, labels: dict[int, str]) -> tuple[np.ndarray, list[str]]:
    ids = sorted(labels)
    vectors, found = store.get_embeddings(pid, version, ids, dim)
    return vectors[found], [labels[t] for t, ok in zip(ids, found, strict=True) if ok]


def compare_encoders(store: Store, pid: int, old: str, new: str) -> tuple[float | None, float | None, int]:
    """Held-out accuracy of the old and new encoder's vectors on the tasks labeled under both."""
    labels = store.labels(pid)
    old_info, new_info = store.encoder_info(pid, old), store.encoder_info(pid, new)
    if not labels or old_info is None or new_info is None:
        return None, None, len(labels)
    _, found_old = store.get_embeddings(pid, old, sorted(labels), old_info.dim)
    _, found_new = store.get_embeddings(pid, new, sorted(labels), new_info.dim)
    both = {t: labels[t] for t, a, b in zip(sorted(labels), found_old, found_new, strict=True) if a and b}
    xo, yo = _labeled(store, pid, old, old_info.dim, both)
    xn, yn = _labeled(store, pid, new, new_info.dim, both)
    return held_out_accuracy(xo, yo), held_out_accuracy(xn, yn), len(both)


def regrow_encoder(store: Store, config: Config, pid: int) -> RegrowResult:
    """Train a candidate encoder on all tasks, encode them, and switch only if it is not worse (see above)."""
    from backend import bulk
    from encoder.pipeline import TaskEncoder

    info = store.current_encoder(pid)
    if info is None:
        return RegrowResult(pid, "skipped")
    meta = info.meta
    opts = bulk.EncodeOptions(project=pid, progress=False, objective=meta.get("objective") or None,
                              latent_dim=info.dim, image_size=int(meta.get("image_size", 28)))
    objective = opts.objective or config.encoder_objective
    tasks = bulk.load_tasks(opts, config, store, False)
    image_key = store.project(pid).get("image_key") or None
    fetcher = bulk.make_fetcher(opts, config, store)
    try:
        artifact, pre, pre_failed = bulk.train_for_project(
            opts, objective, tasks, fetcher, image_key, config.max_image_pixels, False, config.train_budget()
        )
        store.put_encoder(pid, artifact.version, artifact.to_bytes(), {**artifact.meta(), "project_tasks": len(tasks)},
                          current=False)
        encoder = TaskEncoder(artifact, fetcher, image_key, max_pixels=config.max_image_pixels,
                              max_decode_bytes=config.max_decode_bytes)
        summary = bulk.EncodeSummary(project=pid)
        bulk.encode_all(store, pid, artifact, encoder, tasks, pre, pre_failed, summary, opts.batch_size, False, None)
    finally:
        fetcher.close()
    old_acc, new_acc, n_labels = compare_encoders(store, pid, info.version, artifact.version)
    result = RegrowResult(pid, "switched", info.version, artifact.version, old_acc, new_acc, n_labels,
                          int(artifact.info.get("samples", 0)))
    if old_acc is not None and new_acc is not None and new_acc < old_acc:
        store.drop_encoder(pid, artifact.version)
        result.status = "kept"
        log.info("project %s: candidate encoder %s dropped (held-out accuracy %.3f < %.3f)", pid,
                 artifact.version, new_acc, old_acc)
        return result
    switch_encoder(store, config, pid, artifact.version, result)
    log.info("project %s: encoder %s -> %s (trained on %d tasks), head %s names snapshot %d", pid, info.version,
             artifact.version, result.trained_on, result.head_version, result.snapshot)
    return result


def switch_encoder(store: Store, config: Config, pid: int, version: str, result: RegrowResult) -> None:
    """Make the stored candidate ``version`` current with its graph, spread snapshot and head ready.

    Why in this order: a head can only be published for the current encoder (the publish rule,
    ``backend.store.heads``), but the graph and the snapshot can be made before: the graph lane's functions
    take the version. The graph is built outside the graph lock (the lane only writes the current
    encoder's graph, never a candidate's). The spread, the switch and the publish hold the lock, so no
    graph-lane run of the old encoder can drop the candidate's snapshot in between (it keeps the newest
    two, and drops older ones once a head names its own). Until the publish a moment later, ``/predict``
    keeps serving the old head with the old encoder's embeddings (each head names its encoder), so every
    answer stays coherent. No graph update is queued after: the graph holds every candidate embedding,
    and the encoder's later ones queue their own. Should the graph or the snapshot fail, the candidate is
    switched to anyway and the graph lane builds them afterwards, as it would for any new encoder.
    """
    from backend.graphlane import publish_naming, spread_snapshot, update_graph
    from backend.jobs import TRAIN_LOCK_TTL, held
    from backend.queueing import enqueue_graph_update, enqueue_spreading, enqueue_training, job_queue

    ready = False
    try:
        lane = update_graph(store, config, pid, version)
        ready = lane.status != "skipped"
        result.graph = lane.status if ready else f"skipped: {lane.reason}"
    except Exception:  # noqa: BLE001 - the candidate won: switch anyway, the graph lane builds the graph after
        log.exception("project %s: the graph of encoder %s could not be built before the switch", pid, version)
        result.graph = "failed"
    published = None
    with held(store.graph_lock(pid, ttl=TRAIN_LOCK_TTL)):
        if ready:
            try:
                result.snapshot = spread_snapshot(store, config, pid, version).snapshot
            except Exception:  # noqa: BLE001 - as above: the head after the switch names no snapshot then
                log.exception("project %s: no spread snapshot of encoder %s before the switch", pid, version)
        store.make_encoder_current(pid, version)
        try:
            published = publish_naming(store, config, pid, result.snapshot)
        except Exception:  # noqa: BLE001 - the switch is done; the fast lane publishes instead
            log.exception("project %s: no head published after the switch to %s", pid, version)
    if result.graph == "failed":
        enqueue_graph_update(store, config, pid)
    if published is not None and published.status == "published":
        result.head_version = published.version
        if published.spread_behind:  # labels arrived during the job (or the spread failed): the lane follows
            result.spread_queued = bool(enqueue_spreading(store, config, pid))
    else:
        result.head_training_queued = enqueue_training(store, job_queue(config, store), pid, config)
