"""What a study leaves behind: the Markdown table, the PNG plots, the JSON report; merging split runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from backend.study.bulk_accept import summary as bulk_summary
from backend.study.options import METHODS, TARGETS


def write_plots(report: dict[str, Any], out_dir: Path) -> list[str]:
    """Acceptance over time (rolling, 200 tasks) and learning curves, as PNG files."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    name = report["dataset"]
    paths = []
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for method, m in report["methods"].items():
        trace = np.array(m["accepted_trace"], float)
        w = min(200, max(1, len(trace) // 10))
        rolling = np.convolve(trace, np.ones(w) / w, mode="valid")
        ax.plot(np.arange(w, len(trace) + 1), rolling, label=f"{method} ({m['acceptance_rate']:.1%})", lw=1.2)
    ax.set(xlabel="task (labeling order)", ylabel=f"pre-annotations accepted (rolling {w})", ylim=(0, 1.01),
           title=f"{name}: acceptance over time")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    p = out_dir / f"{name}_acceptance.png"
    fig.tight_layout()
    fig.savefig(p, dpi=110)
    plt.close(fig)
    paths.append(str(p))
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for method, m in report["methods"].items():
        pts = sorted((int(k), v) for k, v in m["rest_accuracy"].items())
        if pts:
            ax.plot([k for k, _ in pts], [v for _, v in pts], label=method, lw=1.2)
    for t in TARGETS:
        ax.axhline(t, color="gray", lw=0.6, ls=":")
    ax.set(xscale="log", xlabel="labels", ylabel="accuracy on the unlabeled rest", ylim=(0, 1.0),
           title=f"{name}: learning curves")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="lower right")
    p = out_dir / f"{name}_learning.png"
    fig.tight_layout()
    fig.savefig(p, dpi=110)
    plt.close(fig)
    paths.append(str(p))
    bulk = report["methods"].get(report.get("default_method", ""), {}).get("bulk_accept")
    if bulk:
        paths.append(reliability_plot(name, report["default_method"], bulk, out_dir, plt))
    return paths


def reliability_plot(name: str, method: str, bulk: dict[str, Any], out_dir: Path, plt: Any) -> str:
    """Reliability diagram: per score bin, mean calibrated score vs share right on the remaining tasks."""
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.plot([0, 1], [0, 1], color="gray", lw=0.8, ls=":", label="perfect calibration")
    for n, d in bulk.items():
        rows = d["reliability"]
        ece = d["ece"]
        ax.plot([r["expected"] for r in rows], [r["observed"] for r in rows], marker="o", ms=3, lw=1.1,
                label=f"{n} labels (ECE {100 * ece:.1f}%)" if ece is not None else f"{n} labels")
    ax.set(xlabel="calibrated score (bin mean)", ylabel="share of suggestions right", xlim=(0.45, 1.005),
           ylim=(0.45, 1.005), title=f"{name}: reliability of {method} on the remaining tasks")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    p = out_dir / f"{name}_reliability.png"
    fig.tight_layout()
    fig.savefig(p, dpi=110)
    plt.close(fig)
    return str(p)


def accuracy_at(curve: dict[str, float], n: int) -> float | None:
    """Rest accuracy of the head trained on exactly ``n`` labels (None when no fit happened at ``n``)."""
    return curve.get(str(n))


def pct(v: float | None) -> str:
    return "—" if v is None else f"{100 * v:.1f}%"


def summary_table(report: dict[str, Any]) -> str:
    """The study's Markdown table (one row per method)."""
    rows = [
        "| method | rest acc @50 | rest acc @100 | accepted | per block of "
        f"{report['block']} | labels to 90/95/97% | features s wall (CPU) | fits (s) | replay s wall (CPU) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, m in report["methods"].items():
        reach = "/".join(str(v) if v is not None else "—" for v in m["labels_to_reach"].values())
        blocks = " ".join(f"{100 * b:.0f}" for b in m["acceptance_per_block"])
        rows.append(
            f"| {name} | {pct(accuracy_at(m['rest_accuracy'], 50))} | {pct(accuracy_at(m['rest_accuracy'], 100))}"
            f" | {pct(m['acceptance_rate'])} | {blocks} | {reach} |"
            f" {m['feature_seconds']:.1f} ({m['feature_cpu_seconds']:.1f}) | {m['fits']} ({m['fit_seconds']:.1f}) |"
            f" {m['replay_seconds']:.1f} ({m['replay_cpu_seconds']:.1f}) |"
        )
    return "\n".join(rows)


def bulk_accept_table(report: dict[str, Any]) -> str:
    """The default method's bulk-accept checkpoints as Markdown ("" when the run made none).

    Each cell: threshold / coverage of the remaining tasks / realised precision (wrong of accepted), for the
    method the checkpoint planned with and the other one; ECE of the served scores, raw ones in brackets.
    """
    bulk = report["methods"].get(report.get("default_method", ""), {}).get("bulk_accept") or {}
    if not bulk:
        return ""

    def cell(t: dict[str, Any] | None) -> str:
        if not t or t.get("threshold") is None:
            return "none"
        return (f"{t['threshold']:g} / {pct(t['coverage'])} / {pct(t['realised_precision'])} "
                f"({t['wrong']} of {t['accepted']})")

    first = next(iter(bulk.values()))
    targets = list(first["targets"])
    methods = [first["method"], *first.get("other_methods", {})]
    rows = ["| human labels | remaining | ECE (raw scores) | "
            + " | ".join(f"`{m}` {t}" for m in methods for t in targets) + " |",
            "|---|---|---|" + "---|" * (len(methods) * len(targets))]
    for n, d in bulk.items():
        by_method = {d["method"]: d["targets"], **d.get("other_methods", {})}
        cells = [cell(by_method.get(m, {}).get(t)) for m in methods for t in targets]
        rows.append(f"| {n} | {d['remaining']} | {pct(d['ece'])} ({pct(d['raw_ece'])}) | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def merge_reports(paths: list[Path], default_method: str) -> dict[str, Any]:
    """One report from several runs over the same dataset, order and retraining rule.

    Raises:
        ValueError: when the runs are not comparable.
    """
    parts = [json.loads(p.read_text()) for p in paths]
    keys = ("dataset", "tasks", "seed", "retraining", "block")
    for part, path in zip(parts[1:], paths[1:], strict=True):
        diff = [k for k in keys if part.get(k) != parts[0].get(k)]
        if diff:
            raise ValueError(f"{path}: not comparable with {paths[0]} ({', '.join(diff)} differ)")
    report = {k: parts[0][k] for k in (*keys, "classes", "cpu_count")}
    found = {m: r for part in parts for m, r in part["methods"].items()}
    report["methods"] = {m: found[m] for m in METHODS if m in found}
    report["feature_seconds"] = {k: v for part in parts for k, v in part["feature_seconds"].items()}
    report["parts"] = [{"file": p.name, "methods": list(part["methods"]), "wall_seconds": part["wall_seconds"]}
                       for p, part in zip(paths, parts, strict=True)]
    report["wall_seconds"] = max(part["wall_seconds"] for part in parts)
    encoders = {k: v for part in parts for k, v in part.get("encoders", {}).items()}
    if encoders:
        report["encoders"] = encoders
    set_default_method(report, default_method if default_method in report["methods"] else next(iter(report["methods"])))
    return report


def set_default_method(report: dict[str, Any], default: str) -> None:
    """Copy the default method's headline numbers to the report's top level (a run's and a merge's alike)."""
    report["default_method"] = default
    report["acceptance_rate"] = report["methods"][default]["acceptance_rate"]
    report["rest_accuracy"] = report["methods"][default]["rest_accuracy"]
    report["bulk_accept"] = bulk_summary(report["methods"][default].get("bulk_accept") or {})


def print_tables(report: dict[str, Any]) -> None:
    """The method table, and the bulk-accept table when the run made checkpoints."""
    print()
    print(summary_table(report))
    if table := bulk_accept_table(report):
        print(f"\nbulk accept ({report['default_method']}):\n{table}")


def write_outputs(report: dict[str, Any], json_path: Path | None, plot_dir: Path | None) -> None:
    """Write the plots (their paths go into the report) and then the JSON report, where asked."""
    if plot_dir:
        report["plots"] = write_plots(report, plot_dir)
    if json_path:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(report, indent=1))
