"""``dalt predict``: the current version's predictions for every task, to Label Studio (``backend.predict_all``)."""

from __future__ import annotations

import argparse

HELP = "write the current model version's predictions for every task to Label Studio, in bulk"
DESCRIPTION = """Write the current model version's predictions for every unlabeled task to Label Studio.

Predictions come from the cached embeddings (run `dalt encode` first) with the calibrated score /predict
serves, and go through the project's import-predictions endpoint in batches. Tasks that already have a
prediction of this version are skipped, so an interrupted run resumes. Uses REDIS_URL, LABEL_STUDIO_URL
and LABEL_STUDIO_API_KEY (or the URL and key Label Studio sent to /setup).

  dalt predict --project 3                  # every unlabeled task without this version's prediction
  dalt predict --project 3 --missing-only   # only tasks without any prediction"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--project", type=int, required=True, help="Label Studio project id")
    p.add_argument("--missing-only", action="store_true", help="skip tasks with a prediction of any version")
    p.add_argument("--batch", type=int, default=1000, help="predictions per request (default 1000)")
    p.add_argument("--redis-url", help="Redis URL (default: REDIS_URL)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from backend.cli.accept import access_for
    from backend.predict_all import push_predictions

    if args.batch < 1:
        print("--batch must be at least 1")
        return 2
    store, access = access_for(args)
    if access is None:
        return 2
    try:
        res = push_predictions(store, access, args.project, missing_only=args.missing_only, batch=args.batch,
                               progress=not args.no_progress)
    except LookupError as exc:
        print(str(exc).strip("'\""))
        return 1
    print(f"project {res.project} ({res.version}): {res.written} predictions written, {res.skipped} tasks already "
          f"had one, {res.labeled} labeled tasks skipped; {res.tasks_per_second:.0f} tasks/s")
    return 0
