"""Run DALT with everything it needs: Redis (unless REDIS_URL is set), gunicorn and RQ workers.

``dalt run`` (and ``make run``) calls this. Ctrl-C (or SIGTERM) stops every process it started. Without
``REDIS_URL`` it starts its own ``redis-server`` with AOF persistence and ``noeviction``, data under
``var/redis/``, on ``DALT_REDIS_PORT`` (default 6390, so it never collides with a Redis already on 6379).

TODO(merge): start the processes with ``backend.processes`` (start_redis with AOF, start_gunicorn,
start_worker) once it exists; the behaviour described above stays.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # the repository: gunicorn reads ./gunicorn.conf.py from here
BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class RunOptions:
    """Where and how wide to serve (``dalt run``'s defaults come from PORT, HOST, DALT_*_WORKERS)."""

    port: int = 9090
    host: str = "0.0.0.0"
    http_workers: int = 2
    rq_workers: int = 1


def _wait_port(host: str, port: int, timeout: float = 20) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex((host, port)) == 0:
                return True
        time.sleep(0.1)
    return False


def run_backend(opts: RunOptions) -> int:
    """Start Redis (unless REDIS_URL), gunicorn and the RQ workers; return when stopped (exit status)."""
    var = ROOT / "var"
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    env.setdefault("MKL_NUM_THREADS", "1")
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    procs: list[tuple[str, subprocess.Popen]] = []

    def start(name: str, cmd: list[str]) -> None:
        procs.append((name, subprocess.Popen(cmd, env=env, cwd=ROOT, start_new_session=True)))

    if not env.get("REDIS_URL"):
        exe = shutil.which("redis-server")
        if exe is None:
            print("redis-server not found: install it (apt-get install redis-server) or set REDIS_URL", file=sys.stderr)
            return 2
        port = int(env.get("DALT_REDIS_PORT", 6390))
        (var / "redis").mkdir(parents=True, exist_ok=True)
        start("redis", [exe, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(var / "redis"),
                        "--appendonly", "yes", "--maxmemory-policy", "noeviction", "--logfile", "redis.log"])
        if not _wait_port("127.0.0.1", port):
            print(f"redis-server did not start on port {port}; see var/redis/redis.log", file=sys.stderr)
            _stop(procs)
            return 1
        env["REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
    prom = var / "prometheus"
    shutil.rmtree(prom, ignore_errors=True)
    prom.mkdir(parents=True, exist_ok=True)
    env["PROMETHEUS_MULTIPROC_DIR"] = str(prom)

    # Other gunicorn settings (access log without query strings, timeout) come from ./gunicorn.conf.py.
    start("gunicorn", [str(BIN / "gunicorn"), "backend.app:create_app()", "-b", f"{opts.host}:{opts.port}",
                       "-w", str(opts.http_workers)])
    for i in range(opts.rq_workers):
        start(f"rq-worker-{i}", [str(BIN / "rq"), "worker", "--url", env["REDIS_URL"], "--with-scheduler",
                                 "--worker-class", "backend.worker.PreloadedWorker",
                                 # a killed job is retried, a dead scheduler restarted, within ~2 min
                                 "--maintenance-interval", "30", env.get("DALT_QUEUE", "dalt")])
    print(f"DALT: backend http://{opts.host}:{opts.port}  REDIS_URL={env['REDIS_URL']}  "
          f"({opts.rq_workers} RQ worker(s)); Ctrl-C stops everything", flush=True)

    stopping = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    code = 0
    while not stopping:
        for name, p in procs:
            if p.poll() is not None:
                print(f"DALT: {name} exited with {p.returncode}; stopping the rest", file=sys.stderr)
                stopping, code = True, 1
                break
        time.sleep(0.3)
    _stop(procs)
    print("DALT: stopped", flush=True)
    return code


def _stop(procs: list[tuple[str, subprocess.Popen]]) -> None:
    """Stop workers and the server first, Redis last (so jobs can finish writing)."""
    for _name, p in reversed(procs):
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)

