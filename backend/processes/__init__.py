"""Start and stop the real processes DALT runs as: redis-server, gunicorn, RQ workers.

The one place that starts processes, for the tests, the benchmarks, the demo and ``make run``
(Label Studio is started by :mod:`backend.labelstudio_server`, on top of this module). Every process
gets its own process group and, when asked, a log file; :meth:`ManagedProcess.stop` leaves nothing
behind: RQ's work horse calls ``setsid()``, so signalling the group is not enough, and every descendant
found in ``/proc`` is killed too.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

from backend.config import Config

# Callers import every building block from backend.processes; base and redis_server hold them.
from backend.processes.base import (  # noqa: F401
    APP,
    PRELOADED_WORKER,
    ROOT,
    ManagedProcess,
    RedisServerMissing,
    _started,
    descendants,
    exited,
    free_port,
    service_env,
    venv_bin,
    wait_for,
    wait_http,
)
from backend.processes.redis_server import (  # noqa: F401
    RedisCluster,
    RedisServer,
    start_redis,
    start_redis_cluster,
    temporary_redis,
)


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
