"""What every benchmark of ``dalt bench`` shares: private servers, workers, payloads, statistics.

Benchmarks run real processes (redis-server, gunicorn, rq workers) on loopback, the way DALT runs in
production, and never touch a Redis they did not start themselves.

The process helpers here (``free_port``, ``wait_for``, ``redis_server``, ``gunicorn``, ``rq_workers``)
are the benchmarks' own until ``backend.processes`` owns starting and stopping processes for everyone.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import redis
import requests

ROOT = Path(__file__).resolve().parents[2]  # the repository: gunicorn reads ./gunicorn.conf.py from here
BIN = Path(sys.executable).parent
PID = 1
CLASSES = [str(d) for d in range(10)]
LABEL_CONFIG = (
    '<View><Image name="image" value="$image"/><Choices name="label" toName="image" choice="single">'
    + "".join(f'<Choice value="{c}"/>' for c in CLASSES)
    + "</Choices></View>"
)
# Workers that import the job code before forking a horse per job (see backend/worker.py).
PRELOADED_WORKER = "backend.worker.PreloadedWorker"
PLAIN_WORKER = "rq.worker.Worker"
# The gunicorn shape of the Dockerfile: 2 sync worker processes with 4 threads each.
GUNICORN_ARGS = ["--workers", "2", "--threads", "4", "--timeout", "120"]
ENCODER = "enc-bench"  # the encoder version of seeded projects
DIM = 32
JSON_HEADERS = {"Content-Type": "application/json"}


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate: Callable[[], object], timeout: float, what: str, interval: float = 0.02) -> object:
    """Poll ``predicate`` until truthy; raise naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = predicate()
        except (OSError, redis.exceptions.ConnectionError, requests.ConnectionError):
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not ready within {timeout:.0f} s")
        time.sleep(interval)


def bench_env(redis_url: str, **extra: str) -> dict[str, str]:
    """Environment for the processes a benchmark starts: private Redis, one BLAS thread, quiet logs."""
    env = dict(os.environ)
    env.update(
        REDIS_URL=redis_url,
        PYTHONPATH=str(ROOT),
        OMP_NUM_THREADS="1",
        OPENBLAS_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        LOG_LEVEL="WARNING",
        DALT_TRAIN_RETRIES="0",
    )
    env.update(extra)
    return env


def _stop(proc: subprocess.Popen, timeout: float = 15) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    """A private, non-persistent redis-server on a free port; yields its URL."""
    exe = shutil.which("redis-server")
    if exe is None:
        raise SystemExit("redis-server is not installed")
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="dalt-bench-redis-") as tmp:
        proc = subprocess.Popen(
            [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", tmp],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        url = f"redis://127.0.0.1:{port}/0"
        try:
            client = redis.Redis.from_url(url)
            wait_for(client.ping, 10, "redis-server")
            client.close()
            yield url
        finally:
            _stop(proc)


@contextlib.contextmanager
def gunicorn(app_spec: str, redis_url: str, *, args: Sequence[str] = GUNICORN_ARGS, **env: str) -> Iterator[str]:
    """Serve ``app_spec`` (``module:factory()``) with gunicorn on a free loopback port; yields its base URL."""
    port = free_port()
    log = tempfile.NamedTemporaryFile(prefix="dalt-bench-gunicorn-", suffix=".log", delete=False)  # noqa: SIM115
    proc = subprocess.Popen(
        [str(BIN / "gunicorn"), app_spec, "-b", f"127.0.0.1:{port}", *args],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=bench_env(redis_url, **env),
        cwd=ROOT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_for(lambda: requests.get(url + "/health", timeout=1).status_code == 200, 60, f"gunicorn {app_spec}")
        except TimeoutError:
            raise RuntimeError(f"gunicorn {app_spec} did not start:\n{Path(log.name).read_text()[-3000:]}") from None
        yield url
    finally:
        _stop(proc)
        log.close()
        os.unlink(log.name)


@contextlib.contextmanager
def rq_workers(redis_url: str, n: int, queue: str = "dalt", *, worker_class: str = PRELOADED_WORKER,
               **env: str) -> Iterator[list[subprocess.Popen]]:
    """``n`` real ``rq worker`` processes on ``queue``, registered before this yields."""
    procs = [
        subprocess.Popen(
            [str(BIN / "rq"), "worker", "--url", redis_url, "--worker-ttl", "30", "--quiet",
             "--worker-class", worker_class, queue],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=bench_env(redis_url, **env),
            cwd=ROOT,
            start_new_session=True,
        )
        for _ in range(n)
    ]
    try:
        from rq import Worker

        conn = redis.Redis.from_url(redis_url)
        wait_for(lambda: len(Worker.all(connection=conn)) >= n, 60, f"{n} rq worker(s)")
        yield procs
    finally:
        for p in procs:
            _stop(p)


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
