"""`dalt demo`, under its older name (the logic lives in `backend`; see `dalt demo --help`)."""

import sys

from backend.cli import main as dalt


def main(argv: list[str] | None = None) -> int:
    return dalt(["demo", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    raise SystemExit(main())
