"""``dalt encode``: bulk-encode a project's images into Redis (``backend.bulk``)."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported when the command runs: the library loads torch
    from backend.bulk import EncodeOptions

HELP = "encode a project's images into Redis (trains its encoder if needed)"
DESCRIPTION = """Encode every task image of a project into Redis, training the project's encoder when needed.

Incremental and resumable: a rerun (after Ctrl-C or a crash) encodes only what is missing.
Exit status: 0 done (even with failed images, which are listed), 1 nothing could be encoded or bad
usage, 130 interrupted.

  LABEL_STUDIO_URL=http://localhost:8080 LABEL_STUDIO_API_KEY=... dalt encode --project 1
  dalt encode --project 7 --images ./my-images      # no Label Studio needed
  dalt encode --project 7 --export export.json --local-files-root /data/files"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--project", type=int, required=True, help="Label Studio project id (also the store key)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--images", metavar="DIR", help="encode a local folder of images instead of Label Studio")
    src.add_argument("--export", metavar="FILE", help="encode the tasks of a Label Studio JSON export")
    p.add_argument("--ls-url", help="Label Studio URL (default: LABEL_STUDIO_URL, else what /setup saved)")
    p.add_argument(
        "--local-files-root",
        metavar="DIR",
        help="Label Studio's LOCAL_FILES_DOCUMENT_ROOT: read /data/local-files/ from disk",
    )
    p.add_argument("--retrain", action="store_true", help="train a new encoder even if the project has one")
    p.add_argument(
        "--objective",
        help="encoder training objective: contrastive, autoencoder, augmented-autoencoder "
        "(default: DALT_ENCODER_OBJECTIVE, else contrastive)",
    )
    p.add_argument("--latent-dim", type=int, default=32, help="vector length (default 32)")
    p.add_argument("--steps", type=int, help="most encoder training steps (default: DALT_ENCODER_STEPS)")
    p.add_argument("--min-steps", type=int,
                   help="early stopping never ends training before this many steps (default: DALT_ENCODER_MIN_STEPS)")
    p.add_argument("--max-seconds", type=float,
                   help="wall-clock cap on encoder training (default: DALT_ENCODER_MAX_SECONDS)")
    p.add_argument("--patience", type=int,
                   help="evaluations (every 50 steps) without improvement before stopping (DALT_ENCODER_PATIENCE)")
    p.add_argument("--epochs", type=int, help="also stop after this many passes over the images (smoke runs)")
    p.add_argument("--image-size", type=int, default=28, help="images are resized to SIZE x SIZE (default 28)")
    p.add_argument("--channels", type=int, choices=(1, 3), help="1 gray or 3 RGB (default: from the data)")
    p.add_argument(
        "--train-limit",
        type=int,
        default=20000,
        help="train on at most this many random tasks (default 20000)",
    )
    p.add_argument("--batch-size", type=int, default=512, help="tasks per download/encode/write batch")
    p.add_argument("--workers", type=int, default=16, help="concurrent downloads (default 16)")
    p.add_argument(
        "--encode-threads",
        type=int,
        default=1,
        help="torch threads while encoding (default 1: the downloads need the other cores; measured faster)",
    )
    p.add_argument("--page-size", type=int, default=500, help="tasks per Label Studio API page")
    p.add_argument("--seed", type=int, default=0, help="seed for the training sample and weights")
    p.add_argument("--redis-url", help="Redis URL (default: REDIS_URL)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def options(args: argparse.Namespace) -> EncodeOptions:
    """The parsed arguments as the library's typed options."""
    from backend.bulk import EncodeOptions

    return EncodeOptions(
        project=args.project, images=args.images, export=args.export, ls_url=args.ls_url,
        local_files_root=args.local_files_root, retrain=args.retrain, objective=args.objective,
        latent_dim=args.latent_dim, steps=args.steps, min_steps=args.min_steps, max_seconds=args.max_seconds,
        patience=args.patience, epochs=args.epochs, image_size=args.image_size,
        channels=args.channels, train_limit=args.train_limit, batch_size=args.batch_size, workers=args.workers,
        encode_threads=args.encode_threads, page_size=args.page_size, seed=args.seed, redis_url=args.redis_url,
        progress=not args.no_progress,
    )


def run(args: argparse.Namespace) -> int:
    from backend.bulk import encode_project

    summary = encode_project(options(args))
    for line in summary.failure_lines():
        print(line, file=sys.stderr)
    print(summary.line())
    return summary.exit_code()
