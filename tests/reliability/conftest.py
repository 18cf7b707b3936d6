"""Real processes for fault injection: gunicorn serving the app, RQ workers, a restartable AOF Redis.

Everything runs on loopback in its own process group, so a test can ``kill -9`` a whole worker (work
horse included) and every process is gone when the test ends, whatever happened in it.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import redis
import requests

from tests.conftest import ROOT, free_port, wait_for, worker_env

BIN = Path(sys.executable).parent
# The access-log format the backend should run with: the path without the query string, so a
# ``?secret=`` never lands in a log (gunicorn's default "%(r)s" logs the whole request line).
ACCESS_LOG_FORMAT = '%(h)s %(l)s %(u)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(M)sms'


def descendants(pid: int) -> list[int]:
    """Every live descendant of ``pid`` (from /proc; children first, so a kill leaves no orphan running)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                stat = fh.read()
        except OSError:
            continue
        parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    out: list[int] = []
    frontier = [pid]
    while frontier:
        kids = [p for p, pp in parents.items() if pp in frontier]
        out = kids + out
        frontier = kids
    return out


class Proc:
    """A process in its own group, its output in a log file."""

    def __init__(self, cmd: list[str], log_path: Path, env: dict[str, str]):
        self.log_path = log_path
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env=env, cwd=ROOT,
                                     start_new_session=True)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """``kill -9`` the process and every descendant, as when its container or machine dies.

        Signalling the process group is not enough: RQ's work horse calls ``setsid()``, so it lives in a
        group of its own and would finish the job after its worker died.
        """
        if self.alive():
            for pid in [*descendants(self.proc.pid), self.proc.pid]:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            self.proc.wait(20)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL for whatever is left (descendants are listed first: they outlive a leader)."""
        kids = descendants(self.proc.pid) if self.alive() else []
        if self.alive():
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(15)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                pass
        for pid in kids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if self.alive():
            self.proc.wait(10)
        self._log.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


class Gunicorn(Proc):
    """``gunicorn 'backend.app:create_app()'`` as production runs it, on a free loopback port."""

    def __init__(self, redis_url: str, log_path: Path, workers: int = 2, **env: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [str(BIN / "gunicorn"), "backend.app:create_app()", "-b", f"127.0.0.1:{self.port}",
               "-w", str(workers), "--timeout", "60", "--graceful-timeout", "5",
               "--access-logfile", "-", "--access-logformat", ACCESS_LOG_FORMAT]
        super().__init__(cmd, log_path, worker_env(redis_url, **{"LOG_LEVEL": "INFO", **env}))

    def wait_ready(self, timeout: float = 90) -> None:
        def up() -> bool:
            if not self.alive():
                raise AssertionError(f"gunicorn exited:\n{self.log()[-3000:]}")
            try:
                return requests.get(self.url + "/health", timeout=2).status_code == 200
            except requests.RequestException:
                return False

        wait_for(up, timeout=timeout, interval=0.2)


class RQWorker(Proc):
    """A real ``rq worker``; ``args`` add CLI options (e.g. ``--maintenance-interval``)."""

    def __init__(self, redis_url: str, log_path: Path, *args: str, **env: str):
        cmd = [str(BIN / "rq"), "worker", "--url", redis_url, "--with-scheduler", "--worker-ttl", "5",
               "--worker-class", "backend.worker.PreloadedWorker", *args, "dalt"]  # as scripts/run_backend.py
        super().__init__(cmd, log_path, worker_env(redis_url, **env))


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Callable[..., Proc]]:
    """Factory for gunicorn / worker processes, all stopped when the test ends.

    ``procs("gunicorn", redis_url, workers=2, **env)`` or ``procs("worker", redis_url, *args, **env)``.
    """
    started: list[Proc] = []

    def start(kind: str, redis_url: str, *args, **env) -> Proc:
        log = tmp_path / f"{kind}{len(started)}.log"
        p = Gunicorn(redis_url, log, *args, **env) if kind == "gunicorn" else RQWorker(redis_url, log, *args, **env)
        started.append(p)
        if isinstance(p, Gunicorn):
            p.wait_ready()
        return p

    yield start
    for p in started:
        p.stop()


class AofRedis:
    """A private redis-server with AOF persistence (as docker compose runs it) that can be restarted."""

    def __init__(self, data_dir: Path):
        self.exe = shutil.which("redis-server")
        if self.exe is None:
            pytest.skip("redis-server is not installed")
        self.dir = data_dir
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [self.exe, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir), "--save", "",
             "--appendonly", "yes", "--appendfsync", "everysec", "--maxmemory-policy", "noeviction",
             "--logfile", "redis.log"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1)

        def up() -> bool:
            try:
                return bool(client.ping())
            except redis.exceptions.RedisError:  # BusyLoadingError while the AOF is replayed, too
                return False

        wait_for(up, timeout=20)
        client.close()

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """SIGTERM (AOF flushed, as ``docker compose restart`` does) or SIGKILL."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(20)


@pytest.fixture
def aof_redis(tmp_path: Path) -> Iterator[AofRedis]:
    """A started AOF redis-server private to one test."""
    data = tmp_path / "redis-aof"
    data.mkdir()
    r = AofRedis(data)
    r.start()
    yield r
    r.stop(signal.SIGKILL)


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


def training_settled(store, pid: int) -> bool:
    """The served head was trained on the latest labels and nothing is queued or running."""
    from rq import Queue

    versions = store.versions(pid)
    q = Queue("dalt", connection=store.r)
    return (
        bool(versions)
        and versions[0]["generation"] == store.generation(pid)
        and not store.train_pending(pid)
        and q.count == 0
        and q.started_job_registry.count == 0
        and q.scheduled_job_registry.count == 0
    )
