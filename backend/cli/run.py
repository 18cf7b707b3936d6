"""``dalt run``: the backend with everything it needs (``backend.run``)."""

from __future__ import annotations

import argparse
import os

HELP = "run the backend: gunicorn, RQ workers, its own Redis unless REDIS_URL"
DESCRIPTION = """Run DALT with everything it needs: Redis (unless REDIS_URL is set), gunicorn and RQ workers.

Ctrl-C (or SIGTERM) stops every process it started. Without REDIS_URL it starts its own redis-server with
AOF persistence and noeviction, data under var/redis/, on DALT_REDIS_PORT (default 6390, so it never
collides with a Redis already on 6379)."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--port", type=int, default=int(os.environ.get("PORT", 9090)), help="HTTP port (9090)")
    p.add_argument("--host", default=os.environ.get("HOST", "0.0.0.0"), help="bind address (0.0.0.0)")
    p.add_argument("--http-workers", type=int, default=int(os.environ.get("DALT_HTTP_WORKERS", 2)))
    p.add_argument("--rq-workers", type=int, default=int(os.environ.get("DALT_RQ_WORKERS", 1)))


def run(args: argparse.Namespace) -> int:
    from backend.run import RunOptions, run_backend

    return run_backend(RunOptions(port=args.port, host=args.host, http_workers=args.http_workers,
                                  rq_workers=args.rq_workers))
