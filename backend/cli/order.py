"""``dalt order``: write the cold-start order into a Label Studio project (``backend.ordering``)."""

from __future__ import annotations

import argparse

HELP = "write the cold-start order into a Label Studio project"
DESCRIPTION = """Write DALT's cold-start order into a Label Studio project, so annotators label the most
typical tasks first: each task's data gets `dalt_order`, and a data manager tab "DALT order" sorts by it.

  LABEL_STUDIO_URL=http://localhost:8080 LABEL_STUDIO_API_KEY=... dalt order --project 3"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--project", type=int, required=True, help="Label Studio project id (also the store key)")
    p.add_argument("--ls-url", help="Label Studio URL (default: LABEL_STUDIO_URL, else what /setup saved)")
    p.add_argument("--redis-url", help="Redis URL (default: REDIS_URL)")
    p.add_argument("--clusters", type=int, help="k-means clusters (default: 5 per class, at least 10)")
    p.add_argument("--seed", type=int, default=0, help="k-means and shuffle seed")
    p.add_argument("--field", default="dalt_order", help="task data field to write (default dalt_order)")
    p.add_argument("--dry-run", action="store_true", help="compute and print the first tasks, write nothing")
    p.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> int:
    from backend.config import Config
    from backend.ordering import VIEW_TITLE, compute_order, ensure_view, label_studio_client, write_order
    from backend.store import Store

    config = Config.from_env()
    store = Store.from_url(args.redis_url or config.redis_url)
    positions = compute_order(store, args.project, args.clusters, args.seed)
    first = sorted(positions, key=positions.get)[:10]
    print(f"project {args.project}: order of {len(positions)} tasks; first: {first}")
    if args.dry_run:
        return 0
    client = label_studio_client(config, store, args.project, args.ls_url)
    counts = write_order(client, args.project, positions, args.field, progress=not args.no_progress)
    view = ensure_view(client, args.project, args.field)
    print(f"wrote {counts['written']}, unchanged {counts['unchanged']}, not encoded {counts['not_encoded']}; "
          f"data manager tab {VIEW_TITLE!r} (id {view}) sorts by tasks:data.{args.field}")
    return 0
