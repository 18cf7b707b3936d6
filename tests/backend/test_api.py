"""The HTTP API as Label Studio calls it, replaying captured payloads (jobs run in-process here)."""

import numpy as np
import pytest

from backend.app import create_app
from backend.config import Config
from backend.store import Store
from tests.conftest import CONFIG_XML, free_port, run_jobs


def label_tasks(client, annotation_event, seeded, count, start_ann=1):
    for i in range(count):
        resp = client.post("/webhook", json=annotation_event(start_ann + i, seeded["ids"][i], seeded["y"][i]))
        assert resp.status_code == 200, resp.json


def predict_body(ls_payload, task_ids):
    body = ls_payload("predict_request_single_task")
    template = body["tasks"][0]
    body["tasks"] = [dict(template, id=t) for t in task_ids]
    return body


def test_health_and_index(client):
    assert client.get("/health").json == {"status": "UP", "model_class": "DALT"}
    assert client.get("/").status_code == 200


def test_setup_answers_v0_before_training_and_saves_the_project(client, ls_payload, store):
    resp = client.post("/setup", json=ls_payload("setup"))
    assert resp.status_code == 200 and resp.json == {"model_version": "v0"}
    assert store.project(1)["classes"] == ["zero", "one", "two"]
    # No LABEL_STUDIO_URL here: /setup's hostname and token are saved as one pair.
    assert store.project(1)["setup_access"]["hostname"] == "http://localhost:18080"


def test_setup_refuses_unsupported_configs_with_a_message(client, ls_payload):
    body = ls_payload("setup")
    body["schema"] = '<View><Image name="i" value="$i"/><RectangleLabels name="r" toName="i"/></View>'
    resp = client.post("/setup", json=body)
    assert resp.status_code == 422
    assert "single-choice <Choices>" in resp.json["error"]


@pytest.mark.parametrize(
    ("path", "data", "content_type", "fragment"),
    [
        ("/setup", "{not json", "application/json", "JSON"),
        ("/setup", "[1, 2]", "application/json", "JSON object"),
        ("/setup", '{"schema": "<View/>"}', "application/json", "project"),
        ("/setup", '{"project": "1.2"}', "application/json", "schema"),
        ("/predict", '{"project": "1.2", "tasks": {}}', "application/json", "tasks"),
        ("/predict", '{"tasks": []}', "application/json", "project"),
        ("/webhook", '{"project": {"id": 1}}', "application/json", "action"),
        ("/webhook", '{"action": "ANNOTATION_CREATED"}', "application/json", "project"),
        ("/webhook", '{"action": "ANNOTATION_CREATED", "project": {"id": 1}}', "application/json", "annotation"),
        ("/webhook", '{"action": "ANNOTATIONS_DELETED", "project": {"id": 1}, "annotations": [{"id": "x"}]}',
         "application/json", "integer ids"),
        ("/webhook", "action=1", "application/x-www-form-urlencoded", "JSON"),
    ],
)
def test_bad_requests_get_clear_400s(client, path, data, content_type, fragment):
    resp = client.post(path, data=data, content_type=content_type)
    assert resp.status_code == 400, resp.json
    assert fragment in resp.json["error"]


def test_predict_without_head_answers_empty_results_with_v0(client, ls_payload, seeded_project):
    seeded_project()
    resp = client.post("/predict", json=predict_body(ls_payload, [1, 2, 3]))
    assert resp.status_code == 200
    assert resp.json["results"] == [{"result": [], "score": 0.0, "model_version": "v0"}] * 3


def test_predict_unknown_project_without_config_is_422(client):
    resp = client.post("/predict", json={"project": "99.1", "tasks": [{"id": 1, "data": {}}]})
    assert resp.status_code == 422
    assert "no label config" in resp.json["error"]


