"""What every benchmark of ``dalt bench`` shares: private servers, workers, payloads, statistics.

Benchmarks run real processes (redis-server, gunicorn, rq workers) on loopback, the way DALT runs in
production, and never touch a Redis they did not start themselves. The processes are started by
``backend.processes``; the context managers here only fix the benchmarks' shape of them (the Dockerfile's
gunicorn settings, workers without RQ's scheduler, logs in a temporary folder) and stop them afterwards.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import redis
import requests

from backend.processes import (
    PRELOADED_WORKER,
    ROOT,
    ManagedProcess,
    service_env,
    start_gunicorn,
    start_worker,
    stop_all,
    temporary_redis,
    wait_for,
)

PID = 1
CLASSES = [str(d) for d in range(10)]
LABEL_CONFIG = (
    '<View><Image name="image" value="$image"/><Choices name="label" toName="image" choice="single">'
    + "".join(f'<Choice value="{c}"/>' for c in CLASSES)
    + "</Choices></View>"
)
PLAIN_WORKER = "rq.worker.Worker"  # imports the job code in every work horse (PRELOADED_WORKER: once)
# The gunicorn shape of the Dockerfile: 2 sync worker processes with 4 threads each.
GUNICORN_WORKERS = 2
GUNICORN_ARGS = ["--threads", "4", "--timeout", "120"]
ENCODER = "enc-bench"  # the encoder version of seeded projects
DIM = 32
JSON_HEADERS = {"Content-Type": "application/json"}
POLL = 0.02  # seconds between two looks at a condition a benchmark waits for (part of some timings)
# What counts as "not yet" while a server starts or restarts.
TRANSIENT: tuple[type[BaseException], ...] = (OSError, redis.exceptions.ConnectionError)


def bench_env(redis_url: str, **extra: str) -> dict[str, str]:
    """Environment for the processes a benchmark starts: private Redis, one BLAS thread, quiet logs."""
    return service_env(redis_url, PYTHONPATH=str(ROOT), LOG_LEVEL="WARNING", DALT_TRAIN_RETRIES="0") | extra


def redis_server() -> contextlib.AbstractContextManager[str]:
    """A private, non-persistent redis-server on a free port; yields its URL."""
    return temporary_redis("dalt-bench-redis-", timeout=10)


@contextlib.contextmanager
def gunicorn(app_spec: str, redis_url: str, *, workers: int = GUNICORN_WORKERS,
             args: Sequence[str] = GUNICORN_ARGS, **env: str) -> Iterator[str]:
    """Serve ``app_spec`` (``module:factory()``) with gunicorn on a free loopback port; yields its base URL."""
    with tempfile.TemporaryDirectory(prefix="dalt-bench-gunicorn-") as tmp:
        server = start_gunicorn(bench_env(redis_url, **env), workers=workers, args=args, app=app_spec,
                                log_path=Path(tmp, "gunicorn.log"))
        try:
            yield server.url
        finally:
            server.stop()


@contextlib.contextmanager
def rq_workers(redis_url: str, n: int, queue: str = "dalt", *, worker_class: str = PRELOADED_WORKER,
               **env: str) -> Iterator[list[ManagedProcess]]:
    """``n`` real ``rq worker`` processes on ``queue`` (no scheduler), registered before this yields."""
    from rq import Worker

    with tempfile.TemporaryDirectory(prefix="dalt-bench-workers-") as tmp:
        procs: list[ManagedProcess] = []
        try:
            for i in range(n):
                procs.append(start_worker(bench_env(redis_url, **env), queue, worker_class=worker_class,
                                          args=["--worker-ttl", "30", "--quiet"], scheduler=False,
                                          log_path=Path(tmp, f"worker-{i}.log"), name=f"rq-worker-{i}"))
            conn = redis.Redis.from_url(redis_url)
            wait_for(lambda: len(Worker.all(connection=conn)) >= n, 60, f"{n} rq worker(s)", interval=POLL,
                     ignore=TRANSIENT)
            yield procs
        finally:
            stop_all(procs)


def percentile_ms(samples: Sequence[float], q: float) -> float:
    """The ``q``-th percentile of durations in seconds, in milliseconds."""
    return float(np.percentile(np.asarray(samples, dtype=float), q) * 1000.0) if len(samples) else float("nan")


def latency_summary(samples: Sequence[float]) -> dict[str, float]:
    """p50 / p99 / mean in ms and the count."""
    return {
        "n": len(samples),
        "p50_ms": round(percentile_ms(samples, 50), 3),
        "p99_ms": round(percentile_ms(samples, 99), 3),
        "mean_ms": round(float(np.mean(samples)) * 1000.0, 3) if len(samples) else float("nan"),
    }


def ratio(a: float, b: float) -> float:
    """``a / b`` rounded, NaN when ``b`` is 0."""
    return round(a / b, 3) if b else float("nan")


def ls_task(task_id: int, image: str | None = None) -> dict[str, Any]:
    """A task shaped like the ones Label Studio 1.23.2 sends to /predict (see tests/fixtures)."""
    return {
        "id": task_id,
        "data": {"image": image or f"/data/upload/{PID}/{task_id}.png"},
        "meta": {},
        "created_at": "2026-11-26T08:34:31.502490Z",
        "updated_at": "2026-11-26T08:34:31.502514Z",
        "is_labeled": False,
        "overlap": 1,
        "inner_id": task_id,
        "total_annotations": 0,
        "cancelled_annotations": 0,
        "total_predictions": 0,
        "comment_count": 0,
        "unresolved_comment_count": 0,
        "last_comment_updated_at": None,
        "project": PID,
        "updated_by": None,
        "file_upload": None,
        "comment_authors": [],
        "annotations": [],
        "predictions": [],
    }


def predict_body(task_ids: Sequence[int]) -> bytes:
    """A /predict request body as Label Studio sends it."""
    return json.dumps(
        {
            "tasks": [ls_task(t) for t in task_ids],
            "project": f"{PID}.1795682067",
            "label_config": LABEL_CONFIG,
            "params": {"login": None, "password": None, "context": None},
        }
    ).encode()


def annotation_webhook(ann_id: int, task_id: int, label: str) -> bytes:
    """An ANNOTATION_CREATED webhook body shaped like Label Studio's (the fields DALT and the baseline read)."""
    return json.dumps(
        {
            "action": "ANNOTATION_CREATED",
            "annotation": {
                "id": ann_id,
                "result": [
                    {"from_name": "label", "to_name": "image", "type": "choices", "value": {"choices": [label]}}
                ],
                "was_cancelled": False,
                "ground_truth": False,
                "task": task_id,
                "project": PID,
                "completed_by": 1,
            },
            "task": {"id": task_id, "data": {"image": f"/data/upload/{PID}/{task_id}.png"}, "project": PID},
            "project": {
                "id": PID,
                "title": "bench",
                "label_config": LABEL_CONFIG,
                "min_annotations_to_start_training": 0,
            },
        }
    ).encode()


