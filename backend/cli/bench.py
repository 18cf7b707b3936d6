"""``dalt bench``: the speed-and-scale benchmark (``backend.bench``)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

HELP = "speed and scale benchmarks against same-run baselines"
DESCRIPTION = """DALT's speed-and-scale benchmark: one command, one table, every number a ratio against a
baseline measured in the same run (absolute times on a shared machine drift; same-run ratios hold).

It starts its own redis-server, gunicorn servers and rq workers on free loopback ports and never touches
another Redis. --quick shrinks every size for a smoke test (its numbers mean little).

  dalt bench --json docs/bench/results.json
  dalt bench --quick --only predict,memory
  dalt bench --scale 100000,1000000 --json docs/bench/scale.json   # projects of 100k and 1M tasks
  dalt bench encoder --json out.json     # the encoder alone: training time, per-image throughput"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    from backend.bench.runner import BENCHES  # the runner imports each benchmark only when it runs

    p.add_argument("--json", metavar="PATH", help="write every number as JSON to PATH")
    p.add_argument("--quick", action="store_true", help="small sizes: a smoke test, not a measurement")
    p.add_argument("--only", help=f"comma-separated subset of: {','.join(BENCHES)}")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--scale", metavar="SIZES", help="run the scale sweep alone at these project sizes "
                   "(comma-separated task counts, e.g. 100000,1000000; 20000 is a quick smoke size)")
    p.add_argument("--plot", metavar="PNG", help="with --scale: plot freshness and memory against project size; "
                   "alone: re-plot from the --json report given")
    sub = p.add_subparsers(dest="bench_what", metavar="{encoder}", title="one benchmark with its own options")
    e = sub.add_parser(
        "encoder",
        help="the encoder alone: autoencoder training time and decode/download/encode throughput on MNIST-5k",
        description="The encoder alone: autoencoder training time, and end-to-end encode throughput (download, "
                    "decode, encode) on MNIST-5k served over loopback HTTP, next to the download+decode floor.",
    )
    e.add_argument("--epochs", type=int, default=30)
    e.add_argument("--patience", type=int, default=3)
    e.add_argument("--latent-dim", type=int, default=32)
    e.add_argument("--threads", type=int, default=2, help="torch threads (default 2, the target machine)")
    e.add_argument("--workers", type=int, default=16, help="concurrent downloads")
    e.add_argument("--encode-threads", type=int, default=1, help="torch threads while encoding (as dalt encode)")
    e.add_argument("--batch-size", type=int, default=512, help="tasks per fetch/encode batch")
    e.add_argument("--repeats", type=int, default=2, help="timed passes per measurement (best is kept)")
    e.add_argument("--json", metavar="PATH", dest="encoder_json", help="also write the results as JSON")


def run(args: argparse.Namespace) -> int:
    if args.bench_what == "encoder":
        return run_encoder(args)
    from backend.bench.runner import check_names, default_names, goals, run, table, write_json

    if args.plot and not args.scale:
        from backend.bench.scale import plot_scale

        if not args.json:
            raise SystemExit("--plot without --scale re-plots an existing report: give it with --json")
        plot_scale(json.loads(Path(args.json).read_text()), args.plot)
        return 0
    sizes = None
    if args.scale:
        try:
            sizes = [int(s) for s in args.scale.split(",") if s.strip()]
        except ValueError:
            raise SystemExit(f"--scale {args.scale!r}: comma-separated task counts, e.g. 100000,1000000") from None
        if not sizes or min(sizes) < 1000:
            raise SystemExit("--scale: sizes of at least 1000 tasks")
    names = ["scale"] if sizes else [n.strip() for n in args.only.split(",")] if args.only else default_names()
    check_names(names)
    result = run(names, args.quick, not args.no_progress, sizes)
    print(table(result.sections))
    print()
    print(goals(result.sections))
    if args.json:
        write_json(result, args.json)
    if args.plot and sizes and not result.errors:
        from backend.bench.runner import results_json
        from backend.bench.scale import plot_scale

        plot_scale(results_json(result), args.plot)
    print(f"\n{result.summary_line()}")
    return 1 if result.errors else 0


def run_encoder(args: argparse.Namespace) -> int:
    from backend.bench.encoder_pipeline import EncoderBenchOptions, bench_encoder, report_lines

    opts = EncoderBenchOptions(epochs=args.epochs, patience=args.patience, latent_dim=args.latent_dim,
                               threads=args.threads, workers=args.workers, encode_threads=args.encode_threads,
                               batch_size=args.batch_size, repeats=args.repeats)
    results = bench_encoder(opts)
    print("\n".join(report_lines(results)))
    if args.encoder_json:
        Path(args.encoder_json).write_text(json.dumps(results, indent=2))
    return 0
