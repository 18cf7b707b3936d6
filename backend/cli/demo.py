"""``dalt demo``: Label Studio + Redis + backend + worker with a sample MNIST project (``backend.demo``)."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "Label Studio + DALT with a sample MNIST project to label"
DESCRIPTION = """One command to try DALT in Label Studio: everything set up, a sample project ready to label.

Starts a private Redis, Label Studio 1.23.2 (its own virtualenv, created on first use), DALT's backend and
a worker; creates the sample MNIST project on the first run. Ctrl-C stops everything.

  dalt demo              # Label Studio on :8080, the backend on :9090
  dalt demo --smoke      # set up, check, stop (non-interactive test)"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--port", type=int, default=8080, help="Label Studio port (0: any free port)")
    p.add_argument("--backend-port", type=int, default=9090, help="DALT backend port (0: any free)")
    p.add_argument("--data-dir", type=Path,
                   help="where Label Studio, Redis and the images keep their data (default var/demo)")
    p.add_argument("--images", type=int, default=300, help="MNIST digits in the sample project")
    p.add_argument("--encoder-epochs", type=int, default=None,
                   help="most epochs for the project's encoder (default: dalt encode's)")
    p.add_argument("--smoke", action="store_true", help="set up, check, stop (for tests and CI)")


def run(args: argparse.Namespace) -> int:
    from backend.demo import run_demo
    from backend.processes import ROOT

    return run_demo(args.data_dir or ROOT / "var" / "demo", port=args.port or None,
                    backend_port=args.backend_port or None, images=args.images, encoder_epochs=args.encoder_epochs,
                    smoke=args.smoke)
