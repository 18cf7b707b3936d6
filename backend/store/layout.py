"""docs/redis-layout.md, rendered from the table in :mod:`backend.store.keys`' docstring.

The key module's docstring is the one description of the Redis layout (next to the code that spells the
keys); the docs page is generated from it so the two never disagree (tests/test_docs.py compares the
committed page with :func:`render_markdown`; ``dalt docs`` rewrites it).
"""

from __future__ import annotations

import re

from backend.store import keys

PAGE = "docs/redis-layout.md"
_RULE = re.compile(r"^=+(\s+=+)+\s*$")


def _md(text: str) -> str:
    """reStructuredText inline literals (````x````) as Markdown code spans."""
    return re.sub(r"``(.+?)``", r"`\1`", text)


def _columns(rule: str) -> list[tuple[int, int | None]]:
    spans = [(m.start(), m.end()) for m in re.finditer(r"=+", rule)]
    return [(start, spans[i + 1][0] if i + 1 < len(spans) else None) for i, (start, _) in enumerate(spans)]


def parse_table(doc: str) -> tuple[str, list[list[str]], str]:
    """Split the docstring into the text before the table, its rows (header first), and the text after.

    A line whose first column is blank continues the row above it (reStructuredText's simple tables).
    """
    lines = doc.strip("\n").splitlines()
    rules = [i for i, line in enumerate(lines) if _RULE.match(line)]
    if len(rules) != 3:
        raise ValueError(f"expected one simple table (3 rules of '='), found {len(rules)} rules")
    top, mid, bottom = rules
    cols = _columns(lines[top])
    rows: list[list[str]] = []
    for line in lines[top + 1:mid] + lines[mid + 1:bottom]:
        cells = [line[start:end].strip() for start, end in cols]
        if cells[0] or not rows:
            rows.append(cells)
        else:
            rows[-1] = [f"{a} {b}".strip() for a, b in zip(rows[-1], cells, strict=True)]
    return "\n".join(lines[:top]), rows, "\n".join(lines[bottom + 1:])


def _paragraphs(text: str) -> list[str]:
    return [" ".join(p.split()) for p in re.split(r"\n\s*\n", text.strip()) if p.strip()]


def render_markdown(doc: str | None = None) -> str:
    """The docs page: the docstring's paragraphs and its table as Markdown (``doc`` default: ``keys``')."""
    before, rows, after = parse_table(doc if doc is not None else keys.__doc__ or "")
    paragraphs = _paragraphs(before)
    out = ["# Redis layout", "",
           "<!-- Generated from the docstring of backend/store/keys.py by `dalt docs`; do not edit. -->", ""]
    for p in paragraphs[1:]:  # the first is the module's one-line summary
        out += [_md(p), ""]
    header, *body = rows
    out.append("| " + " | ".join(_md(c) for c in header) + " |")
    out.append("|" + "---|" * len(header))
    for row in body:
        out.append("| " + " | ".join(_md(c).replace("|", "\\|") for c in row) + " |")
    out.append("")
    for p in _paragraphs(after):
        out += [_md(p), ""]
    return "\n".join(out).rstrip("\n") + "\n"
