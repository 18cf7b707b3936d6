"""The ``dalt`` command: one entry point for everything DALT does outside the web server's requests.

Each subcommand lives in its own module here, listed in :data:`COMMANDS`. A command module defines
``HELP`` (its line in ``dalt --help``), ``add_arguments(parser)`` and ``run(args) -> int`` (the exit
status); it parses and checks its options, calls the library (``backend.bulk``, ``backend.study``,
``backend.bench`` ...), shows progress for long work and ends with a one-line summary. Command modules
import only the standard library at import time, so ``dalt --help`` answers without loading numpy or
torch.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from types import ModuleType

COMMANDS: dict[str, str] = {
    "run": "backend.cli.run",
    "encode": "backend.cli.encode",
    "order": "backend.cli.order",
    "report": "backend.cli.report",
    "predict": "backend.cli.predict",
    "accept": "backend.cli.accept",
    "reconcile": "backend.cli.reconcile",
    "purge": "backend.cli.purge",
    "demo": "backend.cli.demo",
    "study": "backend.cli.study",
    "bench": "backend.cli.bench",
    "ls-venv": "backend.cli.ls_venv",
    "docs": "backend.cli.docs",
}


def _command(name: str) -> ModuleType:
    return importlib.import_module(COMMANDS[name])


def build_parser() -> argparse.ArgumentParser:
    """The whole ``dalt`` parser (every subcommand's options)."""
    parser = argparse.ArgumentParser(
        prog="dalt",
        description="DALT: deep-learning assisted labeling, an ML backend for Label Studio.",
        epilog="`dalt COMMAND --help` describes a command's options.",
        formatter_class=lambda prog: argparse.HelpFormatter(prog, max_help_position=18, width=100),
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        module = _command(name)
        p = sub.add_parser(name, help=module.HELP, description=getattr(module, "DESCRIPTION", module.HELP),
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``dalt`` with ``argv`` (default: the command line); returns the exit status."""
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        return _command(args.command).run(args)
    except (ValueError, LookupError, FileNotFoundError) as exc:  # bad input, said in one line
        if os.environ.get("LOG_LEVEL", "").upper() == "DEBUG":
            import traceback

            traceback.print_exc()
        print(f"dalt {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"dalt {args.command}: interrupted", file=sys.stderr)
        return 130
