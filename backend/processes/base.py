"""The building blocks of :mod:`backend.processes`: free ports, waiting, and a process that leaves nothing behind.

Every process gets its own process group and, when asked, a log file; :meth:`ManagedProcess.stop` leaves
nothing behind: RQ's work horse calls ``setsid()``, so signalling the group is not enough, and every
descendant found in ``/proc`` is killed too.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import IO

import requests

ROOT = Path(__file__).resolve().parent.parent.parent
PRELOADED_WORKER = "backend.worker.PreloadedWorker"
APP = "backend.app:create_app()"


class RedisServerMissing(RuntimeError):
    """``redis-server`` is not installed: nothing that needs a private Redis can run (never a skip)."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (the caller binds it soon after)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_for(predicate: Callable[[], object], timeout: float = 30.0, what: str = "condition", *,
             interval: float = 0.05, ignore: tuple[type[BaseException], ...] = ()) -> object:
    """Poll ``predicate()`` until it is truthy and return its value.

    Args:
        ignore: exceptions that count as "not yet" (e.g. a connection refused while a server starts).

    Raises:
        TimeoutError: naming ``what``, after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = predicate()
        except ignore:
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not met within {timeout:.0f} s")
        time.sleep(interval)


def wait_http(url: str, timeout: float = 60.0, *, process: ManagedProcess | None = None,
              ok: Callable[[requests.Response], bool] = lambda r: r.status_code == 200,
              interval: float = 0.2) -> requests.Response:
    """Poll ``url`` until ``ok(response)``; fail early, with the log's tail, when ``process`` exited.

    Raises:
        RuntimeError: the process exited, or ``timeout`` seconds passed.
    """
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        if process is not None and not process.alive:
            raise RuntimeError(f"{process.name} exited with {process.proc.returncode}\n{process.tail()}")
        try:
            r = requests.get(url, timeout=2)
            if ok(r):
                return r
            last = r.status_code
        except requests.RequestException as exc:
            last = exc
        time.sleep(interval)
    raise RuntimeError(f"{url} not ready after {timeout:.0f} s (last: {last})\n{process.tail() if process else ''}")


def venv_bin(name: str) -> str:
    """An executable of the virtualenv running this code (``rq``, ``gunicorn``), else the name on PATH."""
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name


def _start_time(pid: int) -> int | None:
    """The kernel's start time of ``pid`` (with the pid, it names one process even after pid reuse)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return int(fh.read().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def exited(pid: int) -> bool:
    """``pid`` no longer runs: gone, or a zombie waiting to be reaped."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def descendants(pid: int) -> list[int]:
    """Every live descendant of ``pid``, from ``/proc``; deepest first, so a kill leaves no orphan running."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                parents[int(entry)] = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
    out: list[int] = []
    frontier = {pid}
    while frontier:
        kids = [p for p, pp in parents.items() if pp in frontier]
        out = kids + out
        frontier = set(kids)
    return out


def service_env(redis_url: str, base: Mapping[str, str] | None = None, **extra: str) -> dict[str, str]:
    """Environment for DALT's own processes: this Redis, one BLAS thread each, unbuffered output.

    A ``DALT_QUEUE_REDIS_URL`` of ``base`` is not inherited: the queues are on ``redis_url`` unless ``extra``
    names their Redis (a test or a benchmark never queues on a Redis it did not start).
    """
    env = dict(os.environ if base is None else base)
    env.pop("DALT_QUEUE_REDIS_URL", None)
    env.update(REDIS_URL=redis_url, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1",
               PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


class ManagedProcess:
    """A child process in its own process group, its output in ``log_path`` (or this terminal's)."""

    def __init__(self, name: str, argv: list[str], env: Mapping[str, str] | None = None,
                 log_path: Path | None = None, cwd: Path | None = ROOT, url: str | None = None):
        self.name, self.argv, self.log_path, self.cwd, self.url = name, argv, log_path, cwd, url
        self.env = dict(os.environ if env is None else env)
        self.proc: subprocess.Popen | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> ManagedProcess:
        out = None
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            out = self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(self.argv, env=self.env, cwd=self.cwd, stdout=out,
                                     stderr=subprocess.STDOUT if out else None, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None, f"{self.name} was never started"
        return self.proc.pid

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _family(self) -> list[tuple[int, int | None]]:
        """Descendants then the process itself, each with its start time (see :func:`_start_time`)."""
        if not self.alive:
            return []
        return [(p, _start_time(p)) for p in [*descendants(self.pid), self.pid]]

    @staticmethod
    def _signal(family: Iterable[tuple[int, int | None]], sig: int) -> None:
        for pid, started in family:
            if started is not None and _start_time(pid) == started:  # still the process we listed
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, sig)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the process and every descendant at once, as when its container or machine dies."""
        family = self._family()
        self._signal(family, sig)
        if family and sig == signal.SIGKILL:
            self.proc.wait(20)

    def stop(self, timeout: float = 15) -> None:
        """SIGTERM the group (a worker finishes its job, gunicorn its requests), SIGKILL what is left.

        Descendants are listed BEFORE the leader goes: once it exits, a work horse in its own session is
        no longer findable as its child.
        """
        family = self._family()
        if self.alive:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        self._signal(family, signal.SIGKILL)
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGKILL)  # children that outlived the leader (gunicorn workers)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(10)
        if self._log is not None:
            self._log.close()
            self._log = None

    def log(self) -> str:
        """Everything the process printed so far ("" without a log file)."""
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")

    def tail(self, lines: int = 40) -> str:
        """The last lines of the log, for error messages."""
        return "\n".join(self.log().splitlines()[-lines:])


def _started(process: ManagedProcess, ready: Callable[[], object]) -> ManagedProcess:
    """Run ``ready`` (which raises when the process is not up in time); stop the process if it fails."""
    try:
        ready()
    except BaseException:
        process.stop()
        raise
    return process
