"""Fuzzed hostile input: whatever arrives on the HTTP API, the server never answers 5xx, and a rejected (4xx)
request changes nothing that was recorded.

Hypothesis generates bodies three ways: arbitrary JSON, Label Studio's real payloads with one field
replaced by arbitrary JSON (the shape that reaches deepest into the handlers), and raw bytes.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backend.training import train_project
from tests.conftest import load_fixture

PAYLOADS = {
    "/webhook": [load_fixture(n)["body"] for n in (
        "webhook_annotation_created", "webhook_annotation_updated", "webhook_annotation_deleted",
        "webhook_start_training", "webhook_tasks_created", "webhook_project_updated")],
    "/predict": [load_fixture("predict_request")["body"]],
    "/setup": [load_fixture("setup")["body"]],
}
PATHS = sorted(PAYLOADS)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=25,
)


def paths_of(value: object, prefix: tuple = ()) -> list[tuple]:
    """Every key path inside a JSON document."""
    out = [prefix] if prefix else []
    if isinstance(value, dict):
        for k, v in value.items():
            out += paths_of(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value[:3]):
            out += paths_of(v, (*prefix, i))
    return out


@st.composite
def mutated_payload(draw) -> tuple[str, dict]:
    path = draw(st.sampled_from(PATHS))
    body = json.loads(json.dumps(draw(st.sampled_from(PAYLOADS[path]))))
    for _ in range(draw(st.integers(1, 3))):
        paths = paths_of(body)
        if not paths:  # every key removed already
            break
        key_path = draw(st.sampled_from(paths))
        node = body
        for k in key_path[:-1]:
            node = node[k]
        if draw(st.booleans()):
            node[key_path[-1]] = draw(json_values)
        elif isinstance(node, dict):
            node.pop(key_path[-1], None)
    if draw(st.booleans()) and isinstance(body.get("project"), dict):
        body["project"]["id"] = draw(st.sampled_from([1, 2, 0, -3, "1", 10**20, None]))
    return path, body


requests_ = st.one_of(
    mutated_payload().map(lambda pb: (pb[0], json.dumps(pb[1]).encode())),
    st.tuples(st.sampled_from(PATHS), json_values.map(lambda v: json.dumps(v).encode())),
    st.tuples(st.sampled_from(PATHS), st.binary(max_size=200)),
)


@pytest.fixture
def trained(client, annotation_event, seeded_project, store, config):
    seeded = seeded_project(n=40)
    for i in range(20):
        client.post("/webhook", json=annotation_event(i + 1, seeded["ids"][i], seeded["y"][i]))
    train_project(store, config, 1)
    return seeded


def state(store) -> dict:
    return {p: (store.labels(p), store.generation(p), store.current_version(p), store.project(p))
            for p in store.projects()}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(req=requests_)
def test_fuzzed_requests_never_get_a_5xx_and_rejected_ones_change_nothing(client, store, trained, req):
    path, data = req
    before = state(store)
    resp = client.post(path, data=data, content_type="application/json")
    assert resp.status_code < 500, (path, data[:300], resp.get_data(as_text=True)[:300])
    body = resp.get_json(silent=True)
    assert isinstance(body, dict), (path, resp.get_data(as_text=True)[:200])
    if resp.status_code >= 400:
        assert body.get("error"), body
        assert state(store) == before, (path, data[:300])
    if path == "/predict" and resp.status_code == 200:
        sent = json.loads(data)["tasks"]
        assert len(body["results"]) == len(sent)  # one answer per task, whatever the tasks looked like
