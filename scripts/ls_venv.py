"""Create (once) the private virtualenv that holds Label Studio for e2e tests and the demo.

Usage: ``python scripts/ls_venv.py [--quiet]`` (prints the path of the ``label-studio`` executable).
The logic lives in ``backend/lsvenv.py``.
"""

from __future__ import annotations

import argparse
import sys

from backend.lsvenv import ensure_ls_venv


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quiet", action="store_true", help="less pip output")
    args = parser.parse_args(argv)
    print(ensure_ls_venv(quiet=args.quiet))
    return 0


if __name__ == "__main__":
    sys.exit(main())
