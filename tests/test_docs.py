"""The docs say what the code and the committed result files say.

Generated pages must equal what the code renders now (``dalt docs`` rewrites them); hand-written pages that
enumerate something (modules, environment variables) must enumerate exactly what exists; numbers the README
quotes must be the committed results'; links between pages must resolve.
"""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from backend.bench import page as bench_page
from backend.cli.docs import pages
from backend.config import Config, ProcessConfig
from backend.store import layout
from tests.conftest import ROOT

# Pages written on other branches of the same refactor; linked from the README already.
PENDING_PAGES = {"docs/guarantees.md"}


def _text(path: str) -> str:
    return " ".join((ROOT / path).read_text().split())  # whitespace-insensitive


@pytest.mark.parametrize("name", sorted(pages()))
def test_generated_page_is_what_the_code_renders(name: str) -> None:
    assert (ROOT / name).read_text() == pages()[name](), f"{name} is out of date: run `dalt docs`"


def test_layout_rows_continue_on_lines_whose_first_column_is_blank() -> None:
    doc = """Summary.

Intro with ``code``.

=====  ====  ==========
key    type  holds
=====  ====  ==========
``a``  set   one
             two
``b``  hash  x | y
=====  ====  ==========

After.
"""
    text = layout.render_markdown(doc)
    assert "| `a` | set | one two |" in text
    assert "| `b` | hash | x \\| y |" in text
    assert "Intro with `code`." in text and text.rstrip().endswith("After.") and "Summary." not in text


def test_readme_speed_lines_are_the_committed_benchmark_results() -> None:
    readme = _text("README.md")
    for line in bench_page.headlines(bench_page.load(ROOT / bench_page.RESULTS)):
        assert " ".join(line.split()) in readme, line


@pytest.mark.parametrize("name, paper", [("mnist", "ae+lr"), ("photos", "ae+lr@random")])
def test_readme_study_line_is_the_committed_study_result(name: str, paper: str) -> None:
    report = json.loads((ROOT / f"docs/study/{name}.json").read_text())
    default, paper = report["methods"][report["default_method"]], report["methods"][paper]
    line = (f"annotators keep {default['acceptance_rate']:.1%} of the suggestions ({default['corrected']} "
            f"corrections) against {paper['acceptance_rate']:.1%} with the paper's autoencoder features "
            f"({paper['corrected']} corrections)")
    assert line in _text("README.md")


def test_readme_size_curve_is_the_committed_size_study() -> None:
    from backend.study.sizes import size_curve_table

    report = json.loads((ROOT / "docs/study/mnist_sizes.json").read_text())
    assert report["sizes"] == [300, 600, 1000, 2000, 5000]
    assert " ".join(size_curve_table(report).split()) in _text("README.md")
    assert "docs/study/mnist_sizes.png" in _text("README.md")


def _table_cells(path: str, pattern: str, section: str | None = None) -> set[str]:
    text = (ROOT / path).read_text()
    if section is not None:
        text = text.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(pattern, text, re.M))


def test_architecture_lists_every_module_and_no_other() -> None:
    modules = {str(p.relative_to(ROOT)) for folder in ("backend", "encoder", "scripts")
               for p in (ROOT / folder).rglob("*.py") if "__pycache__" not in p.parts}
    listed = _table_cells("docs/architecture.md", r"^\| `([\w/]+\.py)` \|", section="Modules")
    assert sorted(modules - listed) == [], "modules missing from docs/architecture.md"
    assert sorted(listed - modules) == [], "docs/architecture.md lists modules that do not exist"


def test_configuration_lists_every_variable_and_no_other() -> None:
    variables = set(Config._ENV.values()) | set(ProcessConfig._ENV.values())
    listed = _table_cells("docs/configuration.md", r"^\| `([A-Z][A-Z0-9_]*)` \|")
    assert sorted(variables - listed) == [], "variables missing from docs/configuration.md"
    assert sorted(listed - variables) == [], "docs/configuration.md lists variables config.py does not read"


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_links_between_pages_resolve() -> None:
    broken = []
    for doc in ["README.md", *(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)\s]+)\)", (ROOT / doc).read_text()):
            if re.match(r"[a-z]+:", target):
                continue  # https:, mailto:
            path, _, anchor = target.partition("#")
            resolved = (ROOT / doc).parent / path if path else ROOT / doc
            name = str(resolved.resolve().relative_to(ROOT))
            if name in PENDING_PAGES and not resolved.exists():
                continue
            if not resolved.exists():
                broken.append(f"{doc}: {target}")
            elif anchor:
                headings = re.findall(r"^#+ (.+)$", resolved.read_text(), re.M)
                if anchor not in {_slug(h) for h in headings}:
                    broken.append(f"{doc}: {target} (no such heading)")
    assert broken == []


def test_no_tracker_issue_numbers_in_code_or_docs() -> None:
    found = subprocess.run(["git", "grep", "-niE", r"issue ?#?[0-9]+", "--", "*.py", "*.md"], cwd=ROOT,
                           capture_output=True, text=True)
    assert found.returncode == 1 and found.stdout == "", found.stdout  # 1: no match
