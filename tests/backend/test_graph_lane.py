"""The two lanes on a real Redis: the stored graph, snapshots, the fast lane's publish without the project's
embeddings, the graph lane's coherent publish, /predict reading snapshot rows, forgetting and purging."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from backend.graphlane import spread_project, update_graph
from backend.heads import SnapshotSpreadingHead
from backend.predict import HeadCache, head_bytes, predict_tasks
from backend.projects import Projects
from backend.store import keys
from backend.training import train_project
from tests.conftest import run_jobs


@pytest.fixture
def lanes(config):
    return replace(config, head="spreading")


def _label(store, seeded, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        store.record_annotation(seeded["pid"], 1000 + i, seeded["ids"][i], seeded["y"][i])


def test_graph_is_built_then_grows_and_round_trips(store, seeded_project, lanes) -> None:
    seeded = seeded_project(n=300)
    pid, enc = seeded["pid"], seeded["encoder_version"]
    assert update_graph(store, lanes, pid).status == "built"
    rows = store.read_graph(pid, enc)
    assert sorted(rows.ids.tolist()) == sorted(seeded["ids"]) and (rows.nbr >= 0).all()
    assert update_graph(store, lanes, pid).status == "unchanged"
    rng = np.random.default_rng(3)
    new = {10_000 + i: seeded["X"][i] + rng.normal(scale=0.01, size=seeded["X"].shape[1]) for i in range(20)}
    store.put_embeddings(pid, enc, new)
    res = update_graph(store, lanes, pid)
    assert (res.status, res.added) == ("added", 20) and res.changed > 0
    grown = store.read_graph(pid, enc)
    assert set(grown.ids.tolist()) == set(seeded["ids"]) | set(new)
    # task 10_000 is a near copy of task ids[0]: each is among the other's neighbours now
    at = {int(t): r for t, r in zip(grown.ids, grown.nbr, strict=True)}
    assert seeded["ids"][0] in at[10_000] and 10_000 in at[seeded["ids"][0]]


def test_fast_lane_publishes_from_labels_alone(store, seeded_project, lanes, monkeypatch) -> None:
    seeded = seeded_project(n=200)
    pid = seeded["pid"]
    update_graph(store, lanes, pid)
    _label(store, seeded, 12)

    def forbidden(*args, **kwargs):
        raise AssertionError("the training path read every embedding of the project")

    for name in ("all_embeddings", "read_graph", "all_snapshot_rows", "encoded_task_ids"):
        monkeypatch.setattr(store, name, forbidden)
    res = train_project(store, lanes, pid)
    assert res.status == "published" and res.spread_behind and res.snapshot == 0
    monkeypatch.undo()
    lane = spread_project(store, lanes, pid)
    assert lane.status == "spread" and lane.published["status"] == "published"
    for name in ("all_embeddings", "read_graph", "all_snapshot_rows", "encoded_task_ids"):
        monkeypatch.setattr(store, name, forbidden)
    _label(store, seeded, 3, start=12)
    res = train_project(store, lanes, pid)
    assert res.status == "published" and res.snapshot == lane.snapshot  # names the snapshot, holds no rows
    head, meta = HeadCache().get(store, pid, res.version)
    assert isinstance(head, SnapshotSpreadingHead) and meta["snapshot"] == lane.snapshot
    assert len(store.head(pid, res.version).blob) < 8_000  # a version does not grow with the project


def test_graph_lane_publishes_coherently(store, seeded_project, lanes) -> None:
    seeded = seeded_project(n=200)
    pid = seeded["pid"]
    update_graph(store, lanes, pid)
    _label(store, seeded, 10)
    fast = train_project(store, lanes, pid)
    lane = spread_project(store, lanes, pid)
    # same labels, newer snapshot: the graph lane's head replaces the fast lane's
    assert lane.published["status"] == "published"
    current = store.versions(pid)[0]
    assert current["version"] == store.current_version(pid) != fast.version
    assert current["snapshot"] == lane.snapshot and current["generation"] == fast.generation
    # once more with no new label: nothing newer, so nothing is published (stale)
    again = train_project(store, lanes, pid)
    assert again.status == "stale"
    # a snapshot computed from older labels never replaces a head trained on newer ones
    _label(store, seeded, 5, start=10)
    newer = train_project(store, lanes, pid)
    snap_meta = store.latest_snapshot(pid)
    assert snap_meta["generation"] < newer.generation and newer.spread_behind
    assert store.publish_head(pid, b"x", {"encoder_version": seeded["encoder_version"], "head": "spread_snapshot",
                                          "snapshot": 99}, snap_meta["generation"]) is None
    assert store.current_version(pid) == newer.version
    # once the served head names a new snapshot, the older ones go: one copy of the per-task rows at rest
    for _ in range(3):
        spread_project(store, lanes, pid)
    assert list(store.snapshots(pid)) == [store.versions(pid)[0]["snapshot"]]


def test_predict_reads_the_snapshot_rows(store, seeded_project, lanes) -> None:
    seeded = seeded_project(n=120)
    pid = seeded["pid"]
    update_graph(store, lanes, pid)
    _label(store, seeded, 9)
    lane = spread_project(store, lanes, pid)
    version = lane.published["version"]
    cfg = Projects(store).config(pid)
    tasks = [{"id": t, "data": {}} for t in seeded["ids"][9:]]
    cache = HeadCache()
    _, results = predict_tasks(store, cache, pid, cfg, tasks)
    assert {r["model_version"] for r in results} == {version}
    got = [r["result"][0]["value"]["choices"][0] for r in results]
    assert np.mean(np.array(got) == np.array(seeded["y"][9:])) > 0.95
    # overwrite the snapshot's rows: every task "certainly" the class the regression least likes
    head, _ = cache.get(store, pid, version)
    X, _ = store.get_embeddings(pid, seeded["encoder_version"], seeded["ids"][9:])
    worst = np.asarray(head.predict_proba(X)).argmin(axis=1)
    meta = store.latest_snapshot(pid)
    rows = np.zeros((len(worst), len(meta["classes"])), np.float32)
    rows[np.arange(len(worst)), [meta["classes"].index(head.classes[w]) for w in worst]] = 1.0
    store.put_snapshot(pid, np.array(seeded["ids"][9:]), rows, meta)  # a new id: re-point the head at it
    fresh = store.latest_snapshot(pid)["snapshot"]
    store.r.hset(keys.heads(pid), version, store.r.hget(keys.heads(pid), version))  # version unchanged
    head.arrays["snapshot"] = np.array(fresh, np.int64)
    _, results = predict_tasks(store, cache, pid, cfg, tasks)
    flipped = [r["result"][0]["value"]["choices"][0] for r in results]
    assert np.mean(np.array(flipped) != np.array(got)) > 0.5  # the rows came from Redis, not the head
    # the cached head costs kilobytes, not O(tasks)
    assert head_bytes((head, {})) < 8_000


def test_forget_tasks_drops_graph_and_snapshot_rows(store, seeded_project, lanes) -> None:
    seeded = seeded_project(n=100)
    pid, enc = seeded["pid"], seeded["encoder_version"]
    update_graph(store, lanes, pid)
    _label(store, seeded, 6)
    snap = spread_project(store, lanes, pid).snapshot
    gone = seeded["ids"][:5]
    store.forget_tasks(pid, gone)
    assert not set(gone) & set(store.read_graph(pid, enc).ids.tolist())
    _, found = store.snapshot_rows(pid, snap, gone, 3)
    assert not found.any()
    _, found = store.snapshot_rows(pid, snap, seeded["ids"][5:10], 3)
    assert found.all()
    # propagation still runs (deleted neighbours drop out) and covers the remaining tasks only
    lane = spread_project(store, lanes, pid)
    assert lane.status == "spread" and lane.tasks == 95
    assert store.purge_project(pid) > 0
    assert store.project_keys(pid) == []


def test_encoding_and_training_jobs_queue_the_graph_lane(store, seeded_project, lanes, monkeypatch) -> None:
    from backend import jobs, queueing

    seeded = seeded_project(n=150)
    pid = seeded["pid"]
    monkeypatch.setattr(jobs, "_context", lambda: (store, lanes))
    assert queueing.enqueue_graph_update(store, lanes, pid)
    assert not queueing.enqueue_graph_update(store, lanes, pid)  # coalesced
    run_jobs(store, lanes.graph_queue)
    assert store.graph_meta(pid, seeded["encoder_version"]) is not None
    _label(store, seeded, 8)
    out = jobs.train_project_job(pid)
    assert out["status"] == "published" and out["spread_queued"]
    run_jobs(store, lanes.graph_queue)
    assert store.versions(pid)[0]["snapshot"] == store.latest_snapshot(pid)["snapshot"]
