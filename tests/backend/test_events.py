"""Webhook payloads -> typed events: each action, the bulk list form, and every bad shape refused."""

from __future__ import annotations

import copy

import pytest

from backend.events import (
    AnnotationsDeleted,
    AnnotationsSaved,
    BadEvent,
    OtherEvent,
    StartTraining,
    TasksCreated,
    parse_event,
    project_id,
)
from backend.labelconfig import cached_config
from tests.conftest import CONFIG_XML, load_fixture

CFG = cached_config(CONFIG_XML)


def body(name: str) -> dict:
    return copy.deepcopy(load_fixture(name)["body"])


class Lookups:
    """A saved-config lookup that records which projects it was asked about."""

    def __init__(self, config=CFG):
        self.config, self.asked = config, []

    def __call__(self, pid: int):
        self.asked.append(pid)
        return self.config


@pytest.mark.parametrize(
    ("value", "expected"),
    [(1, 1), ("7", 7), ("12.1795682067", 12), ({"id": 3, "title": "x"}, 3)],
)
def test_project_id_accepts_label_studio_forms(value, expected):
    assert project_id(value) == expected


@pytest.mark.parametrize("value", [None, "", "abc", "-1", 0, True, 1.5, {"title": "x"}, [1]])
def test_project_id_rejects_garbage(value):
    with pytest.raises(ValueError):
        project_id(value)


def test_annotation_created_is_parsed_with_the_payloads_config_and_its_project_info():
    lookup = Lookups()
    event = parse_event(body("webhook_annotation_created"), lookup)
    assert isinstance(event, AnnotationsSaved) and event.action == "ANNOTATION_CREATED"
    assert lookup.asked == []  # the payload carries the config: no lookup
    assert event.config == CFG
    (ann,) = event.annotations
    assert (ann.id, ann.task_id, ann.label, ann.cancelled, ann.lead_time) == (1, 1, "one", False, 2.5)
    p = event.project
    assert (p.id, p.min_annotations, p.title, p.described) == (1, 0, "Echo image classification", True)
    assert p.label_config == CONFIG_XML
    assert p.counters == {"total_annotations_number": 1, "skipped_annotations_number": 0,
                          "num_tasks_with_annotations": 1, "task_number": 7}


def test_annotation_updated_and_the_saved_config_when_the_payload_has_none():
    payload = body("webhook_annotation_updated")
    del payload["project"]["label_config"]
    lookup = Lookups()
    event = parse_event(payload, lookup)
    assert isinstance(event, AnnotationsSaved) and event.action == "ANNOTATION_UPDATED"
    assert lookup.asked == [1] and event.config == CFG
    assert parse_event(payload, Lookups(None)).annotations[0].label is None  # no config: nothing resolved


def test_bulk_annotations_created_carries_a_list_under_annotation():
    event = parse_event(body("webhook_annotations_created"), Lookups())
    assert isinstance(event, AnnotationsSaved) and event.action == "ANNOTATIONS_CREATED"
    assert [(a.id, a.task_id, a.label, a.lead_time) for a in event.annotations] == [(11, 1, "one", None),
                                                                                     (12, 2, "two", None)]
    assert event.project.counters["total_annotations_number"] == 2


def test_bulk_list_is_also_accepted_under_annotations():
    payload = body("webhook_annotations_created")
    payload["annotations"] = payload.pop("annotation")
    event = parse_event(payload, Lookups())
    assert [a.id for a in event.annotations] == [11, 12]


def test_cancelled_empty_and_odd_lead_times():
    payload = body("webhook_annotations_created")
    first, second = payload["annotation"]
    first.update(was_cancelled=True, lead_time=-1)
    second.update(result=[], lead_time=float("inf"))
    a, b = parse_event(payload, Lookups()).annotations
    assert (a.label, a.cancelled, a.lead_time) == (None, True, None)
    assert (b.label, b.cancelled, b.lead_time) == (None, False, None)


