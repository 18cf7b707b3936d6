"""Print DALT's live evaluation: per project and model version, how often annotators kept the prediction.

Reads what the webhook recorded (see ``backend/evaluation.py``): for each version, the annotations that
accepted or corrected the prediction served for their task, the acceptance rate, and the mean annotation
``lead_time`` of accepted vs corrected tasks (the time a right pre-annotation saves).

Usage::

    scripts/report.py                      # every project, Redis from REDIS_URL
    scripts/report.py --project 3 --json   # one project, machine-readable
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from backend.config import Config  # noqa: E402
from backend.evaluation import evaluation_summary  # noqa: E402
from backend.store import Store  # noqa: E402


def _fmt(value: Any, pct: bool = False) -> str:
    if value is None:
        return "-"
    return f"{100 * value:.1f}%" if pct else f"{value:.1f}"


def format_project(pid: int, summary: dict[str, Any], current: str | None) -> str:
    """A plain-text table of one project's live evaluation."""
    lines = [f"project {pid} (serving {current or 'no model yet'})"]
    lines.append(
        f"  {'version':<9}{'evaluated':>10}{'accepted':>10}{'corrected':>10}{'rate':>9}"
        f"{'lead acc s':>12}{'lead cor s':>12}"
    )
    rows = [*summary["versions"].items(), ("all", summary["total"])]
    for v, s in rows:
        lines.append(
            f"  {v:<9}{s['evaluated']:>10}{s['accepted']:>10}{s['corrected']:>10}{_fmt(s['acceptance_rate'], True):>9}"
            f"{_fmt(s['lead_time_accepted_mean']):>12}{_fmt(s['lead_time_corrected_mean']):>12}"
        )
    if not summary["versions"]:
        lines.append("  no annotation has been compared with a served prediction yet")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--project", type=int, action="append", help="project id (repeatable; default: all)")
    p.add_argument("--redis-url", help="Redis URL (default: REDIS_URL)")
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    return p


def main(argv: list[str] | None = None) -> int:
    opts = build_parser().parse_args(argv)
    config = Config.from_env()
    store = Store.from_url(opts.redis_url or config.redis_url)
    pids = opts.project or store.projects()
    data = {pid: evaluation_summary(store, pid) for pid in pids}
    if opts.json:
        print(json.dumps({str(pid): s for pid, s in data.items()}, indent=1))
    else:
        for pid, summary in data.items():
            print(format_project(pid, summary, store.current_version(pid)))
            print()
        total = sum(s["total"]["evaluated"] for s in data.values())
        accepted = sum(s["total"]["accepted"] for s in data.values())
        rate = f"{100 * accepted / total:.1f}%" if total else "-"
        print(f"{len(data)} project(s), {total} annotations evaluated, {rate} of predictions accepted")
    return 0


if __name__ == "__main__":
    sys.exit(main())
