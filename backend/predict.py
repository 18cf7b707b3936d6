"""The /predict path: cached embeddings -> head (cached in-process by version) -> pre-annotations.

The default head holds no per-task data: the requested tasks' rows of the spread snapshot it names are read
from Redis in the same round trip as their embeddings (``backend.heads.snapshot``), so a cached head costs
kilobytes whatever the project's size.

Label Studio swallows a failed /predict without retrying, so every task of a batch gets an answer: a
task that cannot be predicted gets an empty result rather than failing its neighbours.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np

from backend.cache import ByteLRU
from backend.calibration import bin_of, calibrate
from backend.heads import Head, SnapshotSpreadingHead, load_head
from backend.labelconfig import ClassificationConfig
from backend.store import Store

log = logging.getLogger(__name__)

# The version /setup and /predict report before a project's first head exists.
NO_MODEL_VERSION = "v0"


def head_bytes(entry: tuple[Head, dict]) -> int:
    """What a cached head costs: its arrays' bytes (a spreading head over 1M tasks is tens of MB)."""
    head, meta = entry
    return 1024 + sum(int(a.nbytes) for a in head.arrays.values()) + 64 * len(head.classes)


class HeadCache:
    """Deserialized heads by (project, version), bounded in bytes (``DALT_HEAD_CACHE_BYTES``): a version
    never changes, so no invalidation is needed; a head larger than the budget is served but not kept."""

    def __init__(self, max_bytes: int = 256 * 2**20):
        self._heads: ByteLRU[tuple[int, str], tuple[Head, dict]] = ByteLRU(max_bytes, head_bytes, name="heads")
        self._hints: ByteLRU[int, tuple[str, int]] = ByteLRU(1 << 20, lambda h: 128 + len(h[0]), name="hints")

    @property
    def total_bytes(self) -> int:
        """What the cached heads cost now."""
        return self._heads.total_bytes

    def encoder_hint(self, pid: int) -> tuple[str, int, int, int] | None:
        """(encoder version, dim, snapshot id, snapshot classes) of the head last served for ``pid``: what the
        next request will likely need to read."""
        return self._hints.get(pid)

    def set_encoder_hint(self, pid: int, encoder_version: str, dim: int, snapshot: int = 0, classes: int = 0
                         ) -> None:
        self._hints.put(pid, (encoder_version, dim, snapshot, classes))

    def get(self, store: Store, pid: int, version: str) -> tuple[Head, dict] | None:
        key = (pid, version)
        hit = self._heads.get(key)
        if hit is not None:
            return hit
        record = store.head(pid, version)
        if record is None:
            return None
        return self._heads.put(key, (load_head(record.blob), record.meta))


def snapshot_of(head: Head) -> tuple[int, int]:
    """(spread snapshot id, its classes) whose rows ``head`` averages in; (0, 0) for heads without one."""
    if isinstance(head, SnapshotSpreadingHead) and head.snapshot:
        return head.snapshot, head.snapshot_classes
    return 0, 0


