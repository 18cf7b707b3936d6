"""The label ledger converges to what Label Studio holds, whatever webhooks arrive, in whatever order, from
whichever gunicorn worker: bulk creations, forged deletions, A -> B -> A during a crawl, settings written by
two workers, fifty presses of Train, deleted tasks and projects."""

from __future__ import annotations

import copy
from dataclasses import replace

import numpy as np
import pytest
from rq import Queue

import backend.reconcile as rec
from backend.app import create_app
from backend.cli import main as dalt
from backend.jobs import purge_project_job
from backend.projects import Projects
from backend.reconcile import reconcile_project
from backend.store import keys
from backend.training import train_project
from tests.conftest import CONFIG_XML, load_fixture, run_jobs


@pytest.fixture
def ls_config(config, fake_ls, monkeypatch):
    """The app's configuration, and the same in the environment for jobs run here (``run_jobs``)."""
    monkeypatch.setenv("LABEL_STUDIO_URL", fake_ls.url)
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", fake_ls.legacy_key)
    monkeypatch.setenv("REDIS_URL", config.redis_url)
    monkeypatch.setenv("DALT_RECONCILE_INTERVAL", "3600")
    return replace(config, label_studio_url=fake_ls.url, label_studio_api_key=fake_ls.legacy_key,
                   reconcile_delay=0.0, reconcile_interval=3600.0)


def jobs(store, name: str) -> list:
    return [j for j in Queue("dalt", connection=store.r).jobs if j.func_name == f"backend.jobs.{name}"]


def test_bulk_created_annotations_as_label_studio_sends_them(client, store, seeded_project, fake_ls, ls_config):
    """ANNOTATIONS_CREATED with a LIST under ``annotation`` (captured from "Create Annotations From Predictions"):
    both labels recorded, both ids seen (counters in sync: no crawl), and a resync changes nothing."""
    seeded_project(n=10)
    body = copy.deepcopy(load_fixture("webhook_annotations_created")["body"])
    assert isinstance(body["annotation"], list) and len(body["annotation"]) == 2
    reply = client.post("/webhook", json=body).json
    assert reply["labels_changed"] == 2 and reply["detail"]["reconcile"] == "in_sync"
    assert store.labels(1) == {1: "one", 2: "two"} and store.seen_annotations(1) == ({11, 12}, set())
    for ann in body["annotation"]:  # Label Studio holds the same two annotations
        fake_ls.tasks[1][ann["task"] - 1]["annotations"].append(ann)
    result = reconcile_project(store, ls_config, 1, force=True)
    assert (result.added, result.updated, result.removed, result.labels_changed) == (0, 0, 0, 0)


def test_a_forged_delete_is_undone_by_a_resync_and_stops_mattering(seeded_project, store, fake_ls, ls_config):
    seeded_project(n=30)
    client = create_app(ls_config, store=store).test_client()
    ids = {}
    for t in range(1, 6):  # delivered
        event = fake_ls.annotate(1, t, "one")
        ids[t] = event["annotation"]["id"]
        assert client.post("/webhook", json=event).json["detail"]["reconcile"] == "in_sync"
    forged = fake_ls.event("ANNOTATIONS_DELETED", 1, annotations=[{"id": ids[3]}])  # Label Studio still has it
    reply = client.post("/webhook", json=forged).json
    assert 3 not in store.labels(1) and reply["detail"]["reconcile"] == "queued"
    run_jobs(store)  # the reconcile job (and the training it queues)
    assert store.labels(1) == fake_ls.truth(1)  # restored
    # Counters agree again: the next webhooks do not start another crawl.
    for t in (6, 7):
        assert client.post("/webhook", json=fake_ls.annotate(1, t, "two")).json["detail"]["reconcile"] == "in_sync"
    assert not jobs(store, "reconcile_project_job")


def test_a_webhook_during_the_crawl_wins_even_when_the_label_went_a_b_a(seeded_project, store, fake_ls, ls_config,
                                                                        monkeypatch):
    seeded_project(n=30)
    client = create_app(ls_config, store=store).test_client()
    ann = fake_ls.annotate(1, 4, "zero")
    client.post("/webhook", json=ann)
    aid = ann["annotation"]["id"]
    real_fetch = rec.fetch_annotations

    def crawl(*args, **kwargs):
        client.post("/webhook", json=fake_ls.update(1, aid, "one"))  # A -> B, delivered
        out = real_fetch(*args, **kwargs)  # the crawl reads B
        client.post("/webhook", json=fake_ls.update(1, aid, "zero"))  # B -> A, delivered
        return out

    monkeypatch.setattr(rec, "fetch_annotations", crawl)
    reconcile_project(store, ls_config, 1, force=True)
    assert store.labels(1)[4] == "zero" == fake_ls.truth(1)[4]


def test_settings_written_by_two_workers_are_compared_with_redis_not_memory(store, seeded_project,
                                                                            annotation_event, client):
    """Worker A saves 3 classes, B saves 2, A saves 3 again: Redis must hold 3, and training keeps the third."""
    seeded_project(n=30)
    two = CONFIG_XML.replace('<Choice value="two"/>', "")
    worker_a, worker_b = Projects(store), Projects(store)
    worker_a.configure(1, CONFIG_XML)
    worker_b.configure(1, two)
    worker_a.configure(1, CONFIG_XML)
    assert store.project(1)["classes"] == ["zero", "one", "two"]
    for i in range(9):
        client.post("/webhook", json=annotation_event(i + 1, i + 1, ["zero", "one", "two"][i % 3]))
    assert train_project(store, replace_head("logreg"), 1).status == "published"
    assert set(store.versions(1)[0]["classes"]) == {"zero", "one", "two"}  # no label of "two" was dropped
    # The same through two apps (two gunicorn workers) and /setup.
    setup = load_fixture("setup")["body"]
    app_a, app_b = (create_app(replace_head("logreg"), store=store).test_client() for _ in range(2))
    for app, xml in ((app_a, CONFIG_XML), (app_b, two), (app_a, CONFIG_XML)):
        assert app.post("/setup", json=dict(setup, schema=xml)).status_code == 200
    assert store.project(1)["classes"] == ["zero", "one", "two"]


