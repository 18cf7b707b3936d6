"""DALT's speed-and-scale benchmark: one command, one table, every number a ratio against a baseline
measured in the same run (absolute times on a shared machine drift; same-run ratios hold).

    dalt bench [--json docs/bench/results.json] [--quick] [--only predict,memory]
    dalt bench --scale 100000,1000000 [--json docs/bench/scale.json]   (the scale sweep alone)

It starts its own redis-server, gunicorn servers and rq workers on free loopback ports and never touches
another Redis. ``--quick`` shrinks every size for a smoke test (its numbers mean little).
"""

from __future__ import annotations

import importlib
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the benchmarks' shared helpers import numpy, redis, requests: only when one runs
    from backend.bench.common import Section

BENCHES: dict[str, tuple[str, str]] = {
    # name: (module, function); imported only when that benchmark runs
    "predict": ("backend.bench.predict", "bench_predict"),
    "webhook": ("backend.bench.webhook", "bench_webhooks"),
    "freshness": ("backend.bench.freshness", "bench_freshness"),
    "training": ("backend.bench.head_training", "bench_training"),
    "encoding": ("backend.bench.bulk_encoding", "bench_encoding"),
    "memory": ("backend.bench.memory", "bench_memory"),
    "scaleout": ("backend.bench.scaleout", "bench_training_fanout"),
    "scale": ("backend.bench.scale", "bench_scale"),
}
# Run only when named (``--only scale`` or ``--scale SIZES``): minutes to an hour, and its own result file.
OPT_IN = {"scale"}


def default_names() -> list[str]:
    """The benchmarks a plain ``dalt bench`` runs."""
    return [n for n in BENCHES if n not in OPT_IN]


@dataclass
class BenchRun:
    """What one ``dalt bench`` run measured."""

    names: list[str]
    quick: bool
    machine: dict[str, Any]
    sections: list[Section] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    started: float = 0.0  # time.time() at the start
    seconds: float = 0.0

    def goals_met(self) -> tuple[int, int]:
        """Goals met and goals measured."""
        return sum(g["met"] for s in self.sections for g in s.goals), sum(len(s.goals) for s in self.sections)

    def summary_line(self) -> str:
        met, total = self.goals_met()
        return (f"bench: {len(self.sections)}/{len(self.names)} benchmarks ran in {self.seconds:.0f} s on "
                f"{self.machine['cores']} cores; goals met {met}/{total}"
                + (f"; FAILED: {', '.join(self.errors)}" if self.errors else ""))


def machine() -> dict:
    """What the numbers were measured on."""
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        mem = int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30)
    except (ValueError, OSError):
        mem = None
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = None
    return {"cpu": cpu, "cores": len(os.sched_getaffinity(0)), "memory_gib": mem, "python": platform.python_version(),
            "platform": platform.platform(), "load_avg_1m_at_start": load}


def table(sections: list[Section]) -> str:
    """A Markdown table of every row."""
    lines = ["| benchmark | measure | DALT | baseline / ratio |", "|---|---|---|---|"]
    for sec in sections:
        for measure, value, versus in sec.rows:
            lines.append(f"| {sec.name} | {measure} | {value} | {versus} |")
    return "\n".join(lines)


def goals(sections: list[Section]) -> str:
    """One line per goal: met or missed, with the number."""
    return "\n".join(
        f"- {'MET' if g['met'] else 'MISSED'}: {g['goal']} ({g['detail']})" for sec in sections for g in sec.goals
    )


def check_names(names: list[str]) -> None:
    """Raises ValueError naming any benchmark that does not exist."""
    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        raise ValueError(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(BENCHES)}")


def run(names: list[str], quick: bool, progress: bool, scale_sizes: list[int] | None = None) -> BenchRun:
    """Run the named benchmarks in order; a failing one is reported and the others still run.

    Args:
        scale_sizes: project sizes for the ``scale`` benchmark (default: its own).
    """
    check_names(names)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    t0 = time.perf_counter()
    result = BenchRun(names=list(names), quick=quick, machine=machine(), started=time.time())
    for name in names:
        module, func = BENCHES[name]
        fn: Callable[[bool, bool], Section] = getattr(importlib.import_module(module), func)
        t1 = time.perf_counter()
        print(f"== {name}", file=sys.stderr, flush=True)
        try:
            sec = fn(quick, progress, scale_sizes) if name == "scale" and scale_sizes else fn(quick, progress)
        except Exception as exc:  # one broken benchmark must not hide the others' numbers
            result.errors[name] = f"{type(exc).__name__}: {exc}"
            print(f"!! {name} failed: {result.errors[name]}", file=sys.stderr, flush=True)
            continue
        sec.data["bench_seconds"] = round(time.perf_counter() - t1, 1)
        result.sections.append(sec)
    result.seconds = time.perf_counter() - t0
    return result


def results_json(result: BenchRun) -> dict[str, Any]:
    """Every number of a run, as ``docs/bench/results.json`` holds them."""
    return {
        "quick": result.quick,
        "machine": result.machine,
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(result.started)),
        "seconds": round(result.seconds, 1),
        "results": {s.name: s.data for s in result.sections},
        "goals": [g | {"benchmark": s.name} for s in result.sections for g in s.goals],
        "errors": result.errors,
        "table_markdown": table(result.sections),
    } | _scale(result)


def _scale(result: BenchRun) -> dict[str, Any]:
    """``{"scale": {"<tasks>": {...}}}`` when the scale benchmark ran."""
    for sec in result.sections:
        if sec.name == "scale":
            from backend.bench.scale import scale_json

            return {"scale": scale_json(sec)}
    return {}


def write_json(result: BenchRun, path: str | os.PathLike[str]) -> None:
    """Write :func:`results_json` to ``path`` (folders created)."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results_json(result), indent=2, default=str) + "\n")
