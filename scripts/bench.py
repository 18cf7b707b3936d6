"""DALT's speed-and-scale benchmark: one command, one table, every number a ratio against a baseline
measured in the same run (absolute times on a shared machine drift; same-run ratios hold).

    .venv/bin/python scripts/bench.py [--json docs/bench/results.json] [--quick] [--only predict,memory]

It starts its own redis-server, gunicorn servers and rq workers on free loopback ports and never touches
another Redis. ``--quick`` shrinks every size for a smoke test (its numbers mean little).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the bench_* helpers next to this file

from bench_common import Section  # noqa: E402

BENCHES: dict[str, tuple[str, str]] = {
    # name: (module, function)
    "predict": ("bench_serving", "bench_predict"),
    "webhook": ("bench_serving", "bench_webhooks"),
    "freshness": ("bench_serving", "bench_freshness"),
    "training": ("bench_training", "bench_training"),
    "encoding": ("bench_encoding", "bench_encoding"),
    "memory": ("bench_memory", "bench_memory"),
    "scaleout": ("bench_encoding", "bench_training_fanout"),
}


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


def run(names: list[str], quick: bool, progress: bool) -> tuple[list[Section], dict]:
    """Run the named benchmarks in order; a failing one is reported and the others still run."""
    import importlib

    sections: list[Section] = []
    errors: dict[str, str] = {}
    for name in names:
        module, func = BENCHES[name]
        fn: Callable[[bool, bool], Section] = getattr(importlib.import_module(module), func)
        t0 = time.perf_counter()
        print(f"== {name}", file=sys.stderr, flush=True)
        try:
            sec = fn(quick, progress)
        except Exception as exc:  # one broken benchmark must not hide the others' numbers
            errors[name] = f"{type(exc).__name__}: {exc}"
            print(f"!! {name} failed: {errors[name]}", file=sys.stderr, flush=True)
            continue
        sec.data["bench_seconds"] = round(time.perf_counter() - t0, 1)
        sections.append(sec)
    return sections, errors


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--json", metavar="PATH", help="write every number as JSON to PATH")
    p.add_argument("--quick", action="store_true", help="small sizes: a smoke test, not a measurement")
    p.add_argument("--only", help=f"comma-separated subset of: {','.join(BENCHES)}")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    opts = p.parse_args(argv)
    names = [n.strip() for n in opts.only.split(",")] if opts.only else list(BENCHES)
    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        p.error(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(BENCHES)}")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    t0 = time.perf_counter()
    info = machine()
    sections, errors = run(names, opts.quick, not opts.no_progress)
    seconds = time.perf_counter() - t0
    text = table(sections)
    print(text)
    print()
    print(goals(sections))
    if opts.json:
        out = {
            "quick": opts.quick,
            "machine": info,
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - seconds)),
            "seconds": round(seconds, 1),
            "results": {s.name: s.data for s in sections},
            "goals": [g | {"benchmark": s.name} for s in sections for g in s.goals],
            "errors": errors,
            "table_markdown": text,
        }
        path = Path(opts.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(out, indent=2, default=str) + "\n")
    met = sum(g["met"] for s in sections for g in s.goals)
    total = sum(len(s.goals) for s in sections)
    print(f"\nbench: {len(sections)}/{len(names)} benchmarks ran in {seconds:.0f} s on {info['cores']} cores; "
          f"goals met {met}/{total}" + (f"; FAILED: {', '.join(errors)}" if errors else ""))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())

