"""``dalt run``: the backend with everything it needs (``backend.processes.run_backend``)."""

from __future__ import annotations

import argparse
import os

HELP = "run the backend: gunicorn, RQ workers, its own Redis unless REDIS_URL"
DESCRIPTION = """Run DALT with everything it needs: Redis (unless REDIS_URL is set), gunicorn and RQ workers.

Ctrl-C (or SIGTERM) stops every process it started. Without REDIS_URL it starts its own redis-server with
AOF persistence and noeviction, data under var/redis/, on DALT_REDIS_PORT (default 6390, so it never
collides with a Redis already on 6379). It listens on 127.0.0.1 unless HOST (or --host) says otherwise, and
prints who can reach it and how to protect it."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--port", type=int, default=int(os.environ.get("PORT", 9090)), help="HTTP port (9090)")
    p.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"),
                   help="bind address (HOST, else 127.0.0.1: this machine only)")
    p.add_argument("--http-workers", type=int, default=int(os.environ.get("DALT_HTTP_WORKERS", 2)))
    p.add_argument("--rq-workers", type=int, default=int(os.environ.get("DALT_RQ_WORKERS", 1)))


def run(args: argparse.Namespace) -> int:
    from backend.processes import run_backend

    return run_backend(host=args.host, port=args.port, http_workers=args.http_workers, rq_workers=args.rq_workers,
                       redis_url=os.environ.get("REDIS_URL") or None,
                       redis_port=int(os.environ.get("DALT_REDIS_PORT", 6390)))
