"""Resync DALT's annotations with Label Studio's, by hand (webhooks lost during an outage, say).

Reads every task with its annotations through label-studio-sdk and makes the backend's labels match,
then queues training where labels changed. Uses ``REDIS_URL``, ``LABEL_STUDIO_URL`` and
``LABEL_STUDIO_API_KEY`` (or the URL and key Label Studio sent to ``/setup``).

    python scripts/reconcile.py                 # every project the backend knows
    python scripts/reconcile.py --project 3     # one project (repeatable)
    python scripts/reconcile.py --enqueue       # as RQ jobs, run by the workers
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rq import Queue  # noqa: E402
from tqdm import tqdm  # noqa: E402

from backend.config import Config  # noqa: E402
from backend.queueing import enqueue_reconcile  # noqa: E402
from backend.reconcile import reconcile_project  # noqa: E402
from backend.store import Store  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--project", type=int, action="append", help="project id (default: every known project)")
    ap.add_argument("--enqueue", action="store_true", help="queue RQ jobs instead of running here")
    ap.add_argument("--only-mismatched", action="store_true",
                    help="skip projects whose latest webhook counters match (default: crawl every project)")
    args = ap.parse_args(argv)
    config = Config.from_env()
    store = Store.from_url(config.redis_url, keep_versions=config.keep_versions)
    pids = args.project or store.projects()
    totals = {"added": 0, "updated": 0, "removed": 0}
    failed = 0
    for pid in tqdm(pids, desc="reconcile", unit="project", disable=len(pids) < 2):
        if args.enqueue:
            state = enqueue_reconcile(store, Queue(config.queue_name, connection=store.r), config, pid,
                                      reason="scripts/reconcile.py", force=not args.only_mismatched)
            print(f"project {pid}: {state}")
            continue
        try:
            res = reconcile_project(store, config, pid, force=not args.only_mismatched)
        except Exception as exc:  # one unreachable project must not stop the others
            failed += 1
            print(f"project {pid}: failed ({type(exc).__name__}: {str(exc)[:200]})")
            continue
        for k in totals:
            totals[k] += getattr(res, k)
        print(f"project {pid}: {res.status} {res.reason}".rstrip()
              + (f" ({res.ls_annotations} annotations in Label Studio; +{res.added} ~{res.updated} -{res.removed};"
                 f" training {'queued' if res.training_queued else 'not needed'})" if res.status == "resynced" else ""))
    verb = "queued" if args.enqueue else "reconciled"
    print(f"{verb} {len(pids) - failed} project(s), {failed} failed: {totals['added']} added, "
          f"{totals['updated']} updated, {totals['removed']} removed")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