def test_annotations_train_a_head_that_predicts_with_the_setup_version(
    client, ls_payload, annotation_event, seeded_project, store
):
    seeded = seeded_project(n=60)
    label_tasks(client, annotation_event, seeded, 30)
    assert store.label_count(1) == 30
    run_jobs(store)
    version = client.post("/setup", json=ls_payload("setup")).json["model_version"]
    assert version != "v0"
    rest = seeded["ids"][30:]
    resp = client.post("/predict", json=predict_body(ls_payload, rest))
    results = resp.json["results"]
    assert len(results) == len(rest)
    assert {r["model_version"] for r in results} == {version}
    predicted = [r["result"][0]["value"]["choices"][0] for r in results]
    assert np.mean(np.array(predicted) == np.array(seeded["y"][30:])) > 0.9
    item = results[0]["result"][0]
    assert (item["from_name"], item["to_name"], item["type"]) == ("label", "image", "choices")
    assert 0 < item["score"] <= 1 and results[0]["score"] == item["score"]


def test_one_bad_task_never_fails_the_batch(client, ls_payload, annotation_event, seeded_project, store):
    seeded = seeded_project(n=30)
    label_tasks(client, annotation_event, seeded, 15)
    run_jobs(store)
    body = predict_body(ls_payload, [20])
    body["tasks"] = [body["tasks"][0], {"id": "x"}, "garbage", {"id": 987654, "data": {}}, body["tasks"][0]]
    results = client.post("/predict", json=body).json["results"]
    assert len(results) == 5
    assert results[0]["result"] and results[4]["result"]
    assert results[1]["result"] == results[2]["result"] == results[3]["result"] == []


def test_update_delete_and_cancel_change_labels(client, annotation_event, seeded_project, ls_payload, store):
    seeded_project()
    client.post("/webhook", json=annotation_event(1, 5, "one"))
    client.post("/webhook", json=annotation_event(1, 5, "two", action="ANNOTATION_UPDATED"))
    assert store.labels(1) == {5: "two"}
    deleted = ls_payload("webhook_annotation_deleted")
    assert deleted["annotations"] == [{"id": 1}]
    resp = client.post("/webhook", json=deleted)
    assert resp.status_code == 200 and resp.json["labels_changed"] == 1
    assert store.labels(1) == {}
    client.post("/webhook", json=annotation_event(2, 6, "one", cancelled=True))
    client.post("/webhook", json=annotation_event(3, 7, None))  # empty annotation
    generation = store.generation(1)
    resp = client.post("/webhook", json=annotation_event(4, 8, "seven"))  # not in the config: refused
    assert resp.status_code == 400 and "seven" in resp.json["error"], resp.json
    assert store.labels(1) == {} and store.generation(1) == generation


def test_min_annotations_to_start_training_is_respected(client, annotation_event, seeded_project, store):
    seeded_project()
    for i in range(1, 4):
        resp = client.post("/webhook", json=annotation_event(i, i, "one", min_annotations=4))
        assert resp.json["training_queued"] is False
    resp = client.post("/webhook", json=annotation_event(4, 4, "two", min_annotations=4))
    assert resp.json["training_queued"] is True


def test_start_training_tasks_created_and_unknown_actions(client, ls_payload, seeded_project, store):
    resp = client.post("/webhook", json=ls_payload("webhook_tasks_created"))
    assert resp.status_code == 200 and "encode_job" not in resp.json["detail"]  # no encoder yet
    seeded_project()
    resp = client.post("/webhook", json=ls_payload("webhook_tasks_created"))
    assert resp.json["detail"]["encode_job"].startswith("dalt-encode-1-")
    resp = client.post("/webhook", json=ls_payload("webhook_start_training"))
    assert resp.status_code == 200 and resp.json["training_queued"] is True
    body = ls_payload("webhook_project_updated")
    resp = client.post("/webhook", json=dict(body, action="SOMETHING_NEW"))
    assert resp.status_code == 200 and resp.json["status"] == "ignored"


