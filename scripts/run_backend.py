"""Run DALT with everything it needs: Redis (unless REDIS_URL is set), gunicorn and an RQ worker.

``make run`` calls this. Ctrl-C (or SIGTERM) stops every process it started. Without ``REDIS_URL`` it
starts its own ``redis-server`` with AOF persistence and ``noeviction``, data under ``var/redis/``, on
``DALT_REDIS_PORT`` (default 6390, so it never collides with a Redis already on 6379).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def _wait_port(host: str, port: int, timeout: float = 20) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex((host, port)) == 0:
                return True
        time.sleep(0.1)
    return False


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=int(os.environ.get("PORT", 9090)), help="HTTP port (9090)")
    ap.add_argument("--host", default=os.environ.get("HOST", "0.0.0.0"), help="bind address (0.0.0.0)")
    ap.add_argument("--http-workers", type=int, default=int(os.environ.get("DALT_HTTP_WORKERS", 2)))
    ap.add_argument("--rq-workers", type=int, default=int(os.environ.get("DALT_RQ_WORKERS", 1)))
    args = ap.parse_args(argv)

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
    start("gunicorn", [str(BIN / "gunicorn"), "backend.app:create_app()", "-b", f"{args.host}:{args.port}",
                       "-w", str(args.http_workers)])
    for i in range(args.rq_workers):
        start(f"rq-worker-{i}", [str(BIN / "rq"), "worker", "--url", env["REDIS_URL"], "--with-scheduler",
                                 "--worker-class", "backend.worker.PreloadedWorker",
                                 # a killed job is retried, a dead scheduler restarted, within ~2 min
                                 "--maintenance-interval", "30", env.get("DALT_QUEUE", "dalt")])
    print(f"DALT: backend http://{args.host}:{args.port}  REDIS_URL={env['REDIS_URL']}  "
          f"({args.rq_workers} RQ worker(s)); Ctrl-C stops everything", flush=True)

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


if __name__ == "__main__":
    sys.exit(main())
