"""``dalt purge``: delete everything DALT keeps about a project (``Store.purge_project``)."""

from __future__ import annotations

import argparse
import sys

HELP = "delete every key DALT keeps for a project (after deleting it in Label Studio)"
DESCRIPTION = """Delete everything DALT keeps about a project: settings, labels, embeddings of every encoder, encoders,
heads and versions, evaluation, reconcile state (every Redis key under dalt:{p<ID>}:), and the project
from the project lists. Label Studio's own data is not touched.

Label Studio tells only organization-wide webhooks that a project was deleted; a backend connected to the
project hears nothing. Run this after deleting a project in Label Studio.

  dalt purge --project 3           # shows what would go and asks to type the id
  dalt purge --project 3 --yes     # no question (scripts)"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--project", type=int, required=True, help="project id")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")


def run(args: argparse.Namespace) -> int:
    from backend.config import Config
    from backend.store import Store

    config = Config.from_env()
    store = Store.from_url(config.redis_url, keep_versions=config.keep_versions)
    pid = args.project
    found = store.project_keys(pid)
    known = pid in store.projects()
    if not found and not known:
        print(f"project {pid}: nothing to purge (no keys under dalt:{{p{pid}}}:)")
        return 0
    if not args.yes:
        if not sys.stdin.isatty():
            raise ValueError(f"project {pid} has {len(found)} keys; pass --yes to delete them without a terminal")
        answer = input(f"delete {len(found)} keys of project {pid} from {config.redis_url.split('@')[-1]}? "
                       f"type {pid} to confirm: ")
        if answer.strip() != str(pid):
            print(f"project {pid}: not purged")
            return 1
    removed = store.purge_project(pid)
    print(f"project {pid}: purged {removed} keys")
    return 0