def spread_for(store: Store, pid: int, head: Head, task_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """The snapshot rows ``head`` needs for ``task_ids`` (one round trip), or None when it uses none."""
    snap, classes = snapshot_of(head)
    return store.snapshot_rows(pid, snap, task_ids, classes) if snap else None


def _task_id(task: object) -> int | None:
    if isinstance(task, dict):
        tid = task.get("id")
        if isinstance(tid, int) and not isinstance(tid, bool) and tid >= 0:
            return tid
    return None


def predict_tasks(
    store: Store,
    heads: HeadCache,
    pid: int,
    cfg: ClassificationConfig,
    tasks: list,
    encode_missing: Callable[[list[dict]], dict[int, np.ndarray]] | None = None,
    encode_limit: int = 64,
) -> tuple[str, list[dict]]:
    """Predict one batch of Label Studio tasks.

    Args:
        encode_missing: called with the tasks that have no cached embedding (at most ``encode_limit`` of
            them, so one huge uncached batch cannot stall the request); returns vectors by task id.

    Returns:
        ``(model_version, results)`` with exactly one result per task, in order.
    """
    ids = [_task_id(t) for t in tasks]
    valid = [i for i, t in enumerate(ids) if t is not None]
    valid_ids = [ids[i] for i in valid]
    hint = heads.encoder_hint(pid)
    vecs = ok = spread = None
    if hint is not None and valid:  # the usual case: version check, embeddings, snapshot rows in one round trip
        version, vecs, ok, spread = store.current_version_and_embeddings(
            pid, hint[0], valid_ids, hint[1], snapshot=hint[2:] if hint[2] else None)
    else:
        version = store.current_version(pid)
    entry = heads.get(store, pid, version) if version else None
    if entry is None:
        return version or NO_MODEL_VERSION, [empty_prediction(version or NO_MODEL_VERSION) for _ in tasks]
    head, meta = entry
    enc_version = meta.get("encoder_version")
    dim = int(meta.get("dim") or 0)
    X = np.zeros((len(tasks), dim), np.float32)
    found = np.zeros(len(tasks), bool)
    snap, snap_classes = snapshot_of(head)
    spread_rows = np.zeros((len(tasks), snap_classes), np.float32)
    spread_found = np.zeros(len(tasks), bool)
    if valid and enc_version and dim:
        if hint is None or hint[:2] != (enc_version, dim):  # first request, or the new head uses another encoder
            vecs, ok = store.get_embeddings(pid, enc_version, valid_ids, dim)
        if snap and (hint is None or hint != (enc_version, dim, snap, snap_classes)):  # a new snapshot
            spread = store.snapshot_rows(pid, snap, valid_ids, snap_classes)
        if hint != (enc_version, dim, snap, snap_classes):
            heads.set_encoder_hint(pid, enc_version, dim, snap, snap_classes)
        X[valid] = vecs
        found[valid] = ok
        if snap and spread is not None:
            spread_rows[valid], spread_found[valid] = spread
    missing = [i for i in valid if not found[i]]
    if missing and encode_missing is not None:
        current = store.current_encoder(pid)
        if current is not None and current.version == enc_version:
            todo = missing[:encode_limit]
            try:
                fresh = encode_missing([tasks[i] for i in todo])
            except Exception:  # a broken encoder must not fail the batch
                log.exception("project %s: on-the-fly encoding failed", pid)
                fresh = {}
            for i in todo:
                vec = fresh.get(ids[i])
                if vec is not None:
                    X[i] = vec
                    found[i] = True
    results = [empty_prediction(version) for _ in tasks]
    rows = np.nonzero(found)[0]
    if len(rows):
        labels, scores = head.predict(X[rows], np.array([ids[i] for i in rows], np.int64),
                                      (spread_rows[rows], spread_found[rows]) if snap else None)
        scores = calibrate(meta, scores)
        served = {}
        for row, label, score in zip(rows, labels, scores, strict=True):
            if label not in cfg.classes:
                continue  # the config dropped that class since the head was trained
            s = round(float(score), 4)
            results[row] = {
                "result": [
                    {
                        "from_name": cfg.from_name,
                        "to_name": cfg.to_name,
                        "type": "choices",
                        "value": {"choices": [label]},
                        "score": s,
                    }
                ],
                "score": s,
                "model_version": version,
            }
            served[ids[row]] = {"version": version, "label": label, "score": s, "bin": bin_of(s)}
        try:
            store.record_served(pid, served)
        except Exception:  # live evaluation is best effort; predictions matter more
            log.warning("project %s: could not record served predictions", pid, exc_info=True)
    return version, results


def empty_prediction(version: str) -> dict:
    """A prediction with no result: Label Studio stores it, so it does not ask again for this version."""
    return {"result": [], "score": 0.0, "model_version": version}
