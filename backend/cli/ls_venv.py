"""``dalt ls-venv``: create (once) the private virtualenv that holds Label Studio (``backend.lsvenv``)."""

from __future__ import annotations

import argparse

HELP = "install Label Studio 1.23.2 into its own virtualenv for the demo and e2e tests (once)"
DESCRIPTION = """Create (once) the private virtualenv that holds Label Studio for the demo and the e2e tests.

Prints the path of its label-studio executable. Default ~/.cache/dalt/label-studio-1.23.2, or DALT_LS_VENV;
an existing, working install is reused."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quiet", action="store_true", help="less pip output")


def run(args: argparse.Namespace) -> int:
    from backend.lsvenv import ensure_ls_venv

    print(ensure_ls_venv(quiet=args.quiet))
    return 0
