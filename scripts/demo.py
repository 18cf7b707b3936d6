"""One command to try DALT in Label Studio: everything set up, a sample project ready to label.

Starts a private Redis, Label Studio 1.23.2 (its own virtualenv, created on first use), DALT's backend and
a worker; creates the sample MNIST project on the first run. The logic lives in ``backend/demo.py``.

Usage::

    python scripts/demo.py               # Ctrl-C stops everything
    python scripts/demo.py --smoke       # set up, check, stop (non-interactive test)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from backend.demo import run_demo
from backend.processes import ROOT


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run Label Studio + DALT with a sample MNIST project.")
    parser.add_argument("--port", type=int, default=8080, help="Label Studio port (0: any free port)")
    parser.add_argument("--backend-port", type=int, default=9090, help="DALT backend port (0: any free)")
    parser.add_argument("--data-dir", type=Path, default=ROOT / "var" / "demo",
                        help="where Label Studio, Redis and the images keep their data")
    parser.add_argument("--images", type=int, default=300, help="MNIST digits in the sample project")
    parser.add_argument("--encoder-epochs", type=int, default=None,
                        help="most epochs for the project's encoder (default: encode_tasks.py's)")
    parser.add_argument("--smoke", action="store_true", help="set up, check, stop (for tests and CI)")
    args = parser.parse_args(argv)
    return run_demo(args.data_dir, port=args.port or None, backend_port=args.backend_port or None,
                    images=args.images, encoder_epochs=args.encoder_epochs, smoke=args.smoke)


if __name__ == "__main__":
    sys.exit(main())
