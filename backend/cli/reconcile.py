"""``dalt reconcile``: resync DALT's annotations with Label Studio's, by hand (``backend.reconcile``)."""

from __future__ import annotations

import argparse
import sys
from typing import Any, TextIO

HELP = "resync DALT's annotations with Label Studio's"
DESCRIPTION = """Resync DALT's annotations with Label Studio's, by hand (webhooks lost during an outage, say).

Reads every task with its annotations through label-studio-sdk and makes the backend's labels match,
then queues training where labels changed. Uses REDIS_URL, LABEL_STUDIO_URL and LABEL_STUDIO_API_KEY
(or the URL and key Label Studio sent to /setup).

  dalt reconcile                 # every project the backend knows
  dalt reconcile --project 3     # one project (repeatable)
  dalt reconcile --enqueue       # as RQ jobs, run by the workers"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--project", type=int, action="append", help="project id (default: every known project)")
    p.add_argument("--enqueue", action="store_true", help="queue RQ jobs instead of running here")
    p.add_argument("--only-mismatched", action="store_true",
                   help="skip projects whose latest webhook counters match (default: crawl every project)")


def reconcile_projects(store: Any, config: Any, pids: list[int], *, enqueue: bool = False, force: bool = True,
                       out: TextIO | None = None) -> tuple[dict[str, int], int]:
    """Reconcile (or queue a reconcile of) each project, one line each; returns the totals and failures.

    One unreachable project does not stop the others. Lines go to ``out`` (default: the current stdout).
    """
    out = out or sys.stdout
    from tqdm import tqdm

    from backend.queueing import enqueue_reconcile, job_queue
    from backend.reconcile import reconcile_project

    totals = {"added": 0, "updated": 0, "removed": 0}
    failed = 0
    queue = job_queue(config, store) if enqueue else None
    for pid in tqdm(pids, desc="reconcile", unit="project", disable=len(pids) < 2):
        if queue is not None:
            state = enqueue_reconcile(store, queue, config, pid, reason="dalt reconcile", force=force)
            print(f"project {pid}: {state}", file=out)
            continue
        try:
            res = reconcile_project(store, config, pid, force=force)
        except Exception as exc:  # one unreachable project must not stop the others
            failed += 1
            print(f"project {pid}: failed ({type(exc).__name__}: {str(exc)[:200]})", file=out)
            continue
        for k in totals:
            totals[k] += getattr(res, k)
        print(f"project {pid}: {res.status} {res.reason}".rstrip()
              + (f" ({res.ls_annotations} annotations in Label Studio; +{res.added} ~{res.updated} -{res.removed};"
                 f" training {'queued' if res.training_queued else 'not needed'})" if res.status == "resynced" else ""),
              file=out)
    return totals, failed


def run(args: argparse.Namespace) -> int:
    from backend.config import Config
    from backend.store import Store

    config = Config.from_env()
    store = Store.from_url(config.redis_url, keep_versions=config.keep_versions)
    pids = args.project or store.projects()
    totals, failed = reconcile_projects(store, config, pids, enqueue=args.enqueue, force=not args.only_mismatched)
    verb = "queued" if args.enqueue else "reconciled"
    print(f"{verb} {len(pids) - failed} project(s), {failed} failed: {totals['added']} added, "
          f"{totals['updated']} updated, {totals['removed']} removed")
    return 1 if failed else 0
