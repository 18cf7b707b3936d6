"""The Redis store against a real redis-server."""

import numpy as np
import pytest

from backend.store import BUCKET, Store


def test_embeddings_round_trip_in_order_with_misses(store: Store):
    store.put_encoder(1, "e1", b"w", {"dim": 4})
    vecs = {t: np.arange(4, dtype=np.float32) + t for t in (0, 5, BUCKET - 1, BUCKET, 3 * BUCKET + 7)}
    assert store.put_embeddings(1, "e1", vecs) == 5
    ask = [3 * BUCKET + 7, 5, 999_999, 0, BUCKET - 1, BUCKET, 6]
    X, found = store.get_embeddings(1, "e1", ask)
    assert found.tolist() == [True, True, False, True, True, True, False]
    for pos, t in enumerate(ask):
        if found[pos]:
            np.testing.assert_allclose(X[pos], vecs[t], rtol=1e-3)
        else:
            assert not X[pos].any()


def test_whole_bucket_reads_match_range_reads(store: Store):
    store.put_encoder(1, "e1", b"w", {"dim": 3})
    vecs = {t: np.full(3, t, np.float32) for t in range(1, 60)}
    store.put_embeddings(1, "e1", vecs)
    many, ok_many = store.get_embeddings(1, "e1", list(range(1, 60)))  # whole-bucket path
    few, ok_few = store.get_embeddings(1, "e1", [3, 4])  # range path
    assert ok_many.all() and ok_few.all()
    np.testing.assert_array_equal(many[2:4], few)


def test_embeddings_are_tagged_by_encoder_version(store: Store):
    store.put_encoder(1, "old", b"", {"dim": 2})
    store.put_embeddings(1, "old", {1: np.ones(2)})
    store.put_encoder(1, "new", b"", {"dim": 2})
    _, found = store.get_embeddings(1, "new", [1])
    assert not found[0]
    assert store.current_encoder(1).version == "new"
    assert store.encoded_task_ids(1, "old") == {1}
    store.drop_encoder(1, "old")
    assert store.encoded_task_ids(1, "old") == set()


def test_wrong_dimension_is_refused(store: Store):
    store.put_encoder(1, "e", b"", {"dim": 2})
    with pytest.raises(ValueError, match="dim is 2"):
        store.put_embeddings(1, "e", {1: np.ones(3)})


def test_all_embeddings_returns_every_task(store: Store):
    store.put_encoder(2, "e", b"", {"dim": 2})
    ids = [1, 2, 300, 70_000]
    store.put_embeddings(2, "e", {t: np.array([t / 1000, -t / 1000], np.float32) for t in ids})
    got_ids, X = store.all_embeddings(2, "e")
    assert sorted(got_ids.tolist()) == ids
    for t, row in zip(got_ids, X, strict=True):
        np.testing.assert_allclose(row, [t / 1000, -t / 1000], rtol=1e-3)


def test_annotation_lifecycle_and_generation(store: Store):
    g0 = store.generation(1)
    assert store.record_annotation(1, 10, 100, "cat")
    assert store.labels(1) == {100: "cat"}
    assert not store.record_annotation(1, 10, 100, "cat")  # same label again: no change
    assert store.record_annotation(1, 10, 100, "dog")  # updated annotation
    assert store.record_annotation(1, 11, 100, "cat")  # a second annotator: latest wins
    assert store.labels(1) == {100: "cat"}
    assert store.delete_annotations(1, [11]) == 1  # falls back to the remaining annotation
    assert store.labels(1) == {100: "dog"}
    assert store.record_annotation(1, 10, 100, None)  # cancelled: no label
    assert store.labels(1) == {}
    assert store.delete_annotations(1, [12345]) == 0
    assert store.generation(1) > g0


def test_publish_is_monotonic_and_refuses_older_generations(store: Store):
    v1 = store.publish_head(1, b"a", {"labels": 1}, generation=5)
    assert v1 == "v1" and store.current_version(1) == "v1"
    assert store.publish_head(1, b"b", {}, generation=4) is None  # older run finishing late
    assert store.publish_head(1, b"b", {}, generation=5) is None
    v2 = store.publish_head(1, b"c", {}, generation=6)
    assert v2 == "v2" and store.head(1, "v2").blob == b"c"
    assert [m["version"] for m in store.versions(1)] == ["v2", "v1"]
    store.set_current_version(1, "v1")
    assert store.current_version(1) == "v1"
    with pytest.raises(KeyError):
        store.set_current_version(1, "v99")


def test_history_is_capped(redis_client):
    store = Store(redis_client, keep_versions=3)
    for g in range(1, 6):
        store.publish_head(1, b"x%d" % g, {}, generation=g)
    assert [m["version"] for m in store.versions(1)] == ["v5", "v4", "v3"]
    assert store.head(1, "v1") is None


def test_train_pending_flag_coalesces(store: Store):
    assert store.mark_train_pending(1, ttl=60)
    assert not store.mark_train_pending(1, ttl=60)
    store.clear_train_pending(1)
    assert store.mark_train_pending(1, ttl=60)


def test_projects_are_namespaced(store: Store):
    store.record_annotation(1, 1, 1, "a")
    store.record_annotation(2, 1, 1, "b")
    assert store.labels(1) == {1: "a"} and store.labels(2) == {1: "b"}
    store.save_project(3, title="t")
    assert 3 in store.projects()


def test_project_settings_keep_their_types(store: Store):
    store.save_project(5, access_token="1e5", min_annotations=3, classes=["a", "b"], title="42")
    assert store.project(5) == {"access_token": "1e5", "min_annotations": 3, "classes": ["a", "b"], "title": "42"}


def test_a_new_encoder_or_head_kind_publishes_on_the_same_labels(store: Store):
    store.put_encoder(1, "old", b"", {"dim": 2})
    assert store.publish_head(1, b"a", {"encoder_version": "old", "head": "linear"}, generation=3) == "v1"
    assert store.publish_head(1, b"a", {"encoder_version": "old", "head": "linear"}, generation=3) is None
    assert store.publish_head(1, b"b", {"encoder_version": "old", "head": "spread"}, generation=3) == "v2"
    store.put_encoder(1, "new", b"", {"dim": 2})  # bulk encoding retrained the encoder
    assert store.publish_head(1, b"c", {"encoder_version": "old", "head": "spread"}, generation=9) is None
    assert store.publish_head(1, b"d", {"encoder_version": "new", "head": "spread"}, generation=3) == "v3"
    assert store.publish_head(1, b"e", {"encoder_version": "new", "head": "spread"}, generation=2) is None


def test_label_and_outcome_survive_a_flushed_script_cache(store: Store):
    assert store.record_annotation_and_outcome(1, 1, 1, "a") == (True, None)
    store.r.script_flush()  # as after a Redis restart
    store.record_served(1, {2: {"version": "v1", "label": "b", "score": 0.9}})
    assert store.record_annotation_and_outcome(1, 2, 2, "b", 3.0) == (True, "accepted")
    assert store.labels(1) == {1: "a", 2: "b"}
