"""Freshness benchmark: one annotation webhook -> the new version answered by /predict, real rq worker.

Measured at several label counts with the preloaded worker (``backend.worker.PreloadedWorker``) and once
with a plain ``rq worker``, which imports the job code per job.
"""

from __future__ import annotations

import statistics
import time

import numpy as np
import requests
from tqdm.auto import tqdm

from backend.bench.common import (
    CLASSES,
    JSON_HEADERS,
    PID,
    PLAIN_WORKER,
    PRELOADED_WORKER,
    TRANSIENT,
    Section,
    annotation_webhook,
    gunicorn,
    predict_body,
    ratio,
    redis_server,
    rq_workers,
    seed_project,
)
from backend.processes import wait_for


def _current_version(session: requests.Session, base: str, body: bytes) -> str:
    return session.post(base + "/predict", data=body, headers=JSON_HEADERS, timeout=30).json()["model_version"]


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
            session.post(base + "/webhook", data=annotation_webhook(10**6 + i, task, new), headers=JSON_HEADERS,
                         timeout=30).raise_for_status()
            wait_for(lambda b=before, s=session, u=base, q=probe: _current_version(s, u, q) != b, 120,
                     f"a new version at {n} labels", interval=0.005, ignore=TRANSIENT)
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
