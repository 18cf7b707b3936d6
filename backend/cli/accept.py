"""``dalt accept``: bulk accept the suggestions whose score meets a precision target (``backend.accept``)."""

from __future__ import annotations

import argparse
from typing import Any

HELP = "bulk accept suggestions at a chosen precision: data manager tabs to accept and to audit"
DESCRIPTION = """Pick the lowest score threshold whose expected precision (the accepted tasks' calibrated scores)
and observed precision on the evidence DALT has (held-out labels and suggestions annotators kept or
corrected) reach --precision (--method bound: a one-sided 95% lower bound on the evidence does). Prints
the coverage (tasks, per class) and the expected number of wrong labels; then creates a data manager tab
with those tasks (run "Create Annotations From Predictions" on it) and an audit tab with a random sample of
them for a person to review. Run `dalt predict --project ID` first: the tab filters on stored predictions.

  dalt accept --project 3 --precision 0.99 --dry-run   # only print what would be accepted
  dalt accept --project 3 --precision 0.99             # create the two tabs
  dalt accept --project 3 --precision 0.99 --apply     # and create the annotations through the API"""


def _fraction(value: str) -> float:
    v = float(value)
    if not 0 < v < 1:
        raise argparse.ArgumentTypeError("must be between 0 and 1 (exclusive)")
    return v


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--project", type=int, required=True, help="Label Studio project id")
    p.add_argument("--precision", type=_fraction, default=0.99, help="target precision (default 0.99)")
    p.add_argument("--method", choices=("expected", "bound"), default="expected",
                   help="expected: calibrated expected precision (default); bound: 95%% lower bound on the evidence")
    p.add_argument("--dry-run", action="store_true", help="print the plan; create nothing")
    p.add_argument("--apply", action="store_true", help="also create the annotations through the API")
    p.add_argument("--audit", type=_fraction, default=0.01, help="audit sample share (default 0.01, >= 50 tasks)")
    p.add_argument("--audit-min", type=int, default=50, help="smallest audit sample (default 50)")
    p.add_argument("--seed", type=int, default=0, help="audit sample seed (default 0)")
    p.add_argument("--redis-url", help="Redis URL (default: REDIS_URL)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def access_for(args: argparse.Namespace) -> tuple[Any, Any]:
    """The store and the Label Studio access for ``args.project`` (None access, after a message, if unusable)."""
    from backend.config import Config
    from backend.labelstudio import label_studio_access
    from backend.store import Store

    config = Config.from_env()
    store = Store.from_url(args.redis_url or config.redis_url)
    access = label_studio_access(config, store.project(args.project))
    if not access.usable:
        print("no Label Studio URL and key for this project: set LABEL_STUDIO_URL and LABEL_STUDIO_API_KEY")
        return store, None
    access.check_reachable(config)
    return store, access


def run(args: argparse.Namespace) -> int:
    import json

    from backend.accept import format_accept, run_accept

    if args.dry_run and args.apply:
        print("--dry-run and --apply exclude each other")
        return 2
    store, access = access_for(args)
    if access is None and not args.dry_run:
        return 2
    try:
        res = run_accept(store, access, args.project, args.precision, dry_run=args.dry_run, apply=args.apply,
                         audit_share=args.audit, audit_min=args.audit_min, seed=args.seed, method=args.method)
    except LookupError as exc:
        print(str(exc).strip("'\""))
        return 1
    print(json.dumps(res.as_dict(), indent=1) if args.json else format_accept(res))
    p = res.plan
    print(f"project {p.project}: {len(p.tasks)} tasks accepted at precision {p.target:g} "
          f"(threshold {p.threshold if p.threshold is not None else '-'}), audit {len(p.audit)}"
          + (", dry run" if args.dry_run else ""))
    return 0
