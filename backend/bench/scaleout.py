"""Scale-out benchmark: K projects' training runs drained by 1 vs 2 real ``rq worker`` processes."""

from __future__ import annotations

import time

import redis
from rq import Queue

from backend.bench.common import (
    LABEL_CONFIG,
    POLL,
    TRANSIENT,
    Section,
    clustered_embeddings,
    ratio,
    redis_server,
    rq_workers,
)
from backend.processes import wait_for


def bench_training_fanout(quick: bool, progress: bool) -> Section:
    """Item 7 (training): K projects' training runs drained by 1 vs 2 real workers."""
    from backend.config import Config
    from backend.projects import Projects
    from backend.queueing import enqueue_training
    from backend.store import Store

    sec = Section("scaleout")
    projects, labels = (4, 1_000) if quick else (8, 5_000)
    X, y = clustered_embeddings(labels, 32)
    rates = {}
    with redis_server() as redis_url:
        r = redis.Redis.from_url(redis_url)
        config = Config(redis_url=redis_url, train_retries=0)
        for workers in (1, 2):
            r.flushall()
            store = Store(r)
            for pid in range(1, projects + 1):
                Projects(store).configure(pid, LABEL_CONFIG)
                store.put_encoder(pid, "enc-bench", b"x", {"dim": 32})
                store.put_embeddings(pid, "enc-bench", {t: X[t - 1] for t in range(1, labels + 1)})
                for t in range(1, labels + 1):
                    store.record_annotation(pid, t, t, y[t - 1])
            with rq_workers(redis_url, workers):
                queue = Queue(config.queue_name, connection=r)
                t0 = time.perf_counter()
                for pid in range(1, projects + 1):
                    enqueue_training(store, queue, pid, config)
                wait_for(lambda s=store: all(s.current_version(p) for p in range(1, projects + 1)), 600,
                         "every project's head", interval=POLL, ignore=TRANSIENT)
                rates[workers] = time.perf_counter() - t0
    sec.row(f"train {projects} projects x {labels} labels via RQ", f"{rates[1]:.1f} s with 1 worker",
            f"{rates[2]:.1f} s with 2 workers: x{ratio(rates[1], rates[2])} faster")
    sec.data = {"projects": projects, "labels_per_project": labels,
                "seconds": {w: round(s, 3) for w, s in rates.items()}, "speedup_2_over_1": ratio(rates[1], rates[2])}
    return sec

