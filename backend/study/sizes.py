"""The study against project size: the same methods replayed on nested subsets of 300, 600, ... tasks.

Why: real projects are often a few hundred images, where an encoder has little to learn from; the size
curve shows how much of the advantage over the paper's autoencoder and PCA survives there. Each size is a
whole study run (its own encoders, trained on that subset only, as ``dalt encode`` would on such a project);
subsets are nested (the first N tasks of the seeded order).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, TextIO

from backend.study.options import StudyOptions
from backend.study.output import accuracy_at, pct


def run_sizes(opts: StudyOptions, sizes: tuple[int, ...], out: TextIO | None = None) -> dict[str, Any]:
    """One study per size; returns ``{"sizes": [...], "methods": {method: {size: numbers}}, ...}``."""
    from backend.study.runner import run_study

    report: dict[str, Any] = {"sizes": [], "methods": {}, "seed": opts.seed, "order": opts.order}
    for n in sizes:
        part = run_study(replace(opts, limit=n), out)
        report["dataset"] = part["dataset"]
        report["default_method"] = part["default_method"]
        report["sizes"].append(part["tasks"])
        for method, m in part["methods"].items():
            enc = part.get("encoders", {}).get(m["features"], {})
            report["methods"].setdefault(method, {})[str(part["tasks"])] = {
                "rest_accuracy_50": accuracy_at(m["rest_accuracy"], 50),
                "rest_accuracy_100": accuracy_at(m["rest_accuracy"], 100),
                "acceptance_rate": m["acceptance_rate"],
                "feature_seconds": m["feature_seconds"],
                "encoder_steps": enc.get("steps_run"),
            }
        if part["tasks"] < n:  # the dataset is smaller than the rest of the list
            break
    return report


def sizes_table(report: dict[str, Any]) -> str:
    """Markdown: one row per method and size."""
    rows = ["| method | tasks | rest acc @50 | rest acc @100 | accepted | features s |", "|---|---|---|---|---|---|"]
    for method, by_size in report["methods"].items():
        for n, v in by_size.items():
            rows.append(f"| {method} | {n} | {pct(v['rest_accuracy_50'])} | {pct(v['rest_accuracy_100'])} | "
                        f"{pct(v['acceptance_rate'])} | {v['feature_seconds']:.1f} |")
    return "\n".join(rows)


def size_curve_table(report: dict[str, Any]) -> str:
    """Markdown: one row per size, the default method's numbers then every other method's (the README's table).

    Why a second table: the long one above lists every (method, size); a reader comparing methods at one
    project size wants them side by side.
    """
    default = report["default_method"]
    others = [m for m in report["methods"] if m != default]
    head = (["tasks", f"{default} @50", "@100", "accepted"]
            + [c for m in others for c in (f"{m} @50", "@100", "accepted")])
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for n in map(str, report["sizes"]):
        cells = [f"{int(n):,}"]
        for m in (default, *others):
            v = report["methods"].get(m, {}).get(n)
            cells += ([pct(v["rest_accuracy_50"]), pct(v["rest_accuracy_100"]), pct(v["acceptance_rate"])] if v
                      else ["—"] * 3)
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def write_sizes_plot(report: dict[str, Any], out_dir: Path) -> str:
    """Rest accuracy at 50 and 100 labels and acceptance against project size, one line per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    keys = (("rest_accuracy_50", "rest accuracy @50 labels"), ("rest_accuracy_100", "rest accuracy @100 labels"),
            ("acceptance_rate", "pre-annotations accepted"))
    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    for ax, (key, title) in zip(axes, keys, strict=True):
        for method, by_size in report["methods"].items():
            pts = [(int(n), v[key]) for n, v in by_size.items() if v[key] is not None]
            ax.plot([n for n, _ in pts], [v for _, v in pts], marker="o", lw=1.2, label=method)
        ax.set(xscale="log", xlabel="project size (tasks)", title=title, ylim=(0, 1.0))
        ax.grid(alpha=0.3, which="both")
    axes[-1].legend(fontsize=8, loc="lower right")
    fig.suptitle(f"{report['dataset']}: label efficiency against project size")
    fig.tight_layout()
    path = out_dir / f"{report['dataset']}_sizes.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)
