"""``dalt study``: the labeling study (``backend.study``)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from backend.study.options import StudyOptions

HELP = "the labeling study: replay a labeled dataset through DALT"
DESCRIPTION = """The labeling study: replay a labeled dataset through DALT's real components, one task at a time.

  dalt study --dataset mnist --json docs/study/mnist.json --plot docs/study
  dalt study --dataset digits
  dalt study --dataset PATH          # a folder of images with labels.csv (file,label)
  dalt study --dataset photos --order sorted   # colour patches, replayed one class after another
  dalt study --dataset mnist --sizes 300,600,1000 --methods contrastive+spread,ae+lr,pca+lr
  dalt study --dataset digits --quick --json out.json   # small and fast (tests)"""



def add_arguments(p: argparse.ArgumentParser) -> None:
    from backend.study.options import DEFAULT_METHOD, METHODS  # a plain table: no numpy

    p.add_argument("--dataset", help="mnist, digits, photos, or a folder with labels.csv (file,label)")
    p.add_argument("--merge", nargs="+", type=Path, metavar="JSON",
                   help="combine reports of one dataset run as separate processes (e.g. methods split over "
                        "parallel runs) into one report, table and plots; runs nothing")
    p.add_argument("--json", type=Path, help="write the full report here")
    p.add_argument("--plot", type=Path, help="write PNG plots into this folder")
    p.add_argument("--methods", help=f"comma-separated subset of: {', '.join(METHODS)} (default: all)")
    p.add_argument("--default-method", default=DEFAULT_METHOD, help="method whose numbers are the JSON's top level")
    p.add_argument("--quick", action="store_true", help="small and fast: 400 tasks, 3-epoch encoders, fewer methods")
    p.add_argument("--limit", type=int, help="use only the first N tasks of the shuffled dataset")
    p.add_argument("--order", choices=("random", "sorted", "both"), default="random",
                   help="task order: random (seeded), sorted (file order, e.g. one class after another) or both "
                   "(every method replayed in each order on the same features)")
    p.add_argument("--sizes", help="comma-separated project sizes (e.g. 300,600,1000): one study per size "
                   "(nested subsets); --json and --plot get the size curve")
    p.add_argument("--augment", default="auto",
                   help="encoder augmentation policy: auto (digits for gray, photo for RGB), digits, photo, ...")
    p.add_argument("--seed", type=int, default=0, help="task order, encoder weights, k-means (default 0)")
    p.add_argument("--steps", type=int, help="most encoder training steps (default: DALT_ENCODER_STEPS' default)")
    p.add_argument("--min-steps", type=int, help="early stopping never ends encoder training before this many steps")
    p.add_argument("--max-seconds", type=float, help="wall-clock cap on each encoder's training")
    p.add_argument("--patience", type=int, help="encoder evaluations (every 50 steps) without improvement")
    p.add_argument("--epochs", type=int, help="also stop encoder training after this many passes (quick runs)")
    p.add_argument("--encoder-batch", type=int, default=256, help="images per encoder training step (default 256)")
    p.add_argument("--latent-dim", type=int, default=32, help="embedding size (default 32, as the paper)")
    p.add_argument("--image-size", type=int, default=28, help="image side for a folder dataset (default 28)")
    p.add_argument("--threads", type=int, default=2, help="torch threads for encoder training (default 2)")
    p.add_argument("--eager", type=int, default=100, help="retrain after every label up to this many (100)")
    p.add_argument("--growth", type=float, default=0.05,
                   help="then retrain when labels grew by this fraction (0.05; 0 = after every label)")
    p.add_argument("--clusters", type=int, help="cold-start clusters (default: 5 per class, at least 10)")
    p.add_argument("--block", type=int, default=500, help="tasks per acceptance block (default 500)")
    p.add_argument("--redis-url", help="use this Redis instead of a private redis-server")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def options(args: argparse.Namespace) -> StudyOptions:
    """The parsed arguments as the study's typed options."""
    from backend.study.options import StudyOptions

    if not args.dataset:
        raise ValueError("--dataset is required (or --merge)")
    return StudyOptions(
        dataset=args.dataset, methods=tuple(args.methods.split(",")) if args.methods else None,
        default_method=args.default_method, quick=args.quick, limit=args.limit, seed=args.seed, steps=args.steps,
        min_steps=args.min_steps, max_seconds=args.max_seconds, patience=args.patience, epochs=args.epochs,
        encoder_batch=args.encoder_batch, latent_dim=args.latent_dim, image_size=args.image_size, threads=args.threads,
        order=args.order, augment=args.augment, eager=args.eager, growth=args.growth,
        clusters=args.clusters, block=args.block, redis_url=args.redis_url,
        progress=not args.no_progress,
    )


def run(args: argparse.Namespace) -> int:
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")  # before numpy loads: sklearn fits are fastest single-threaded here
    from backend.study.output import merge_reports, print_tables, write_outputs

    if args.merge:
        report = merge_reports(args.merge, args.default_method)
        print_tables(report)
        write_outputs(report, args.json, args.plot)
        print(f"\n{report['dataset']}: merged {len(args.merge)} report(s), {len(report['methods'])} method(s); "
              f"default {report['default_method']} accepted {report['acceptance_rate']:.2%}")
        return 0
    opts = options(args)
    if args.sizes:
        return run_size_curve(opts, args)
    from backend.study.runner import run_study, summary_line

    report = run_study(opts)
    print_tables(report)
    write_outputs(report, args.json, args.plot)
    print(f"\n{summary_line(report)}")
    return 0


def parse_sizes(text: str) -> tuple[int, ...]:
    """``"300,600"`` -> ``(300, 600)``, ascending.

    Raises:
        ValueError: not a list of positive integers.
    """
    try:
        sizes = tuple(sorted({int(v) for v in text.split(",") if v.strip()}))
    except ValueError:
        raise ValueError(f"--sizes must be comma-separated integers, not {text!r}") from None
    if not sizes or sizes[0] < 20:
        raise ValueError(f"--sizes needs project sizes of at least 20 tasks, not {text!r}")
    return sizes


def run_size_curve(opts: StudyOptions, args: argparse.Namespace) -> int:
    """``--sizes``: one study per size, then the size table, JSON and plot."""
    import json

    from backend.study.sizes import run_sizes, size_curve_table, sizes_table, write_sizes_plot

    sizes = parse_sizes(args.sizes)
    report = run_sizes(opts, sizes)
    print()
    print(sizes_table(report))
    print()
    print(size_curve_table(report))
    if args.plot:
        report["plot"] = write_sizes_plot(report, args.plot)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1))
    print(f"\n{report['dataset']}: size curve over {', '.join(map(str, report['sizes']))} tasks, "
          f"{len(report['methods'])} method(s)")
    return 0
