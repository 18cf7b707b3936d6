"""`dalt ls-venv`, under its older name (the logic lives in `backend`; see `dalt ls-venv --help`)."""

import sys

from backend.cli import main as dalt


def main(argv: list[str] | None = None) -> int:
    return dalt(["ls-venv", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    raise SystemExit(main())