def test_first_seen_project_is_created_by_a_webhook(client, annotation_event, store):
    resp = client.post("/webhook", json=annotation_event(1, 1, "one", pid=42))
    assert resp.status_code == 200
    assert 42 in store.projects() and store.labels(42) == {1: "one"}
    assert store.project(42)["classes"] == ["zero", "one", "two"]


def test_versions_and_metrics(client, annotation_event, seeded_project, store):
    seeded = seeded_project()
    label_tasks(client, annotation_event, seeded, 10)
    run_jobs(store)
    versions = client.get("/versions").json
    assert versions["versions"] == ["v1"]
    assert versions["projects"]["1"]["current"] == "v1"
    text = client.get("/metrics").get_data(as_text=True)
    assert 'dalt_labels{project="1"} 10.0' in text
    assert 'dalt_training_runs_total{project="1",status="published"} 1.0' in text
    assert "dalt_http_request_seconds_bucket" in text
    assert 'dalt_queue_depth{queue="dalt"} 0.0' in text


def test_basic_auth_protects_everything_but_health(config, store, ls_payload):
    app = create_app(Config(**{**config.__dict__, "basic_auth_user": "u", "basic_auth_pass": "p"}), store=store)
    c = app.test_client()
    assert c.get("/health").status_code == 200
    assert c.post("/setup", json=ls_payload("setup")).status_code == 401
    assert c.post("/setup", json=ls_payload("setup"), auth=("u", "wrong")).status_code == 401
    assert c.post("/setup", json=ls_payload("setup"), auth=("u", "p")).status_code == 200


def test_request_size_limit(config, store):
    app = create_app(Config(**{**config.__dict__, "max_content_length": 1000}), store=store)
    resp = app.test_client().post("/predict", data="x" * 5000, content_type="application/json")
    assert resp.status_code == 413 and "error" in resp.json


def test_redis_outage_gives_503_not_a_hang(config):
    dead = Store.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_timeout=1, socket_connect_timeout=1)
    app = create_app(Config(redis_url="redis://unused", log_level="WARNING"), store=dead)
    resp = app.test_client().post("/setup", json={"project": "1.2", "schema": CONFIG_XML})
    assert resp.status_code == 503 and "Redis" in resp.json["error"]
    assert app.test_client().get("/health").status_code == 503


def test_predict_follows_a_new_encoder_without_restart(client, ls_payload, annotation_event, seeded_project, store):
    seeded = seeded_project(n=60, dim=8)
    label_tasks(client, annotation_event, seeded, 30)
    run_jobs(store)
    body = predict_body(ls_payload, seeded["ids"][30:])
    first = client.post("/predict", json=body).json["results"]  # caches the head and its encoder
    assert all(r["result"] for r in first)
    # Bulk encoding retrains the encoder: new version, another dimension, same tasks.
    store.put_encoder(1, "enc-new", b"", {"dim": 4})
    store.put_embeddings(1, "enc-new", {t: x[:4] for t, x in zip(seeded["ids"], seeded["X"], strict=True)})
    client.post("/webhook", json=ls_payload("webhook_start_training"))
    run_jobs(store)
    assert store.versions(1)[0]["encoder_version"] == "enc-new"
    results = client.post("/predict", json=body).json["results"]
    assert {r["model_version"] for r in results} == {store.current_version(1)}
    assert all(r["result"] for r in results)


@pytest.mark.parametrize("result", [{"O": ""}, [{"from_name": "label", "value": {"choices": ["seven"]}}]])
def test_a_rejected_webhook_does_not_even_create_its_project(client, annotation_event, store, result):
    body = annotation_event(1, 1, "one", pid=77)
    body["annotation"]["result"] = result  # not a list / a label the config does not have (found by the fuzz test)
    resp = client.post("/webhook", json=body)
    assert resp.status_code == 400
    assert 77 not in store.projects() and store.project(77) == {}
