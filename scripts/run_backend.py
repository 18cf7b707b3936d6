"""Run DALT with everything it needs: Redis (unless REDIS_URL is set), gunicorn and an RQ worker.

``make run`` calls this. Ctrl-C (or SIGTERM) stops every process it started. Without ``REDIS_URL`` it
starts its own ``redis-server`` with AOF persistence and ``noeviction``, data under ``var/redis/``, on
``DALT_REDIS_PORT`` (default 6390, so it never collides with a Redis already on 6379). The logic lives in
``backend/processes.py`` (``run_backend``).
"""

from __future__ import annotations

import argparse
import os
import sys

from backend.processes import run_backend


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=int(os.environ.get("PORT", 9090)), help="HTTP port (9090)")
    ap.add_argument("--host", default=os.environ.get("HOST", "0.0.0.0"), help="bind address (0.0.0.0)")
    ap.add_argument("--http-workers", type=int, default=int(os.environ.get("DALT_HTTP_WORKERS", 2)))
    ap.add_argument("--rq-workers", type=int, default=int(os.environ.get("DALT_RQ_WORKERS", 1)))
    args = ap.parse_args(argv)
    return run_backend(args.host, args.port, args.http_workers, args.rq_workers,
                       redis_url=os.environ.get("REDIS_URL") or None,
                       redis_port=int(os.environ.get("DALT_REDIS_PORT", 6390)),
                       queue=os.environ.get("DALT_QUEUE", "dalt"))


if __name__ == "__main__":
    sys.exit(main())
