"""``dalt docs``: regenerate the docs pages that are rendered from code or result files."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

HELP = "regenerate the generated docs pages (Redis layout, benchmark results)"
DESCRIPTION = """Regenerate the docs pages that are rendered, never edited by hand:

  docs/redis-layout.md   from the table in backend/store/keys.py's docstring
  docs/bench.md          from docs/bench/results.json (written by `dalt bench --json`)

--check writes nothing and exits 1 when a committed page differs from what the code renders."""


def pages() -> dict[str, Callable[[], str]]:
    """Each generated page (path relative to the repository) and the function that renders it."""
    from backend.bench import page as bench_page
    from backend.processes import ROOT
    from backend.store import layout

    return {layout.PAGE: layout.render_markdown,
            bench_page.PAGE: lambda: bench_page.render_page(bench_page.load(ROOT / bench_page.RESULTS))}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--check", action="store_true", help="write nothing; exit 1 if a page is out of date")


def run(args: argparse.Namespace) -> int:
    from backend.processes import ROOT

    stale = []
    for name, render in pages().items():
        path, text = ROOT / name, render()
        if Path(path).exists() and path.read_text() == text:
            continue
        stale.append(name)
        if not args.check:
            path.write_text(text)
    verb = "out of date" if args.check else "rewritten"
    print(f"docs: {len(stale)} of {len(pages())} generated page(s) {verb}" + (f": {', '.join(stale)}" if stale else ""))
    return 1 if args.check and stale else 0
