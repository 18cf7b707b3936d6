"""Real processes for fault injection: gunicorn serving the app, RQ workers, a restartable AOF Redis.

Everything runs on loopback in its own process group (:mod:`backend.processes`), so a test can ``kill -9``
a whole worker (work horse included) and every process is gone when the test ends, whatever happened in it.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from backend import processes
from backend.processes import ManagedProcess, RedisServer
from tests.conftest import start_test_worker, worker_env
from tests.fake_label_studio import FakeLabelStudio


@pytest.fixture
def fake_ls() -> Iterator[FakeLabelStudio]:
    """A fake Label Studio on loopback whose project 1 has 60 image tasks without annotations."""
    ls = FakeLabelStudio().start()
    ls.add_tasks(1, list(range(1, 61)))
    yield ls
    ls.stop()


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Callable[..., ManagedProcess]]:
    """Factory for gunicorn / worker processes, all stopped when the test ends.

    ``procs("gunicorn", redis_url, workers=2, **env)`` serves the app as production does (its access log
    format from ./gunicorn.conf.py: no query strings); ``procs("worker", redis_url, *args, **env)`` starts
    an ``rq worker`` (``args`` add CLI options, ``RQ_WORKER_CLASS=...`` another worker class).
    """
    started: list[ManagedProcess] = []

    def start(kind: str, redis_url: str, *args, workers: int = 2, **env) -> ManagedProcess:
        log = tmp_path / f"{kind}{len(started)}.log"
        if kind == "gunicorn":
            p = processes.start_gunicorn(worker_env(redis_url, **env), workers=workers, log_path=log, timeout=90,
                                         args=["--timeout", "60", "--graceful-timeout", "5", *args])
        else:
            p = start_test_worker(redis_url, log, *args, **env)
        started.append(p)
        return p

    yield start
    processes.stop_all(started)


@pytest.fixture
def aof_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A started AOF redis-server private to one test, restartable (``stop()`` then ``start()``)."""
    server = processes.start_redis(tmp_path / "redis-aof", persistent=True, args=["--save", ""])
    yield server
    server.stop(signal.SIGKILL)


def post_all(url: str, bodies: Iterable[dict], threads: int = 8, **kwargs) -> list[requests.Response]:
    """POST every body to ``url`` from ``threads`` threads (one keep-alive session each), in order of bodies."""
    local = threading.local()

    def one(body: dict) -> requests.Response:
        s = getattr(local, "s", None)
        if s is None:
            s = local.s = requests.Session()
        return s.post(url, json=body, timeout=30, **kwargs)

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(one, bodies))
