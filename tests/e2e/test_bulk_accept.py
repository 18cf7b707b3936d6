"""Bulk accept end to end with the real Label Studio: ``dalt predict`` writes predictions for the whole
project, ``dalt accept`` creates the accept and audit tabs, the data manager action "Create Annotations
From Predictions" runs on the accept tab through the actions API, and its ``ANNOTATIONS_CREATED`` webhook
is recorded as bulk-accepted. The browser shows both tabs (screenshots into ``DALT_E2E_SHOTS``; the rate
of ``dalt predict``'s bulk writes against one SDK call per task into ``DALT_E2E_RATE``)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from backend import demo, processes
from backend.labelstudio_server import LabelStudio
from backend.processes import ROOT
from tests.conftest import jobs_idle
from tests.e2e.conftest import Dalt, Mnist, tasks_of
from tests.e2e.test_browser import browser, log_in  # noqa: F401 - the browser fixture

pytestmark = pytest.mark.e2e
TASKS, LABELED = 160, 60


def dalt_cli(d: Dalt, *args: str) -> str:
    proc = subprocess.run([processes.venv_bin("dalt"), *args], cwd=ROOT, env=d.env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, f"dalt {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


@pytest.fixture(scope="module")
def accept_project(label_studio: LabelStudio, dalt: Dalt, mnist: Mnist, e2e_dir: Path) -> dict:
    """A digits project of its own (bulk accept annotates most of it), encoded and trained on 60 labels."""
    client = label_studio.sdk()
    pid = client.projects.create(title="MNIST bulk accept", label_config=demo.DIGITS_LABEL_CONFIG).id
    uploads = demo.write_mnist_pngs(e2e_dir / "accept-uploads", TASKS, offset=1000)
    demo.upload_images(label_studio, pid, [path for path, _ in uploads])
    demo.connect_backend(client, pid, dalt.url)
    dalt.encode(pid)
    processes.wait_for(lambda: jobs_idle(dalt.store, pid), timeout=120, what="the jobs encoding queued")
    tasks = tasks_of(client, pid)
    truth = {t.id: mnist.label_of(t.data["image"]) for t in tasks}
    for task_id in list(truth)[:LABELED]:
        client.annotations.create(id=task_id, result=demo.digit_result(truth[task_id]))
    version = dalt.wait_for_version(pid, labels=LABELED, timeout=180)
    return {"pid": pid, "client": client, "truth": truth, "version": version}


def test_predict_accept_action_and_audit(browser, accept_project: dict, dalt: Dalt,  # noqa: F811
                                         label_studio: LabelStudio, tmp_path: Path) -> None:
    p = accept_project
    pid, client, version = p["pid"], p["client"], p["version"]
    out = dalt_cli(dalt, "predict", "--project", str(pid), "--no-progress", "--batch", "50")
    assert f"{TASKS - LABELED} predictions written" in out
    preds = [x for x in client.predictions.list(project=pid) if x.model_version == version]
    assert {x.task for x in preds} == set(list(p["truth"])[LABELED:])
    assert "0 predictions written" in dalt_cli(dalt, "predict", "--project", str(pid), "--no-progress")  # resumes

    plan = json.loads(dalt_cli(dalt, "accept", "--project", str(pid), "--precision", "0.8", "--json",
                               "--audit-min", "10").rsplit("\n", 2)[0])
    assert plan["threshold"] is not None and plan["accepted"] > 0 and plan["tab"] and plan["audit_tab"]
    accepted = _accepted(dalt, pid, plan["threshold"])
    assert len(accepted) == plan["accepted"]
    in_tab = {t.id for t in client.tasks.list(project=pid, view=plan["tab"], fields="task_only")}
    assert in_tab == accepted, f"tab {sorted(in_tab)[:10]}... vs plan {sorted(accepted)[:10]}..."
    audit = {t.id for t in client.tasks.list(project=pid, view=plan["audit_tab"], fields="task_only")}
    assert len(audit) == plan["audit_size"] == min(plan["accepted"], 10) and audit <= accepted

    screenshot(browser, label_studio, pid, plan["tab"], "bulk-accept-tab.png", tmp_path)
    # A person runs "Create Annotations From Predictions" on the tab (here through the actions API).
    client.actions.create(id="predictions_to_annotations", project=pid, view=plan["tab"],
                          selected_items={"all": True, "excluded": []},
                          request_options={"additional_body_parameters": {"model_version": version}})
    processes.wait_for(lambda: dalt.store.bulk_tasks(pid) == accepted, timeout=30,
                       what="the ANNOTATIONS_CREATED webhook recorded as bulk-accepted")
    wrong = sum(p["truth"][t] != dalt.store.labels(pid)[t] for t in accepted)
    print(f"bulk accept e2e: {len(accepted)} accepted at threshold {plan['threshold']}, {wrong} wrong, "
          f"expected {plan['expected_wrong']}")
    screenshot(browser, label_studio, pid, plan["audit_tab"], "bulk-accept-audit-tab.png", tmp_path)
    _rate_against_the_per_task_floor(client, label_studio)


def _accepted(d: Dalt, pid: int, threshold: float) -> set[int]:
    """The tasks whose current calibrated score reaches ``threshold`` (what the plan accepted)."""
    from backend.predict_all import current_predictions

    return {t for t, (_, s) in current_predictions(d.store, pid).labels.items() if s >= threshold}


def _rate_against_the_per_task_floor(client, label_studio: LabelStudio) -> None:
    """Print tasks/s of the bulk import against one SDK create call per task (no assertion on timing)."""
    from backend.labelstudio import create_prediction, import_predictions

    pid = client.projects.create(title="predict rate", label_config=demo.DIGITS_LABEL_CONFIG).id
    ids = client.projects.import_tasks(id=pid, request=[{"image": f"/x/{i}.png"} for i in range(600)],
                                       return_task_ids=True).task_ids
    body = {"result": demo.digit_result("3"), "score": 0.9, "model_version": "rate"}
    t0 = time.perf_counter()
    for start in range(0, 500, 250):
        import_predictions(label_studio.url, label_studio.api_key, pid,
                           [{**body, "task": t} for t in ids[start : start + 250]])
    bulk = 500 / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    for t in ids[500:600]:
        create_prediction(label_studio.url, label_studio.api_key, {**body, "task": t})
    floor = 100 / (time.perf_counter() - t0)
    load = os.getloadavg()[0]
    print(f"predict rate: bulk {bulk:.0f} tasks/s, per-task SDK {floor:.0f} tasks/s, x{bulk / floor:.1f} "
          f"(load {load:.2f})")
    target = os.environ.get("DALT_E2E_RATE")
    if target:
        Path(target).write_text(json.dumps({"bulk_tasks_per_s": round(bulk, 1), "per_task_tasks_per_s": round(floor, 1),
                                            "ratio": round(bulk / floor, 2), "load_1min": round(load, 2)}, indent=1))


def screenshot(browser, ls: LabelStudio, pid: int, tab: int, name: str, tmp_path: Path) -> None:  # noqa: F811
    """The data manager showing ``tab``, saved as ``name`` (copied into ``DALT_E2E_SHOTS`` when set)."""
    page = browser.new_page(viewport={"width": 1280, "height": 640})
    try:
        log_in(page, ls)
        page.goto(f"{ls.url}/projects/{pid}/data?tab={tab}")
        page.wait_for_selector("text=DALT audit", timeout=60_000)  # the tab bar
        page.wait_for_timeout(3000)  # let the rows and images paint
        shot = tmp_path / name
        page.screenshot(path=str(shot))
        assert shot.stat().st_size > 10_000
        target = os.environ.get("DALT_E2E_SHOTS")
        if target:
            Path(target).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(shot, Path(target) / name)
    finally:
        page.close()
