"""What an annotator sees: headless Chromium opens a task and DALT's suggestion is already selected.

Debian's ``chromium`` is driven by Playwright (never ``playwright install``: nothing is downloaded).
Set ``DALT_E2E_SCREENSHOT=docs/screenshot-labeling.png`` to refresh the README's screenshot.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from backend.labelstudio_server import LabelStudio
from tests.e2e.conftest import Dalt, TrainedProject

pytestmark = pytest.mark.e2e

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium under Playwright; skipped with the reason when either is missing."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (dev extra)")
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def log_in(page, ls: LabelStudio) -> None:
    page.goto(ls.url + "/user/login/")
    page.fill("input[name=email]", ls.username)
    page.fill("input[name=password]", ls.password)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/user/login" not in url, timeout=60_000)


def pick_task(p: TrainedProject, dalt: Dalt) -> tuple[int, str]:
    """An unlabeled task with a prediction of the served version, a right one if any (for the picture)."""
    version = dalt.current_version(p.pid)
    candidates = [t for t in p.truth if t not in p.annotated][:20]
    p.client.actions.create(id="retrieve_tasks_predictions", project=p.pid,
                            selected_items={"all": False, "included": candidates})
    best: tuple[float, int, str] | None = None
    for task_id in candidates:
        for pred in p.client.predictions.list(task=task_id):
            if pred.model_version != version or not pred.result:
                continue
            choice = pred.result[0]["value"]["choices"][0]
            rank = (choice == p.truth[task_id], pred.score or 0.0)
            if best is None or rank > best[0]:
                best = (rank, task_id, choice)
    assert best is not None, f"no task got a prediction of {version}"
    return best[1], best[2]


def test_suggested_choice_is_selected_in_the_labeling_page(
    browser, trained_project: TrainedProject, label_studio: LabelStudio, dalt: Dalt, tmp_path: Path
) -> None:
    task_id, suggested = pick_task(trained_project, dalt)
    page = browser.new_page(viewport={"width": 1280, "height": 860})
    try:
        log_in(page, label_studio)
        page.goto(f"{label_studio.url}/projects/{trained_project.pid}/data?task={task_id}")
        from playwright.sync_api import expect

        chosen = page.locator(f'.lsf-choice__checkbox input[name="{suggested}"]')
        expect(chosen).to_be_visible(timeout=60_000)
        expect(chosen).to_be_checked()
        others = [d for d in map(str, range(10)) if d != suggested]
        for digit in others:
            expect(page.locator(f'.lsf-choice__checkbox input[name="{digit}"]')).not_to_be_checked()
        page.wait_for_timeout(500)  # let the image finish painting for the picture
        shot = tmp_path / "screenshot-labeling.png"
        page.screenshot(path=str(shot))
        assert shot.stat().st_size > 10_000
        target = os.environ.get("DALT_E2E_SCREENSHOT")
        if target:
            Path(target).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(shot, target)
    finally:
        page.close()
