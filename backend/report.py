"""DALT's live evaluation as text: per project and model version, how often annotators kept the prediction.

Reads what the webhook recorded (see ``backend/evaluation.py``): for each version, the annotations that
accepted or corrected the prediction served for their task, the acceptance rate, and the mean annotation
``lead_time`` of accepted vs corrected tasks (the time a right pre-annotation saves); the reliability table
of the served scores (expected vs observed share right per score bin), and the last ``dalt accept`` run
with the error rate it promised next to the one its audit sample measured.

``dalt report`` prints it::

    dalt report                      # every project, Redis from REDIS_URL
    dalt report --project 3 --json   # one project, machine-readable
"""

from __future__ import annotations

from typing import Any

from backend.evaluation import evaluation_summary
from backend.store import Store


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
    lines.extend(format_reliability(summary["total"]))
    lines.extend(format_accept_run(summary.get("accept_run")))
    return "\n".join(lines)


def format_accept_run(run: dict[str, Any] | None) -> list[str]:
    """The last ``dalt accept`` run: the promised error rate next to the one its audit sample measured."""
    if not run:
        return []
    audit = run.get("audit_counts", {})
    reviewed = audit.get("confirmed", 0) + audit.get("corrected", 0)
    realised = audit.get("corrected", 0) / reviewed if reviewed else None
    promised = _fmt(run.get("promised_error_rate"), True)
    return [f"  bulk accept ({run.get('version')}): target precision {run.get('target')}, score >= "
            f"{run.get('threshold')}, {run.get('accepted')} tasks; promised error {promised}"
            f", expected wrong {run.get('expected_wrong')}",
            f"  audit: {reviewed} of {run.get('audit_size')} reviewed, {audit.get('corrected', 0)} corrected; "
            f"realised error {_fmt(realised, True)}"]


def format_reliability(total: dict[str, Any]) -> list[str]:
    """The reliability table: per bin of the served score, expected (mean score) vs observed accuracy."""
    rows = total.get("reliability") or []
    if not rows:
        return []
    lines = [f"  reliability (served score vs annotators; ECE {_fmt(total.get('ece'), True)}"
             f", {total.get('bulk', 0)} bulk-accepted not counted)",
             f"  {'score >=':<9}{'n':>8}{'expected':>10}{'observed':>10}"]
    for r in rows:
        lines.append(f"  {r['bin']:<9}{r['n']:>8}{_fmt(r['expected'], True):>10}{_fmt(r['observed'], True):>10}")
    return lines


def evaluations(store: Store, pids: list[int] | None = None) -> dict[int, dict[str, Any]]:
    """Each project's live evaluation (``backend.evaluation.evaluation_summary``); default every project."""
    out = {pid: evaluation_summary(store, pid) for pid in (pids or store.projects())}
    for pid, summary in out.items():
        summary["accept_run"] = store.accept_run(pid)
    return out


def format_report(store: Store, data: dict[int, dict[str, Any]]) -> str:
    """Every project's table, then the one-line total."""
    blocks = [format_project(pid, summary, store.current_version(pid)) + "\n" for pid, summary in data.items()]
    return "\n".join([*blocks, summary_line(data)])


def summary_line(data: dict[int, dict[str, Any]]) -> str:
    """Projects, annotations evaluated and the share of predictions accepted, over every project."""
    total = sum(s["total"]["evaluated"] for s in data.values())
    accepted = sum(s["total"]["accepted"] for s in data.values())
    rate = f"{100 * accepted / total:.1f}%" if total else "-"
    return f"{len(data)} project(s), {total} annotations evaluated, {rate} of predictions accepted"
