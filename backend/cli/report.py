"""``dalt report``: print the live evaluation recorded in Redis (``backend.report``)."""

from __future__ import annotations

import argparse

HELP = "print the live evaluation (predictions kept, per model version)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--project", type=int, action="append", help="project id (repeatable; default: all)")
    p.add_argument("--redis-url", help="Redis URL (default: REDIS_URL)")
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")


def run(args: argparse.Namespace) -> int:
    import json

    from backend.config import Config
    from backend.report import evaluations, format_report
    from backend.store import Store

    config = Config.from_env()
    store = Store.from_url(args.redis_url or config.redis_url)
    data = evaluations(store, args.project)
    if args.json:
        print(json.dumps({str(pid): s for pid, s in data.items()}, indent=1))
    else:
        print(format_report(store, data))
    return 0