def clustered_embeddings(n: int, dim: int = 32, seed: int = 0, spread: float = 1.6) -> tuple[np.ndarray, list[str]]:
    """``n`` embeddings in 10 overlapping Gaussian clusters (a logistic regression reaches ~90 %, like MNIST)."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 1, size=(len(CLASSES), dim))
    y = rng.integers(0, len(CLASSES), size=n)
    X = centers[y] + rng.normal(0, spread, size=(n, dim)) / np.sqrt(dim) * 4
    return X.astype(np.float32), [CLASSES[i] for i in y]


def seed_project(redis_url: str, n_tasks: int, n_labels: int, *, train: bool = True) -> Any:
    """Flush the private Redis; create project 1 with ``n_tasks`` cached embeddings and ``n_labels`` labels.

    Returns:
        The project's ``backend.store.Store``.
    """
    from backend.config import Config
    from backend.projects import Projects
    from backend.store import Store
    from backend.training import train_project

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


def post_timed(session: requests.Session, url: str, body: bytes) -> tuple[float, requests.Response]:
    """POST a JSON body; its duration in seconds and the response (anything but 200 raises)."""
    t0 = time.perf_counter()
    resp = session.post(url, data=body, headers=JSON_HEADERS, timeout=120)
    dt = time.perf_counter() - t0
    if resp.status_code != 200:
        raise RuntimeError(f"POST {url} answered {resp.status_code}: {resp.text[:300]}")
    return dt, resp


@dataclass
class Section:
    """One benchmark's results: table rows and the JSON it contributes."""

    name: str
    rows: list[tuple[str, str, str]] = field(default_factory=list)  # (measure, value, baseline / ratio)
    data: dict[str, Any] = field(default_factory=dict)
    goals: list[dict[str, Any]] = field(default_factory=list)

    def row(self, measure: str, value: str, versus: str = "") -> None:
        self.rows.append((measure, value, versus))

    def goal(self, name: str, met: bool, detail: str) -> None:
        self.goals.append({"goal": name, "met": bool(met), "detail": detail})
