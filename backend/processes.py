"""Start and stop the real processes DALT runs as: redis-server, gunicorn, RQ workers.

The one place that starts processes, for the tests, the benchmarks, the demo and ``make run``
(Label Studio is started by :mod:`backend.labelstudio_server`, on top of this module). Every process
gets its own process group and, when asked, a log file; :meth:`ManagedProcess.stop` leaves nothing
behind: RQ's work horse calls ``setsid()``, so signalling the group is not enough, and every descendant
found in ``/proc`` is killed too.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO

import requests

from backend.config import Config

ROOT = Path(__file__).resolve().parent.parent
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


# ------------------------------------------------------------------------------------------------ Redis
class RedisServer:
    """A private ``redis-server`` on loopback that can be stopped and started again on the same port and data.

    ``persistent=False`` (the tests): no RDB, no AOF. ``persistent=True`` (``make run``, the demo, the
    Redis-restart test): AOF with ``appendfsync everysec`` and ``noeviction``, as docker compose runs it.
    """

    def __init__(self, data_dir: Path, port: int | None = None, *, persistent: bool = False,
                 args: Iterable[str] = ()):
        exe = shutil.which("redis-server")
        if exe is None:
            raise RedisServerMissing("redis-server is not installed (or not on PATH): install it, e.g. "
                                     "`apt-get install redis-server`; DALT never uses a Redis it did not start")
        self.dir = Path(data_dir)
        self.port = port or free_port()
        mode = (["--appendonly", "yes", "--appendfsync", "everysec", "--maxmemory-policy", "noeviction"]
                if persistent else ["--save", "", "--appendonly", "no"])
        self.argv = [exe, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir), *mode, *args]
        self.process: ManagedProcess | None = None

    @property
    def url(self) -> str:
        return self.url_for(0)

    def url_for(self, db: int) -> str:
        """URL of one of its databases (Label Studio gets its own, apart from DALT's DB 0)."""
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self, timeout: float = 20) -> RedisServer:
        import redis

        self.dir.mkdir(parents=True, exist_ok=True)
        self.process = ManagedProcess("redis", self.argv, log_path=self.dir / "redis.log").start()
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1)

        def up() -> bool:
            if not self.process.alive:
                raise RuntimeError(f"redis-server exited on port {self.port}\n{self.process.tail()}")
            try:
                return bool(client.ping())
            except redis.exceptions.RedisError:  # refused, or BusyLoadingError while the AOF is replayed
                return False

        try:
            _started(self.process, lambda: wait_for(up, timeout, f"redis-server on port {self.port}"))
        finally:
            client.close()
        return self

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """SIGTERM (the AOF is flushed, as ``docker compose restart`` does) or SIGKILL (a crash)."""
        if self.process is None:
            return
        if sig == signal.SIGTERM:
            self.process.stop(timeout=20)
        else:
            self.process.kill(sig)
            self.process.stop()


def start_redis(data_dir: Path, port: int | None = None, *, persistent: bool = False,
                args: Iterable[str] = (), timeout: float = 20) -> RedisServer:
    """Start a private redis-server and wait until it answers PING.

    Raises:
        RedisServerMissing: redis-server is not installed.
        RuntimeError, TimeoutError: it exited (e.g. the port is taken) or did not answer in time.
    """
    return RedisServer(data_dir, port, persistent=persistent, args=args).start(timeout)


@contextlib.contextmanager
def temporary_redis(prefix: str = "dalt-redis-", timeout: float = 20) -> Iterator[str]:
    """A private, non-persistent redis-server on a free port whose data folder is deleted afterwards.

    Yields:
        Its URL (DB 0). The server is stopped when the block ends.
    """
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        server = start_redis(Path(tmp), timeout=timeout)
        try:
            yield server.url
        finally:
            server.stop()


def _cluster_port() -> int:
    """A free port whose cluster bus port (+10000) is free too."""
    while True:
        port = free_port()
        if port + 10000 <= 65535:
            with contextlib.suppress(OSError), socket.socket() as s:
                s.bind(("127.0.0.1", port + 10000))
                return port


