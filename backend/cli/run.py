"""``dalt run``: the backend with everything it needs (``backend.processes.run_backend``)."""

from __future__ import annotations

import argparse

HELP = "run the backend: gunicorn, RQ workers, its own Redis unless REDIS_URL"
DESCRIPTION = """Run DALT with everything it needs: Redis (unless REDIS_URL is set), gunicorn and RQ workers.

Ctrl-C (or SIGTERM) stops every process it started. Without REDIS_URL it starts its own redis-server with
AOF persistence and noeviction, data under var/redis/, on DALT_REDIS_PORT (default 6390, so it never
collides with a Redis already on 6379). It listens on 127.0.0.1 unless HOST (or --host) says otherwise, and
prints who can reach it and how to protect it. Defaults come from PORT, HOST, DALT_HTTP_WORKERS,
DALT_RQ_WORKERS; RQ's queues go to DALT_QUEUE_REDIS_URL when set (required when REDIS_URL is a
redis+cluster:// URL; docs/configuration.md)."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--port", type=int, help="HTTP port (default: PORT, else 9090)")
    p.add_argument("--host", help="bind address (default: HOST, else 127.0.0.1: this machine only)")
    p.add_argument("--http-workers", type=int, help="gunicorn worker processes (default: DALT_HTTP_WORKERS, else 2)")
    p.add_argument("--rq-workers", type=int, help="RQ worker processes (default: DALT_RQ_WORKERS, else 1)")


def run(args: argparse.Namespace) -> int:
    from backend.config import Config, ProcessConfig
    from backend.processes import run_backend

    given = {"port": args.port, "host": args.host, "http_workers": args.http_workers, "rq_workers": args.rq_workers}
    opts = ProcessConfig.from_env(**{k: v for k, v in given.items() if v is not None})
    return run_backend(host=opts.host, port=opts.port, http_workers=opts.http_workers, rq_workers=opts.rq_workers,
                       redis_url=opts.redis_url or None, redis_port=opts.redis_port,
                       queue_redis_url=opts.queue_redis_url or None,
                       graph_queue=Config.from_env().graph_queue)
