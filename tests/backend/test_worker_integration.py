"""Webhooks -> real `rq worker` process -> new version served by /predict, as in production."""

import json
from dataclasses import replace

from rq import Queue
from rq.job import Job

from backend.app import create_app
from backend.store import keys
from tests.conftest import FIXTURES, wait_for


def replayed_calls() -> list[dict]:
    """The captured Label Studio webhook bodies of project 1, in the order Label Studio sent them."""
    return [json.loads((FIXTURES / f"{name}.json").read_text())["body"] for name in (
        "webhook_tasks_created", "webhook_annotation_created", "webhook_annotation_updated",
        "webhook_annotation_deleted", "webhook_start_training",
    )]


def test_replayed_webhooks_train_through_a_real_worker(client, ls_payload, annotation_event, seeded_project,
                                                       store, rq_worker):
    seeded = seeded_project(n=60)
    for body in replayed_calls():
        assert client.post("/webhook", json=body).status_code == 200
    # The captured sequence ends with no labels (created, updated, deleted); label 30 tasks more.
    for i in range(30):
        client.post("/webhook", json=annotation_event(100 + i, seeded["ids"][i], seeded["y"][i]))
    wait_for(lambda: store.current_version(1) and store.versions(1)[0]["labels"] == 30, timeout=60)
    version = client.post("/setup", json=ls_payload("setup")).json["model_version"]
    assert version == store.current_version(1)
    body = ls_payload("predict_request")
    tasks = [dict(body["tasks"][0], id=t) for t in seeded["ids"][30:]]
    results = client.post("/predict", json=dict(body, tasks=tasks)).json["results"]
    assert {r["model_version"] for r in results} == {version}
    right = sum(r["result"][0]["value"]["choices"][0] == y for r, y in zip(results, seeded["y"][30:], strict=True))
    assert right >= 27


def test_a_burst_of_100_annotations_is_coalesced(client, annotation_event, seeded_project, store, rq_worker):
    seeded = seeded_project(n=120)
    queued = 0
    for i in range(100):
        resp = client.post("/webhook", json=annotation_event(i + 1, seeded["ids"][i], seeded["y"][i]))
        queued += resp.json["training_queued"]
    assert store.label_count(1) == 100

    def settled() -> bool:
        head = store.versions(1)[0] if store.versions(1) else None
        return head is not None and head["generation"] == store.generation(1) and not store.train_pending(1)

    wait_for(settled, timeout=120)
    runs = store.stats(1).get("train_runs", 0)
    assert store.versions(1)[0]["labels"] == 100  # the last model includes every label
    assert 1 <= runs == queued < 100  # a handful of runs, not one per annotation
    print(f"\n100 webhooks -> {queued} training jobs queued, {int(runs)} runs")


def test_a_failing_job_never_replaces_the_working_model(config, annotation_event, seeded_project, store, rq_worker):
    client = create_app(replace(config, train_retries=2), store=store).test_client()
    seeded = seeded_project(n=40)
    for i in range(20):
        client.post("/webhook", json=annotation_event(i + 1, seeded["ids"][i], seeded["y"][i]))
    wait_for(lambda: store.current_version(1) and not store.train_pending(1)
             and store.versions(1)[0]["generation"] == store.generation(1), timeout=60)
    good = store.current_version(1)
    # Break the project: its encoder metadata is no longer JSON, so the training job raises.
    store.r.hset(keys.encoder_meta(1), "enc-test", "{broken")
    client.post("/webhook", json=annotation_event(99, seeded["ids"][30], seeded["y"][30]))
    queue = Queue("dalt", connection=store.r)
    wait_for(lambda: queue.failed_job_registry.count >= 1, timeout=90)
    job = Job.fetch(queue.failed_job_registry.get_job_ids()[0], connection=store.r)
    assert job.retries_left == 0  # retried as configured before giving up
    assert store.current_version(1) == good
