"""Serving benchmarks: /predict latency vs a constant-answer floor, webhook acks vs synchronous training,
and freshness (annotation webhook -> new version served), all through gunicorn on loopback.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import redis
import requests
from bench_common import (
    CLASSES,
    LABEL_CONFIG,
    PID,
    PLAIN_WORKER,
    PRELOADED_WORKER,
    Section,
    annotation_webhook,
    clustered_embeddings,
    gunicorn,
    latency_summary,
    predict_body,
    ratio,
    redis_server,
    rq_workers,
    wait_for,
)
from tqdm.auto import tqdm

from backend.config import Config
from backend.projects import Projects
from backend.store import Store
from backend.training import train_project

ENCODER = "enc-bench"
DIM = 32
JSON = {"Content-Type": "application/json"}


def seed_project(redis_url: str, n_tasks: int, n_labels: int, *, train: bool = True) -> Store:
    """Flush the private Redis; create project 1 with ``n_tasks`` cached embeddings and ``n_labels`` labels."""
    store = Store(redis.Redis.from_url(redis_url))
    store.r.flushall()
    Projects(store).configure(PID, LABEL_CONFIG)
    store.put_encoder(PID, ENCODER, b"bench", {"dim": DIM, "objective": "bench"})
    X, y = clustered_embeddings(n_tasks, DIM)
    for start in range(0, n_tasks, 5000):
        ids = range(start + 1, min(n_tasks, start + 5000) + 1)
        store.put_embeddings(PID, ENCODER, {t: X[t - 1] for t in ids})
    pipe_size = 500
    for start in range(0, n_labels, pipe_size):
        for t in range(start + 1, min(n_labels, start + pipe_size) + 1):
            store.record_annotation(PID, t, t, y[t - 1])
    if train and n_labels:
        train_project(store, Config(redis_url=redis_url), PID)
    return store



def _post_timed(session: requests.Session, url: str, body: bytes) -> tuple[float, requests.Response]:
    t0 = time.perf_counter()
    resp = session.post(url, data=body, headers=JSON, timeout=120)
    dt = time.perf_counter() - t0
    if resp.status_code != 200:
        raise RuntimeError(f"POST {url} answered {resp.status_code}: {resp.text[:300]}")
    return dt, resp


def measure_predict(base_url: str, sizes: Sequence[int], reps: dict[int, int], n_tasks: int, label: str,
                    progress: bool) -> dict[int, dict]:
    """Sequential /predict calls of each size on one keep-alive connection; latencies and tasks/s."""
    out: dict[int, dict] = {}
    session = requests.Session()
    for size in sizes:
        count = reps[size]
        bodies = []
        for i in range(count + 3):  # 3 warm-up calls
            start = (i * size) % max(1, n_tasks - size + 1)
            bodies.append(predict_body(range(start + 1, start + size + 1)))
        times: list[float] = []
        for i, body in enumerate(tqdm(bodies, desc=f"predict {label} x{size}", unit="call", disable=not progress)):
            dt, resp = _post_timed(session, base_url + "/predict", body)
            if i == 0:
                results = resp.json()["results"]
                if len(results) != size or not results[0]["result"]:
                    raise RuntimeError(f"{label}: /predict did not answer {size} non-empty predictions")
            if i >= 3:
                times.append(dt)
        summary = latency_summary(times)
        summary["tasks_per_s"] = round(size * len(times) / sum(times), 1)
        out[size] = summary
    session.close()
    return out


def bench_predict(quick: bool, progress: bool) -> Section:
    """Item 1: /predict for 1, 100 and 10,000 tasks with cached embeddings, against the floor app."""
    sec = Section("predict")
    n_tasks = 2_000 if quick else 10_000
    sizes = [1, 100, n_tasks]
    reps = {1: 30, 100: 10, n_tasks: 3} if quick else {1: 300, 100: 100, n_tasks: 10}
    with redis_server() as url:
        seed_project(url, n_tasks, 1_000)
        with gunicorn("backend.app:create_app()", url) as base:
            dalt = measure_predict(base, sizes, reps, n_tasks, "DALT", progress)
        with gunicorn("bench_apps:floor_app()", url) as base:
            floor = measure_predict(base, sizes, reps, n_tasks, "floor", progress)
    for size in sizes:
        d, f = dalt[size], floor[size]
        sec.row(f"/predict {size} task(s) p50 / p99", f"{d['p50_ms']:.1f} / {d['p99_ms']:.1f} ms",
                f"floor {f['p50_ms']:.1f} / {f['p99_ms']:.1f} ms; p50 x{ratio(d['p50_ms'], f['p50_ms'])}")
        sec.row(f"/predict {size} task(s) throughput", f"{d['tasks_per_s']:.0f} tasks/s",
                f"floor {f['tasks_per_s']:.0f} tasks/s; x{ratio(d['tasks_per_s'], f['tasks_per_s'])}")
    sec.data = {"dalt": dalt, "floor": floor,
                "p50_ratio": {s: ratio(dalt[s]["p50_ms"], floor[s]["p50_ms"]) for s in sizes}}
    r1 = ratio(dalt[1]["p50_ms"], floor[1]["p50_ms"])
    sec.goal("single-task /predict p50 within 2x of the floor", r1 <= 2.0,
             f"{dalt[1]['p50_ms']:.2f} ms vs floor {floor[1]['p50_ms']:.2f} ms = x{r1}")
    big = dalt[sizes[-1]]
    sec.goal(f"{sizes[-1]} tasks in one call under 2 s", big["p50_ms"] < 2000,
             f"p50 {big['p50_ms']:.0f} ms, p99 {big['p99_ms']:.0f} ms")
    return sec


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
        dt, _ = _post_timed(s, base_url + "/webhook", body)
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
                     120, "the head trained on the whole burst")
            runs = int(store.stats(PID).get("train_runs", 0))
            drained_s = time.perf_counter() - t0
            last_labels = store.versions(PID)[0]["labels"]
        store = seed_project(url, n, 0, train=False)
        with gunicorn("bench_apps:sync_training_app()", url) as base:
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


def _current_version(session: requests.Session, base: str, body: bytes) -> str:
    return session.post(base + "/predict", data=body, headers=JSON, timeout=30).json()["model_version"]


def freshness_runs(url: str, n: int, repeats: int, worker_class: str, progress: bool) -> dict:
    """Seed ``n`` labels, then ``repeats`` times: one webhook changes a label; time until /predict serves
    a new version (polled every 5 ms with a one-task /predict)."""
    store = seed_project(url, n, n)
    with rq_workers(url, 1, worker_class=worker_class), gunicorn("backend.app:create_app()", url) as base:
        session = requests.Session()
        probe = predict_body([1])
        times: list[float] = []
        kind = worker_class.rsplit(".", 1)[-1]
        for i in tqdm(range(repeats), desc=f"freshness {n} labels, {kind}", unit="run", disable=not progress):
            before = _current_version(session, base, probe)
            task = i + 1
            old = store.labels(PID)[task]
            new = CLASSES[(CLASSES.index(old) + 1) % len(CLASSES)]
            t0 = time.perf_counter()
            session.post(base + "/webhook", data=annotation_webhook(10**6 + i, task, new), headers=JSON,
                         timeout=30).raise_for_status()
            wait_for(lambda b=before, s=session, u=base, q=probe: _current_version(s, u, q) != b, 120,
                     f"a new version at {n} labels", interval=0.005)
            times.append(time.perf_counter() - t0)
        session.close()
    # train_seconds: the job's own time from its start to the fit's end (store reads + fit)
    train_s = [float(v.get("train_seconds", 0)) for v in store.versions(PID)[:repeats]]
    return {"median_s": round(statistics.median(times), 3), "max_s": round(max(times), 3),
            "samples_s": [round(t, 3) for t in times], "job_fit_s_median": round(float(np.median(train_s)), 3)}


def bench_freshness(quick: bool, progress: bool) -> Section:
    """Item 3: annotation webhook -> the new version answered by /predict, with a real rq worker."""
    sec = Section("freshness")
    label_counts = [100, 1_000] if quick else [100, 1_000, 5_000, 10_000]
    repeats = 3 if quick else 7
    data: dict = {"worker_class": PRELOADED_WORKER}
    with redis_server() as url:
        for n in label_counts:
            data[n] = freshness_runs(url, n, repeats, PRELOADED_WORKER, progress)
            sec.row(f"freshness at {n} labels (median / max of {repeats})",
                    f"{data[n]['median_s']:.2f} / {data[n]['max_s']:.2f} s",
                    f"of which the job's read + fit {data[n]['job_fit_s_median']:.2f} s")
        ref = label_counts[-2]
        plain = freshness_runs(url, ref, repeats, PLAIN_WORKER, progress)
    data["plain_rq_worker"] = {ref: plain}
    sec.row(f"freshness at {ref} labels, plain `rq worker` (imports per job)",
            f"{plain['median_s']:.2f} s", f"preloaded worker x{ratio(plain['median_s'], data[ref]['median_s'])} faster")
    sec.data = data
    if 5_000 in data:
        sec.goal("freshness median under 2 s at 5,000 labels", data[5_000]["median_s"] < 2.0,
                 f"median {data[5_000]['median_s']:.2f} s")
    return sec
