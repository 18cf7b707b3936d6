"""``dalt predict`` and ``dalt accept`` against the fake Label Studio: predictions written in bulk and
resumably, the threshold from the evidence, two tabs, the action, and its webhook recorded as bulk."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from backend.accept import plan_accept, run_accept
from backend.cli import main as dalt
from backend.config import Config
from backend.labelstudio import LabelStudioAccess
from backend.predict_all import current_predictions, push_predictions
from backend.training import train_project
from tests.fake_label_studio import FakeLabelStudio

N, LABELED = 300, 150


@pytest.fixture
def fake_ls() -> Iterator[FakeLabelStudio]:
    ls = FakeLabelStudio().start()
    ls.add_tasks(1, list(range(1, N + 1)))
    yield ls
    ls.stop()


@pytest.fixture
def trained(store, seeded_project, config) -> dict:
    seeded = seeded_project(n=N)
    for i in range(LABELED):
        store.record_annotation(1, 1000 + i, seeded["ids"][i], seeded["y"][i])
    res = train_project(store, Config(redis_url=config.redis_url, head="logreg"), 1)
    assert res.status == "published"
    return {**seeded, "version": res.version}


def access(ls: FakeLabelStudio) -> LabelStudioAccess:
    return LabelStudioAccess(ls.url, ls.legacy_key, trusted=True)


def test_predict_writes_every_unlabeled_task_once_and_resumes(store, trained, fake_ls) -> None:
    res = push_predictions(store, access(fake_ls), 1, batch=64, progress=False)
    assert (res.written, res.skipped, res.labeled) == (N - LABELED, 0, LABELED)
    assert len(fake_ls.hits("/api/projects/1/import/predictions")) == 3  # 150 tasks in batches of 64
    stored = {p["task"]: p for p in fake_ls.predictions}
    assert set(stored) == set(range(LABELED + 1, N + 1))
    p = stored[N]
    assert p["model_version"] == trained["version"] and p["result"][0]["value"]["choices"][0] in ("zero", "one", "two")
    assert p["score"] == p["result"][0]["score"] and 0 < p["score"] < 1
    assert store.served(1, N)["score"] == p["score"]  # the live evaluation will compare the annotation
    again = push_predictions(store, access(fake_ls), 1, progress=False)
    assert (again.written, again.skipped) == (0, N - LABELED) and len(fake_ls.predictions) == N - LABELED


def test_accept_plans_from_the_evidence_creates_tabs_and_applies(client, store, trained, fake_ls) -> None:
    push_predictions(store, access(fake_ls), 1, progress=False)
    dry = run_accept(store, access(fake_ls), 1, 0.95, dry_run=True)
    assert dry.plan.threshold is not None and dry.plan.tasks and not fake_ls.views
    res = run_accept(store, access(fake_ls), 1, 0.95, apply=True, audit_min=20)
    plan = res.plan
    assert plan.tasks == dry.plan.tasks and sum(plan.per_class.values()) == len(plan.tasks)
    assert len(plan.audit) == min(len(plan.tasks), 20) and set(plan.audit) <= set(plan.tasks)
    scores = current_predictions(store, 1).labels
    assert all(scores[t][1] >= plan.threshold for t in plan.tasks)
    assert all(scores[t][1] < plan.threshold for t in set(scores) - set(plan.tasks))
    assert fake_ls.model_versions[1] == "DALT" and res.previous_model_version == "DALT"  # set, then restored
    assert [r.path for r in fake_ls.requests if r.method == "PATCH"] == ["/api/projects/1/"] * 2
    tab, audit = fake_ls.views
    items = {i["filter"]: i for i in tab["data"]["filters"]["items"]}
    assert items["filter:tasks:predictions_score"]["value"] == plan.threshold
    assert items["filter:tasks:predictions_model_versions"]["value"] == [trained["version"]]
    assert sorted(i["value"] for i in audit["data"]["filters"]["items"]) == plan.audit
    action = fake_ls.actions[-1]
    assert action["id"] == "predictions_to_annotations" and action["body"]["model_version"] == trained["version"]
    # The webhook Label Studio sends for the action is recorded as bulk-accepted.
    reply = client.post("/webhook", json=action["webhook"]).json
    assert reply["detail"]["bulk_accepted"] == len(plan.tasks)
    assert store.bulk_tasks(1) == set(plan.tasks)
    run = store.accept_run(1)
    assert run["audit_counts"]["pending"] == len(plan.audit) and run["target"] == 0.95


def test_no_threshold_without_enough_evidence(store, trained) -> None:
    current = current_predictions(store, 1)
    for method in ("expected", "bound"):
        plan = plan_accept(store, 1, current.version, current.meta, current.labels, 0.9999, method=method)
        assert plan.threshold is None and plan.tasks == [] and plan.audit == []
    # 150 right held-out labels: a 95% bound of 0.95 holds (0.05 ** (1 / 150) = 0.98), of 0.99 not.
    assert plan_accept(store, 1, current.version, current.meta, current.labels, 0.95, method="bound").threshold
    assert plan_accept(store, 1, current.version, current.meta, current.labels, 0.99, method="bound").threshold is None


def test_cli_accept_dry_run_prints_the_plan(store, trained, fake_ls, monkeypatch, capsys, redis_server) -> None:
    monkeypatch.setenv("LABEL_STUDIO_URL", fake_ls.url)
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", fake_ls.legacy_key)
    assert dalt(["accept", "--project", "1", "--precision", "0.95", "--dry-run", "--redis-url", redis_server]) == 0
    out = capsys.readouterr().out
    assert "threshold: score >=" in out and "dry run" in out.splitlines()[-1] and not fake_ls.views
    assert dalt(["predict", "--project", "1", "--no-progress", "--redis-url", redis_server]) == 0
    assert f"{N - LABELED} predictions written" in capsys.readouterr().out.splitlines()[-1]
