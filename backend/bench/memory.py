"""Memory benchmark: Redis bytes per cached embedding, against the raw vector and one key per task."""

from __future__ import annotations

import numpy as np
import redis
from tqdm.auto import tqdm

from backend.bench.common import PID, Section, redis_server

DIM = 32
BATCH = 512  # what bulk encoding (backend.bulk) writes per pipeline


def _used(r: redis.Redis) -> int:
    return int(r.info("memory")["used_memory"])


def bench_memory(quick: bool, progress: bool) -> Section:
    """Item 6: ``INFO memory`` delta and ``MEMORY USAGE`` per embedding at 100,000 tasks."""
    from backend.store import Store, keys

    sec = Section("memory")
    n = 10_000 if quick else 100_000
    raw = 2 * DIM  # float16 values: what the vector itself needs
    rng = np.random.default_rng(0)
    X = rng.normal(0, 1, size=(n, DIM)).astype(np.float32)
    with redis_server() as url:
        r = redis.Redis.from_url(url)
        store = Store(r)
        store.put_encoder(PID, "enc-bench", b"x", {"dim": DIM})
        before = _used(r)
        for start in tqdm(range(0, n, BATCH), desc="store embeddings", unit="batch", disable=not progress):
            ids = range(start + 1, min(n, start + BATCH) + 1)
            store.put_embeddings(PID, "enc-bench", {t: X[t - 1] for t in ids})
        after = _used(r)
        bucket_set = keys.embedding_buckets(PID, "enc-bench")  # every embedding key: the buckets and their set
        emb_keys = [bucket_set, *(keys.embedding_bucket(PID, "enc-bench", int(b)) for b in r.smembers(bucket_set))]
        usage = sum(int(r.memory_usage(k, samples=0) or 0) for k in emb_keys)
        # Check that what was stored reads back (float16 precision).
        back, found = store.get_embeddings(PID, "enc-bench", [1, n // 2, n], DIM)
        assert found.all() and np.allclose(back, X[[0, n // 2 - 1, n - 1]], atol=1e-2)
        r.flushall()
        # Baseline: one key per task, the same 64-byte vector as its value.
        base_before = _used(r)
        for start in range(0, n, BATCH):
            pipe = r.pipeline(transaction=False)
            for t in range(start + 1, min(n, start + BATCH) + 1):
                pipe.set(f"{keys.project_prefix(PID)}:e:{t}", X[t - 1].astype("<f2").tobytes())  # DALT-like keys
            pipe.execute()
        per_key = (_used(r) - base_before) / n
    per_delta = (after - before) / n
    per_usage = usage / n
    sec.row(f"Redis bytes per embedding at {n} tasks (dim {DIM}, float16)",
            f"{per_delta:.1f} B (INFO delta), {per_usage:.1f} B (MEMORY USAGE)",
            f"raw {raw} B: overhead {per_delta - raw:.1f} B; one key per task {per_key:.1f} B")
    sec.data = {"n": n, "dim": DIM, "raw_bytes": raw, "bytes_per_embedding_info_delta": round(per_delta, 2),
                "bytes_per_embedding_memory_usage": round(per_usage, 2), "overhead_bytes": round(per_delta - raw, 2),
                "one_key_per_task_bytes": round(per_key, 2), "keys": len(emb_keys)}
    sec.goal("Redis overhead at most 64 bytes per embedding", per_delta - raw <= 64,
             f"{per_delta - raw:.1f} B over the {raw} B vector")
    return sec