class RedisCluster:
    """A private Redis Cluster of ``masters`` non-persistent ``redis-server --cluster-enabled yes``, no replicas.

    Its :attr:`url` uses the ``redis+cluster://`` scheme that ``backend.store.connection`` opens as a cluster.
    """

    def __init__(self, data_dir: Path, masters: int = 3):
        self.dir = Path(data_dir)
        self.servers = [RedisServer(self.dir / f"node{i}", _cluster_port(), args=[
            "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "5000"])
            for i in range(masters)]

    @property
    def url(self) -> str:
        return f"redis+cluster://127.0.0.1:{self.servers[0].port}"

    def start(self, timeout: float = 30) -> RedisCluster:
        """Start the nodes, assign the 16384 slots over them (``redis-cli --cluster create``), wait for state ok."""
        import redis

        try:
            for server in self.servers:
                server.start(timeout)
            cli = shutil.which("redis-cli") or "redis-cli"
            made = subprocess.run([cli, "--cluster", "create", *(f"127.0.0.1:{s.port}" for s in self.servers),
                                   "--cluster-replicas", "0", "--cluster-yes"],
                                  capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
            if made.returncode != 0:
                raise RuntimeError(f"redis-cli --cluster create failed:\n{made.stdout}{made.stderr}")
            for server in self.servers:
                client = redis.Redis(port=server.port, socket_connect_timeout=1)
                try:
                    wait_for(lambda c=client: c.execute_command("CLUSTER INFO").get("cluster_state") == "ok", timeout,
                             f"cluster_state:ok on port {server.port}", interval=0.1)
                finally:
                    client.close()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for server in self.servers:
            server.stop()


def start_redis_cluster(data_dir: Path, masters: int = 3, timeout: float = 30) -> RedisCluster:
    """Start a private Redis Cluster and wait until every node says ``cluster_state:ok``.

    Raises:
        RedisServerMissing: redis-server is not installed.
        RuntimeError, TimeoutError: a node or ``redis-cli --cluster create`` failed, or the state stayed not ok.
    """
    return RedisCluster(data_dir, masters).start(timeout)


# ------------------------------------------------------------------------------------ gunicorn and RQ
def start_gunicorn(env: Mapping[str, str], port: int | None = None, *, host: str = "127.0.0.1",
                   workers: int = 1, args: Iterable[str] = (), log_path: Path | None = None,
                   timeout: float = 60, app: str = APP) -> ManagedProcess:
    """Serve the app as production does (``./gunicorn.conf.py`` applies; ``args`` win) and wait for /health."""
    port = port or free_port()
    argv = [venv_bin("gunicorn"), app, "-b", f"{host}:{port}", "-w", str(workers), *args]
    probe = "127.0.0.1" if host in ("0.0.0.0", "") else host
    process = ManagedProcess("gunicorn", argv, env, log_path, url=f"http://{probe}:{port}").start()
    return _started(process, lambda: wait_http(process.url + "/health", timeout, process=process))


def start_worker(env: Mapping[str, str], queue: str = "dalt", *, worker_class: str = PRELOADED_WORKER,
                 args: Iterable[str] = (), log_path: Path | None = None, name: str = "worker",
                 scheduler: bool = True) -> ManagedProcess:
    """Start one ``rq worker`` on ``queue`` of the queue Redis that ``env`` names; ``args`` add options.

    The worker listens on ``DALT_QUEUE_REDIS_URL`` (default ``REDIS_URL``); its jobs open the project data
    on ``REDIS_URL`` (``backend.jobs``), which may be a Redis Cluster.

    Args:
        scheduler: run RQ's scheduler in the worker (retry back-offs and delayed reconciles need it); the
            benchmarks leave it out so that no delayed job competes with what they measure.
    """
    argv = [venv_bin("rq"), "worker", "--url", Config.from_env(env, redis_url=env["REDIS_URL"]).queue_url,
            *(["--with-scheduler"] if scheduler else []),
            "--worker-class", worker_class, *args, queue]
    return ManagedProcess(name, argv, env, log_path).start()


def stop_all(processes: Iterable[ManagedProcess]) -> None:
    """Stop in reverse start order: workers and servers first, the Redis they write to last."""
    for p in reversed(list(processes)):
        p.stop()


# --------------------------------------------------------------------------------------------- make run
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def exposure_note(host: str, port: int, env: Mapping[str, str]) -> str:
    """Who can reach a backend bound to ``host``, and how to protect it (``dalt run`` prints it at start)."""
    guide = "see docs/guarantees.md, Deployment security"
    if host in LOOPBACK_HOSTS:
        return (f"reachable from this machine only ({host}:{port}); to connect a Label Studio on another machine, "
                f"set HOST=0.0.0.0 together with BASIC_AUTH_USER/BASIC_AUTH_PASS ({guide})")
    auth = bool(env.get("BASIC_AUTH_USER") and env.get("BASIC_AUTH_PASS"))
    who = f"reachable from every machine that can reach this one on port {port} (HOST={host})"
    if auth:
        return f"{who}; basic auth is on (the webhook: set DALT_WEBHOOK_SECRET too; {guide})"
    return (f"{who} WITHOUT authentication: anyone who reaches the port can send annotations, label configs and "
            f"prediction requests; set BASIC_AUTH_USER/BASIC_AUTH_PASS and DALT_WEBHOOK_SECRET, or firewall the port "
            f"({guide})")


def run_backend(host: str = "127.0.0.1", port: int = 9090, http_workers: int = 2, rq_workers: int = 1, *,
                redis_url: str | None = None, redis_port: int = 6390, var_dir: Path = ROOT / "var",
                queue: str = "dalt", queue_redis_url: str | None = None, graph_queue: str = "dalt-graph") -> int:
    """Run DALT in the foreground until Ctrl-C or SIGTERM: its own Redis unless ``redis_url``, gunicorn, workers.

    The private Redis keeps AOF data in ``var_dir/redis`` on ``redis_port`` (6390 by default, so it never
    collides with a Redis already on 6379). RQ's queues are on ``queue_redis_url``, else on the data Redis
    (which then cannot be a Redis Cluster). Returns the exit code: 0 when stopped, 1 when a process died.
    """
    env = service_env(redis_url or "", **({"DALT_QUEUE_REDIS_URL": queue_redis_url} if queue_redis_url else {}))
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # the user's choice wins
        env[var] = os.environ.get(var, "1")
    prom = var_dir / "prometheus"  # multiprocess metrics of the gunicorn workers; stale files would add up
    shutil.rmtree(prom, ignore_errors=True)
    prom.mkdir(parents=True, exist_ok=True)
    env["PROMETHEUS_MULTIPROC_DIR"] = str(prom)
    processes: list[ManagedProcess] = []
    stopping = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        if not redis_url:
            redis = start_redis(var_dir / "redis", redis_port, persistent=True)
            processes.append(redis.process)
            env["REDIS_URL"] = redis.url
        queue_url = Config.from_env(env).queue_url  # a cluster REDIS_URL needs DALT_QUEUE_REDIS_URL
        processes.append(start_gunicorn(env, port, host=host, workers=http_workers))
        for i in range(rq_workers):
            # a killed job is retried, a dead scheduler restarted, within ~2 min
            processes.append(start_worker(env, queue, args=["--maintenance-interval", "30"], name=f"rq-worker-{i}"))
        # the graph lane on its own worker: a long propagation never delays a training run
        processes.append(start_worker(env, graph_queue, args=["--maintenance-interval", "30"], name="rq-graph-worker"))
    except (RuntimeError, TimeoutError, ValueError) as exc:
        print(f"DALT: {exc}", file=sys.stderr)
        stop_all(processes)
        return 1
    queues = "" if queue_url == env["REDIS_URL"] else f"  DALT_QUEUE_REDIS_URL={queue_url}"
    print(f"DALT: backend http://{host}:{port}  REDIS_URL={env['REDIS_URL']}{queues}  ({rq_workers} RQ worker(s)); "
          "Ctrl-C stops everything", flush=True)
    print(f"DALT: {exposure_note(host, port, env)}", flush=True)
    code = 0
    while not stopping:
        dead = [p.name for p in processes if not p.alive]
        if dead:
            print(f"DALT: {', '.join(dead)} exited; stopping the rest", file=sys.stderr)
            code = 1
            break
        time.sleep(0.3)
    stop_all(processes)
    print("DALT: stopped", flush=True)
    return code
