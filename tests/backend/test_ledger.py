"""Applying events: what lands in Redis, and in how many round trips (counted on the connection)."""

from __future__ import annotations

import copy

import pytest
import redis

from backend.app import create_app
from backend.ledger import counters_disagree
from backend.store import Store
from tests.conftest import load_fixture


class CountingConnection(redis.Connection):
    """Counts round trips: every single command and every pipeline is sent with one send_packed_command."""

    trips = 0

    def send_packed_command(self, command, check_health=True):
        CountingConnection.trips += 1
        return super().send_packed_command(command, check_health)


@pytest.fixture
def counted(redis_client, redis_server, config):
    """A client on a store whose connection counts round trips; ``trips(body)`` posts and counts."""
    pool = redis.ConnectionPool.from_url(redis_server, connection_class=CountingConnection, health_check_interval=0)
    store = Store(redis.Redis(connection_pool=pool))
    client = create_app(config, store=store).test_client()

    def trips(body: dict) -> tuple[int, dict]:
        CountingConnection.trips = 0
        resp = client.post("/webhook", json=body)
        assert resp.status_code == 200, resp.json
        return CountingConnection.trips, resp.json

    yield store, trips
    pool.disconnect()


def with_total(body: dict, total: int) -> dict:
    body["project"]["total_annotations_number"] = total
    return body


def test_one_annotation_costs_one_round_trip_plus_the_training_flag(counted, annotation_event, seeded_project):
    store, trips = counted
    seeded_project()
    trips(with_total(annotation_event(1, 1, "one"), 1))  # first webhook: settings saved, scripts loaded
    store.record_served(1, {2: {"version": "v1", "label": "one", "score": 0.9}})
    # A new label while a run is queued: the batch (label, outcome, ids seen) + the flag's SET NX.
    n, reply = trips(with_total(annotation_event(2, 2, "one"), 2))
    assert n == 2 and reply["labels_changed"] == 1 and not reply["training_queued"]
    assert reply["detail"] == {"task": 2, "label": "one", "prediction": "accepted", "reconcile": "in_sync"}
    # The same label again (a retried webhook): the batch alone.
    n, reply = trips(with_total(annotation_event(2, 2, "one"), 2))
    assert n == 1 and reply["labels_changed"] == 0
    # No minimum in the payload: the saved minimum is read in the same batch (after the first such payload,
    # whose other set of settings is saved once).
    for label in ("two", "zero"):
        body = with_total(annotation_event(2, 2, label), 2)
        del body["project"]["min_annotations_to_start_training"]
        n, reply = trips(body)
    assert n == 2 and reply["labels_changed"] == 1
    assert store.labels(1) == {1: "one", 2: "zero"}


def test_a_deletion_costs_one_round_trip_plus_the_training_flag(counted, annotation_event, seeded_project, ls_payload):
    store, trips = counted
    seeded_project()
    trips(with_total(annotation_event(1, 1, "one"), 1))
    deleted = with_total(ls_payload("webhook_annotation_deleted"), 0)
    n, reply = trips(deleted)
    assert reply["labels_changed"] == 1 and store.labels(1) == {}
    assert n <= 3  # the first deletion loads its script: one more round trip
    trips(with_total(annotation_event(2, 2, "one"), 1))
    deleted["annotations"] = [{"id": 2}]
    n, reply = trips(deleted)
    assert n == 2 and reply["labels_changed"] == 1 and reply["detail"]["reconcile"] == "in_sync"
    assert store.seen_annotations(1) == (set(), set())


def test_bulk_created_annotations_are_recorded_in_one_batch(counted, seeded_project):
    store, trips = counted
    seeded_project()
    body = copy.deepcopy(load_fixture("webhook_annotations_created")["body"])
    n, reply = trips(body)
    assert reply["labels_changed"] == 2 and reply["training_queued"]
    assert reply["detail"] == {"annotations": 2, "reconcile": "in_sync", "bulk_accepted": 2}
    assert store.labels(1) == {1: "one", 2: "two"}
    assert store.bulk_tasks(1) == {1, 2}  # made from predictions (parent_prediction): not human evidence
    assert store.seen_annotations(1) == ({11, 12}, set())
    body["annotation"][1]["was_cancelled"] = True  # an update of the same ids, now one cancelled
    body["project"].update(total_annotations_number=1, skipped_annotations_number=1)
    n, reply = trips(body)
    assert n == 2 and reply["labels_changed"] == 1  # the batch + the (already set) training flag
    assert store.labels(1) == {1: "one"} and store.seen_annotations(1) == ({11}, {12})


def test_a_lost_webhook_is_noticed_from_the_counters(counted, annotation_event, seeded_project):
    store, trips = counted
    seeded_project()
    _, reply = trips(with_total(annotation_event(1, 1, "one"), 3))  # Label Studio has 3, we saw 1
    assert reply["detail"]["reconcile"] == "no_access"  # asked for a resync; no Label Studio URL/key here
    assert store.ls_counters(1)["total_annotations_number"] == 3


def test_unserved_projects_are_acknowledged_without_labels(counted, annotation_event):
    store, trips = counted
    body = annotation_event(1, 1, "one", pid=9)
    body["project"]["label_config"] = '<View><Image name="i" value="$i"/></View>'  # nothing DALT can serve
    _, reply = trips(body)
    assert reply["status"] == "ignored" and "no supported label config" in reply["detail"]["reason"]
    assert store.labels(9) == {} and store.seen_annotations(9) == (set(), set())


@pytest.mark.parametrize(
    ("counters", "live", "skipped", "differ"),
    [({}, 3, 0, False), ({"total_annotations_number": 3}, 3, 9, False),
     ({"total_annotations_number": 3}, 2, 0, True),
     ({"total_annotations_number": 3, "skipped_annotations_number": 1}, 3, 0, True)],
)
def test_counters_disagree(counters, live, skipped, differ):
    assert counters_disagree(counters, live, skipped) is differ