def replace_head(head: str):
    from backend.config import Config

    return Config(head=head, log_level="WARNING")


def test_fifty_presses_of_train_queue_one_run_and_one_crawl(seeded_project, store, fake_ls, ls_config):
    seeded_project(n=30)
    client = create_app(ls_config, store=store).test_client()
    client.post("/webhook", json=fake_ls.annotate(1, 1, "one"))
    body = dict(load_fixture("webhook_start_training")["body"], project=fake_ls.project(1))
    replies = [client.post("/webhook", json=body).json for _ in range(50)]
    assert len(jobs(store, "train_project_job")) == 1 and len(jobs(store, "reconcile_project_job")) == 1
    assert sum(r["training_queued"] for r in replies) == 0  # the label above had queued the run already
    # Once the queued run has started (it clears the flag first), one more press queues exactly one more.
    store.clear_train_pending(1)
    store.clear_reconcile(1)
    replies = [client.post("/webhook", json=body).json for _ in range(50)]
    assert sum(r["training_queued"] for r in replies) == 1
    assert len(jobs(store, "train_project_job")) == 2 and len(jobs(store, "reconcile_project_job")) == 2


def test_deleted_tasks_lose_labels_annotations_suggestions_and_embeddings(client, store, seeded_project,
                                                                          annotation_event):
    seeded = seeded_project(n=30)
    store.put_encoder(1, "enc-old", b"", {"dim": 8})  # a second encoder version with its own embeddings
    store.put_embeddings(1, "enc-old", {t: np.ones(8, np.float32) for t in (1, 2, 3)})
    store.put_encoder(1, seeded["encoder_version"], b"", {"dim": 8})
    for t in (1, 2, 3, 4):
        client.post("/webhook", json=annotation_event(t, t, "one"))
    store.record_served(1, {t: {"version": "v1", "label": "one", "score": 0.9} for t in (1, 2, 3, 4)})
    gen = store.generation(1)
    body = dict(load_fixture("webhook_tasks_created")["body"], action="TASKS_DELETED", tasks=[{"id": 2}, {"id": 3}])
    reply = client.post("/webhook", json=body).json
    assert reply["labels_changed"] == 2 and reply["training_queued"] is False  # a run was already queued
    assert reply["detail"]["embeddings_removed"] == 4  # two tasks, two encoder versions
    assert set(store.labels(1)) == {1, 4} and store.generation(1) == gen + 1
    assert {a for a, (t, _) in store.annotation_labels(1).items()} == {1, 4}
    assert store.seen_annotations(1)[0] == {1, 4}
    assert store.served(1, 2) is None and store.served(1, 1) is not None
    for version in ("enc-old", seeded["encoder_version"]):
        _, found = store.get_embeddings(1, version, [1, 2, 3], 8)
        assert found.tolist() == [True, False, False], version
    assert set(store.get_embeddings(1, seeded["encoder_version"], [5], 8)[1]) == {True}


def test_project_deleted_purges_only_what_label_studio_confirms(seeded_project, store, fake_ls, ls_config, config,
                                                                monkeypatch):
    seeded_project(n=10, pid=1)
    seeded_project(n=10, pid=2)
    store.r.set(keys.project_prefix(2) + ":added-by-a-later-version", b"x")
    body = {"action": "PROJECT_DELETED", "project": {"id": 2}}
    # No configured Label Studio to confirm with: nothing is deleted.
    assert create_app(config, store=store).test_client().post("/webhook", json=body).json["detail"]["purge"] == \
        "unconfirmable"
    client = create_app(ls_config, store=store).test_client()
    fake_ls.add_tasks(2, [100])  # Label Studio still has project 2: a forged or mistaken event
    assert client.post("/webhook", json=body).json["detail"]["purge"] == "queued"
    run_jobs(store)
    assert store.project(2) and purge_project_job(2)["status"] == "refused"
    del fake_ls.tasks[2]  # now really deleted
    client.post("/webhook", json=body)
    run_jobs(store)
    assert store.project_keys(2) == [] and store.projects() == [1]
    assert store.project(1)["classes"] == ["zero", "one", "two"]  # the other project untouched


def test_dalt_purge_deletes_every_key_under_the_prefix(seeded_project, store, config, monkeypatch, capsys):
    seeded_project(n=10, pid=3)
    seeded_project(n=10, pid=30)  # shares the digits: must not match dalt:{p3}:*
    store.r.set(keys.project_prefix(3) + ":added-by-a-later-version", b"x")
    monkeypatch.setenv("REDIS_URL", config.redis_url)
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    assert dalt(["purge", "--project", "3"]) == 1  # no terminal, no --yes: refused
    assert "--yes" in capsys.readouterr().err and store.project_keys(3)
    assert dalt(["purge", "--project", "3", "--yes"]) == 0
    assert capsys.readouterr().out.strip().startswith("project 3: purged ")
    assert store.project_keys(3) == [] and store.projects() == [30] and store.project_keys(30)
