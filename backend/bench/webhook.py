"""Webhook benchmark: ack latency during a burst of annotation webhooks, against training in the request.

The baseline is DALT's own app with a ``/webhook`` that fits and publishes the head before answering
(``backend.bench.apps.sync_training_app``), what Label Studio's example backends do.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import requests
from tqdm.auto import tqdm

from backend.bench.common import (
    DIM,
    PID,
    POLL,
    TRANSIENT,
    Section,
    annotation_webhook,
    clustered_embeddings,
    gunicorn,
    latency_summary,
    post_timed,
    ratio,
    redis_server,
    rq_workers,
    seed_project,
)
from backend.processes import wait_for


def burst(base_url: str, n: int, concurrency: int, label: str, progress: bool, first_ann: int = 1) -> list[float]:
    """Send ``n`` annotation webhooks from ``concurrency`` clients; per-request ack latencies (s)."""
    _, y = clustered_embeddings(n, DIM)
    bodies = [annotation_webhook(first_ann + i, i + 1, y[i]) for i in range(n)]
    local = threading.local()
    bar = tqdm(total=n, desc=f"webhooks {label}", unit="req", disable=not progress)

    def send(body: bytes) -> float:
        s = getattr(local, "s", None)
        if s is None:
            s = local.s = requests.Session()
        dt, _ = post_timed(s, base_url + "/webhook", body)
        bar.update(1)
        return dt

    with ThreadPoolExecutor(concurrency) as pool:
        times = list(pool.map(send, bodies))
    bar.close()
    return times


def bench_webhooks(quick: bool, progress: bool) -> Section:
    """Item 2: ack latency during a burst of annotation webhooks, against training inside the webhook."""
    sec = Section("webhook")
    n = 100 if quick else 1_000
    concurrency = 4
    with redis_server() as url:
        store = seed_project(url, n, 0, train=False)
        with rq_workers(url, 1), gunicorn("backend.app:create_app()", url) as base:
            t0 = time.perf_counter()
            dalt = burst(base, n, concurrency, "DALT", progress)
            burst_s = time.perf_counter() - t0
            # The last published head must include every label (coalescing must not lose the tail).
            wait_for(lambda: (store.versions(PID) or [{}])[0].get("generation") == store.generation(PID),
                     120, "the head trained on the whole burst", interval=POLL, ignore=TRANSIENT)
            runs = int(store.stats(PID).get("train_runs", 0))
            drained_s = time.perf_counter() - t0
            last_labels = store.versions(PID)[0]["labels"]
        store = seed_project(url, n, 0, train=False)
        with gunicorn("backend.bench.apps:sync_training_app()", url) as base:
            t0 = time.perf_counter()
            sync = burst(base, n, concurrency, "sync-train baseline", progress)
            sync_s = time.perf_counter() - t0
    d, s = latency_summary(dalt), latency_summary(sync)
    sec.row(f"webhook ack, burst of {n} ({concurrency} clients) p50 / p99",
            f"{d['p50_ms']:.1f} / {d['p99_ms']:.1f} ms",
            f"sync training {s['p50_ms']:.1f} / {s['p99_ms']:.1f} ms; p99 x{ratio(s['p99_ms'], d['p99_ms'])} faster")
    sec.row("burst wall time", f"{burst_s:.1f} s ({runs} training runs, last head on {last_labels} labels, "
            f"drained {drained_s:.1f} s)", f"sync training {sync_s:.1f} s")
    sec.data = {"n": n, "concurrency": concurrency, "dalt": d, "sync_training": s, "dalt_burst_s": round(burst_s, 3),
                "dalt_drained_s": round(drained_s, 3), "dalt_training_runs": runs, "dalt_last_head_labels": last_labels,
                "sync_burst_s": round(sync_s, 3), "p99_speedup": ratio(s["p99_ms"], d["p99_ms"])}
    sec.goal("webhook ack p99 under 20 ms during a burst", d["p99_ms"] < 20,
             f"p99 {d['p99_ms']:.1f} ms (sync-training baseline {s['p99_ms']:.1f} ms)")
    return sec
