"""The neighbour graph per encoder version and the spread snapshots, packed in 256-task buckets.

Why packed like the embeddings: Redis spends 50-90 bytes per key or hash field; a graph row (10 int32
neighbour ids and 10 float16 distances, 61 bytes with its flag) and a snapshot row (one float16 per class)
cost what they hold, so the graph, the embedding and one snapshot stay under ~150 bytes per task.

Snapshots: the graph lane writes every task's spread distribution ONCE per propagation run (a new
snapshot id); the heads that the fast lane publishes after every label only name the snapshot they use.
While a new snapshot is being adopted two exist (the one served and the new one); once a head naming the
new one is published, the graph lane drops the older (:meth:`GraphParts.drop_snapshots_before`). A head
that still names a dropped snapshot (a fast-lane run that read the snapshot list just before) serves its
logistic regression alone until the next graph-lane run, which that run's labels have queued.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable

import numpy as np
import redis

from backend.graph import K, Neighbours
from backend.store import codec, keys
from backend.store.base import StoreBase
from backend.store.embeddings import read_slots_in
from backend.store.scripts import Batch, Reply

KEEP_SNAPSHOTS = 2
CHUNK = 512  # buckets per MGET / pipeline


def graph_slot_size(k: int = K) -> int:
    """Bytes per task in a graph bucket: flag, ``k`` int32 ids, ``k`` float16 distances."""
    return 1 + 6 * k


def encode_graph_rows(rows: Neighbours) -> np.ndarray:
    """Graph rows -> slot bytes uint8 [n, 1 + 6k]."""
    n, k = rows.nbr.shape
    out = np.zeros((n, graph_slot_size(k)), np.uint8)
    out[:, 0] = codec.PRESENT
    out[:, 1 : 1 + 4 * k] = rows.nbr.astype("<i4").view(np.uint8).reshape(n, 4 * k)
    d = np.minimum(rows.dist, np.float32(np.inf)).astype("<f2")
    out[:, 1 + 4 * k :] = d.view(np.uint8).reshape(n, 2 * k)
    return out


def decode_graph_rows(ids: np.ndarray, raw: np.ndarray, k: int = K) -> Neighbours:
    """Slot bytes uint8 [n, 1 + 6k] -> graph rows."""
    n = len(ids)
    raw = np.ascontiguousarray(raw)
    nbr = raw[:, 1 : 1 + 4 * k].copy().view("<i4").reshape(n, k).astype(np.int64)
    dist = raw[:, 1 + 4 * k :].copy().view("<f2").reshape(n, k).astype(np.float32)
    return Neighbours(np.asarray(ids, np.int64), nbr, dist)


def encode_spread_rows(dist: np.ndarray) -> np.ndarray:
    """Distributions float [n, classes] -> slot bytes uint8 [n, 1 + 2*classes] (the embedding slot format)."""
    n, c = dist.shape
    out = np.zeros((n, codec.slot_size(c)), np.uint8)
    out[:, 0] = codec.PRESENT
    out[:, 1:] = np.ascontiguousarray(dist, np.float32).astype("<f2").view(np.uint8).reshape(n, 2 * c)
    return out


class GraphParts(StoreBase):
    """The graph of each encoder version, spread snapshots, and the graph lane's flags and lock."""

    # ---- the graph ------------------------------------------------------------------------------------
    def graph_meta(self, pid: int, version: str) -> dict | None:
        """The graph's metadata (``k``, ``mean``, ``scale``, ``tasks``...), None when it is not built yet."""
        raw = self.r.get(keys.graph_meta(pid, version))
        return json.loads(raw) if raw else None

    def put_graph_rows(self, pid: int, version: str, rows: Neighbours, meta: dict | None = None, *,
                       whole: bool = False) -> None:
        """Write graph rows; ``whole`` (a build) writes whole buckets, otherwise one ``SETRANGE`` per row."""
        k = rows.nbr.shape[1]
        size = graph_slot_size(k)
        raw = encode_graph_rows(rows)
        pipe = self.r.pipeline(transaction=False)
        if whole:
            packed = codec.pack_buckets(rows.ids, raw)
            for n, (bucket, data) in enumerate(packed.items(), start=1):
                pipe.set(keys.graph_bucket(pid, version, bucket), data)
                if n % CHUNK == 0:
                    pipe.execute()
            buckets = list(packed)
        else:
            for tid, row in zip(rows.ids.tolist(), raw, strict=True):
                bucket, slot = codec.locate(tid)
                pipe.setrange(keys.graph_bucket(pid, version, bucket), slot * size, row.tobytes())
            buckets = sorted({codec.locate(t)[0] for t in rows.ids.tolist()})
        if buckets:
            pipe.sadd(keys.graph_buckets(pid, version), *buckets)
        if meta is not None:
            pipe.set(keys.graph_meta(pid, version), json.dumps(meta))
        pipe.execute()

    def read_graph(self, pid: int, version: str, k: int = K) -> Neighbours:
        """Every row of the graph (task ids ascending)."""
        size = graph_slot_size(k)
        buckets = sorted(int(b) for b in self.r.smembers(keys.graph_buckets(pid, version)))
        ids: list[np.ndarray] = []
        raws: list[np.ndarray] = []
        for start in range(0, len(buckets), CHUNK):
            chunk = buckets[start : start + CHUNK]
            for b, data in zip(chunk, self.r.mget([keys.graph_bucket(pid, version, b) for b in chunk]), strict=True):
                got, raw = codec.unpack_bucket(data, b, size)
                if len(got):
                    ids.append(got)
                    raws.append(raw)
        if not ids:
            return Neighbours(np.zeros(0, np.int64), np.zeros((0, k), np.int64), np.zeros((0, k), np.float32))
        return decode_graph_rows(np.concatenate(ids), np.concatenate(raws), k)

    def drop_graph(self, pid: int, version: str) -> None:
        """Delete an encoder version's graph (the encoder was replaced)."""
        buckets = list(self.r.smembers(keys.graph_buckets(pid, version)))
        for start in range(0, len(buckets), 1000):
            self.r.delete(*[keys.graph_bucket(pid, version, int(b)) for b in buckets[start : start + 1000]])
        self.r.delete(keys.graph_buckets(pid, version), keys.graph_meta(pid, version))

    # ---- spread snapshots -----------------------------------------------------------------------------
    def snapshots(self, pid: int) -> dict[int, dict]:
        """Kept snapshots' metadata by id."""
        return {int(s): json.loads(m) for s, m in self.r.hgetall(keys.spreads(pid)).items()}

    def latest_snapshot(self, pid: int, encoder_version: str | None = None) -> dict | None:
        """The newest kept snapshot (of ``encoder_version`` when given), or None."""
        metas = [m for m in self.snapshots(pid).values()
                 if encoder_version is None or m.get("encoder_version") == encoder_version]
        return max(metas, key=lambda m: m["snapshot"]) if metas else None

    def put_snapshot(self, pid: int, ids: np.ndarray, dist: np.ndarray, meta: dict) -> dict:
        """Write a new snapshot of spread distributions (rows of ``ids``); drops all but the newest two.

        Returns:
            Its metadata, ``meta`` plus ``snapshot`` (the new id) and ``buckets``.
        """
        snap = int(self.r.incr(keys.spread_seq(pid)))
        packed = codec.pack_buckets(ids, encode_spread_rows(dist))
        pipe = self.r.pipeline(transaction=False)
        for n, (bucket, data) in enumerate(packed.items(), start=1):
            pipe.set(keys.spread_bucket(pid, snap, bucket), data)
            if n % CHUNK == 0:
                pipe.execute()
        meta = dict(meta, snapshot=snap, buckets=sorted(packed), created_at=time.time())
        pipe.hset(keys.spreads(pid), snap, json.dumps(meta))
        pipe.execute()
        for old, old_meta in self.snapshots(pid).items():
            if old <= snap - KEEP_SNAPSHOTS:
                self._drop_snapshot(pid, old, old_meta)
        return meta

    def drop_snapshots_before(self, pid: int, snap: int) -> int:
        """Drop every snapshot older than ``snap`` (once a head naming ``snap`` is served); returns how many."""
        old = {s: m for s, m in self.snapshots(pid).items() if s < snap}
        for s, m in old.items():
            self._drop_snapshot(pid, s, m)
        return len(old)

    def _drop_snapshot(self, pid: int, snap: int, meta: dict) -> None:
        buckets = [int(b) for b in meta.get("buckets", [])]
        for start in range(0, len(buckets), 1000):
            self.r.delete(*[keys.spread_bucket(pid, snap, b) for b in buckets[start : start + 1000]])
        self.r.hdel(keys.spreads(pid), snap)

    def snapshot_rows_in(self, batch: Batch, pid: int, snap: int, task_ids: Iterable[int], n_classes: int
                         ) -> Reply[tuple[np.ndarray, np.ndarray]]:
        """Queue the reads of tasks' rows of snapshot ``snap``: ``(float32 [n, classes], found)``."""
        return read_slots_in(batch, lambda bucket: keys.spread_bucket(pid, snap, bucket), task_ids, n_classes)

    def snapshot_rows(self, pid: int, snap: int, task_ids: Iterable[int], n_classes: int
                      ) -> tuple[np.ndarray, np.ndarray]:
        """Rows of snapshot ``snap`` for ``task_ids`` in one round trip (zeros and False where absent)."""
        return self._alone(self.snapshot_rows_in, pid, snap, list(task_ids), n_classes)

    def all_snapshot_rows(self, pid: int, meta: dict) -> tuple[np.ndarray, np.ndarray]:
        """Every row of a snapshot: ``(task ids, float32 [n, classes])`` (the graph lane's warm start)."""
        c = len(meta["classes"])
        size = codec.slot_size(c)
        buckets = [int(b) for b in meta.get("buckets", [])]
        ids, rows = [], []
        for start in range(0, len(buckets), CHUNK):
            chunk = buckets[start : start + CHUNK]
            datas = self.r.mget([keys.spread_bucket(pid, meta["snapshot"], b) for b in chunk])
            for b, data in zip(chunk, datas, strict=True):
                got, raw = codec.unpack_bucket(data, b, size)
                if len(got):
                    ids.append(got)
                    rows.append(raw[:, 1:].copy().view("<f2").reshape(len(got), c).astype(np.float32))
        if not ids:
            return np.zeros(0, np.int64), np.zeros((0, c), np.float32)
        return np.concatenate(ids), np.concatenate(rows)

    # ---- coordination: coalescing flags and the lock (rules in backend.queueing) ----------------------
    def mark_graph_pending(self, pid: int, ttl: int) -> bool:
        """Set 'a graph update is queued'; True if it was not set (so the caller enqueues)."""
        return bool(self.r.set(keys.graph_pending(pid), 1, nx=True, ex=max(1, int(ttl))))

    def clear_graph_pending(self, pid: int) -> None:
        self.r.delete(keys.graph_pending(pid))

    def mark_spread_pending(self, pid: int, ttl: int) -> bool:
        """Set 'a graph-lane propagation is queued'; True if it was not set (so the caller enqueues)."""
        return bool(self.r.set(keys.spread_pending(pid), 1, nx=True, ex=max(1, int(ttl))))

    def clear_spread_pending(self, pid: int) -> None:
        self.r.delete(keys.spread_pending(pid))

    def graph_lock(self, pid: int, ttl: float) -> redis.lock.Lock:
        """The lock graph updates and propagation runs hold (one at a time per project)."""
        return self.r.lock(keys.graph_lock(pid), timeout=ttl, sleep=0.1, thread_local=False)