def test_the_other_actions():
    deleted = parse_event(body("webhook_annotation_deleted"), Lookups())
    assert isinstance(deleted, AnnotationsDeleted) and deleted.annotation_ids == (1,)
    start = parse_event(body("webhook_start_training"), Lookups())
    assert isinstance(start, StartTraining) and start.config == CFG
    tasks = parse_event(body("webhook_tasks_created"), Lookups())
    assert isinstance(tasks, TasksCreated) and tasks.tasks and all(set(t) == {"id", "data"} for t in tasks.tasks)
    other = parse_event(body("webhook_project_updated"), Lookups())
    assert isinstance(other, OtherEvent) and other.action == "PROJECT_UPDATED"
    bare = parse_event({"action": "SOMETHING_NEW", "project": 5})
    assert isinstance(bare, OtherEvent) and bare.project.id == 5 and not bare.project.described
    assert bare.config is None


def _choice(label: object) -> list:
    return [{"from_name": "label", "to_name": "image", "type": "choices", "value": {"choices": [label]}}]


def _bulk(change) -> dict:
    payload = body("webhook_annotations_created")
    change(payload)
    return payload


BAD = [
    ("not an object", [1, 2], "JSON object"),
    ("no action", {"project": {"id": 1}}, "action"),
    ("no project", {"action": "ANNOTATION_CREATED"}, "project"),
    ("annotation missing", {"action": "ANNOTATION_CREATED", "project": {"id": 1}}, "annotation"),
    ("single event with a list", {"action": "ANNOTATION_CREATED", "project": {"id": 1}, "annotation": []},
     "annotation"),
    ("bulk without annotations", {"action": "ANNOTATIONS_CREATED", "project": {"id": 1}}, "annotation"),
    ("bulk item not an object", _bulk(lambda p: p["annotation"].append("x")), "annotation objects"),
    ("bulk item without a task", _bulk(lambda p: p["annotation"][1].pop("task")), "annotation.task"),
    ("bulk item id a string", _bulk(lambda p: p["annotation"][0].update(id="11")), "annotation.id"),
    ("bulk item result a dict", _bulk(lambda p: p["annotation"][1].update(result={"choices": ["one"]})), "result"),
    ("bulk item label outside the config", _bulk(lambda p: p["annotation"][1].update(result=_choice("seven"))),
     "classes"),
    ("deleted without a list", {"action": "ANNOTATIONS_DELETED", "project": {"id": 1}, "annotations": {"id": 1}},
     "annotations"),
    ("deleted ids strings", {"action": "ANNOTATIONS_DELETED", "project": {"id": 1}, "annotations": [{"id": "1"}]},
     "integer"),
    ("tasks not a list", {"action": "TASKS_CREATED", "project": {"id": 1}, "tasks": {}}, "tasks"),
]


@pytest.mark.parametrize(("payload", "fragment"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_shapes_are_refused(payload, fragment):
    with pytest.raises(BadEvent, match=fragment):
        parse_event(payload, Lookups())


def test_a_label_outside_the_saved_config_is_refused_too():
    payload = body("webhook_annotation_created")
    del payload["project"]["label_config"]
    payload["annotation"]["result"] = _choice("seven")
    with pytest.raises(BadEvent, match="not one of the project's classes: zero, one, two"):
        parse_event(payload, Lookups())
    payload["annotation"]["was_cancelled"] = True  # a cancelled annotation's choice does not count
    assert parse_event(payload, Lookups()).annotations[0].label is None


def redis_state(redis_client) -> dict:
    return {k: redis_client.dump(k) for k in sorted(redis_client.keys("*"))}


@pytest.mark.parametrize(("payload", "fragment"), [b[1:] for b in BAD[1:]], ids=[b[0] for b in BAD[1:]])
def test_rejected_webhooks_answer_400_and_change_nothing(client, redis_client, annotation_event, seeded_project,
                                                         payload, fragment):
    seeded_project()
    assert client.post("/webhook", json=annotation_event(1, 1, "one")).status_code == 200
    before = redis_state(redis_client)
    resp = client.post("/webhook", json=payload)
    assert resp.status_code == 400 and fragment in resp.json["error"], resp.json
    assert redis_state(redis_client) == before
