"""A project that outgrew its encoder: the regrow job retrains it, switches only if not worse, head follows."""

from __future__ import annotations

import dataclasses
import threading

import numpy as np
import pytest
from rq import Queue

from backend import bulk, regrow
from backend.config import Config
from backend.encoding import encode_missing
from backend.graphlane import spread_project, update_graph
from backend.heads import SnapshotSpreadingHead
from backend.predict import HeadCache
from backend.queueing import enqueue_regrow
from backend.store import Store, keys
from tests.encoder import conftest as encoder_fixtures
from tests.encoder.conftest import png_bytes
from tests.fake_label_studio import FakeLabelStudio

digit_pngs = encoder_fixtures.digit_pngs
fake_ls = encoder_fixtures.fake_ls
mnist_small = encoder_fixtures.mnist_small

PID = 31


def add_tasks(ls: FakeLabelStudio, images: np.ndarray, ids: range) -> list[dict]:
    tasks = []
    for i in ids:
        path = f"/data/upload/{PID}/digit{i}.png"
        ls.uploads[path] = png_bytes(images[i])
        tasks.append({"id": i, "data": {"image": path}})
    ls.tasks.setdefault(PID, []).extend(tasks)
    return tasks


@pytest.fixture
def grown(fake_ls: FakeLabelStudio, mnist_small, config: Config, store: Store) -> tuple[Config, str]:
    """A project bulk-encoded at 20 tasks that then doubled to 40 (new tasks encoded as the webhook job does)."""
    cfg = dataclasses.replace(config, label_studio_url=fake_ls.url, label_studio_api_key=fake_ls.pat,
                              encoder_steps=4, encoder_min_steps=0, encoder_max_seconds=0)
    add_tasks(fake_ls, mnist_small[0], range(1, 21))
    bulk.encode_project(bulk.EncodeOptions(project=PID, progress=False), config=cfg, store=store)
    old = store.current_encoder(PID)
    assert old is not None and old.meta["samples"] == old.meta["project_tasks"] == 20
    new_tasks = add_tasks(fake_ls, mnist_small[0], range(21, 31))
    encode_missing(store, cfg, PID, new_tasks)
    assert not regrow.regrow_due(store, cfg, PID)  # 30 encoded < 2 x 20
    encode_missing(store, cfg, PID, add_tasks(fake_ls, mnist_small[0], range(31, 41)))
    return cfg, old.version


def test_a_doubled_project_regrows_its_encoder_and_the_head_follows(grown, store: Store) -> None:
    cfg, old = grown
    assert regrow.regrow_due(store, cfg, PID)
    assert not regrow.regrow_due(store, dataclasses.replace(cfg, encoder_regrow=0), PID)
    queue = Queue(cfg.queue_name, connection=store.r)
    assert enqueue_regrow(store, queue, PID, cfg)
    assert not enqueue_regrow(store, queue, PID, cfg)  # one regrow per encoder version
    store.clear_train_pending(PID)  # the head training bulk encoding queued has run
    result = regrow.regrow_encoder(store, cfg, PID)
    assert result.status == "switched" and result.old_version == old and result.trained_on == 40
    new = store.current_encoder(PID)
    assert new is not None and new.version == result.new_version != old and new.meta["project_tasks"] == 40
    assert store.encoded_task_ids(PID, new.version) == set(range(1, 41))
    assert result.head_training_queued and bulk.head_is_stale(store, PID, new.version)  # no labels: no head yet
    assert not regrow.regrow_due(store, cfg, PID)  # the new encoder saw all 40


def test_the_switch_serves_a_graph_based_head_of_the_new_encoder_at_once(grown, store: Store, mnist_small,
                                                                         monkeypatch) -> None:
    cfg, old = grown
    digits = mnist_small[1]
    for t in range(1, 41):
        store.record_annotation(PID, 500 + t, t, str(int(digits[t])))
    update_graph(store, cfg, PID)  # the old encoder's graph lane has run: its graph-based head is served
    before = spread_project(store, cfg, PID)
    assert before.published["status"] == "published" and store.versions(PID)[0]["encoder_version"] == old
    monkeypatch.setattr(regrow, "compare_encoders", lambda *a: (0.5, 0.6, 40))
    result = regrow.regrow_encoder(store, cfg, PID)
    new = store.current_encoder(PID)
    assert result.status == "switched" and new is not None and new.version == result.new_version != old
    assert store.graph_meta(PID, new.version) is not None  # built before the switch, not queued after it
    assert store.read_graph(PID, new.version).ids.tolist() == list(range(1, 41)) and result.graph == "built"
    # the head served right after the switch is the graph-based one, naming a snapshot of the new encoder
    served = store.current_version(PID)
    assert served == result.head_version and not result.head_training_queued
    head, meta = HeadCache().get(store, PID, served)
    assert isinstance(head, SnapshotSpreadingHead) and meta["encoder_version"] == new.version
    assert head.snapshot == meta["snapshot"] == result.snapshot > before.snapshot
    assert store.snapshots(PID)[result.snapshot]["encoder_version"] == new.version
    assert list(store.snapshots(PID)) == [result.snapshot]  # the old encoder's snapshot went once unnamed
    assert not result.spread_queued  # no label arrived during the job: the snapshot is current


def test_a_worse_candidate_is_dropped_and_the_project_keeps_its_encoder(grown, store: Store, monkeypatch) -> None:
    cfg, old = grown
    monkeypatch.setattr(regrow, "compare_encoders", lambda *a: (0.9, 0.6, 30))
    result = regrow.regrow_encoder(store, cfg, PID)
    assert result.status == "kept" and not result.head_training_queued
    assert store.current_encoder(PID).version == old
    assert store.encoder_versions(PID) == [old]  # the candidate and its embeddings are gone


def test_held_out_accuracy_tells_separable_vectors_from_noise() -> None:
    rng = np.random.default_rng(0)
    labels = [str(i % 3) for i in range(60)]
    centers = rng.normal(0, 5, (3, 8))
    good = np.stack([centers[int(lab)] for lab in labels]) + rng.normal(0, 0.5, (60, 8))
    noise = rng.normal(0, 1, (60, 8))
    assert regrow.held_out_accuracy(good, labels) > 0.9 > regrow.held_out_accuracy(noise, labels)
    assert regrow.held_out_accuracy(good[:3], labels[:3]) is None  # one label per class: no held-out fold


def test_the_due_check_reads_a_kept_count_whatever_the_project_size(store: Store, config: Config,
                                                                    monkeypatch) -> None:
    cfg = dataclasses.replace(config, encoder_regrow=2.0)
    store.put_encoder(PID, "enc-a", b"", {"dim": 4, "project_tasks": 50})  # due at 100 encoded tasks
    vec = np.ones(4, np.float32)

    def put(ids) -> None:
        store.put_embeddings(PID, "enc-a", {t: vec * t for t in ids})

    def forbidden(*args, **kwargs):
        raise AssertionError("the due check read every embedding of the project")

    for name in ("encoded_task_ids", "all_embeddings"):
        monkeypatch.setattr(store, name, forbidden)
    commands: list[int] = []

    def due() -> bool:
        start = int(store.r.info("stats")["total_commands_processed"])
        out = regrow.regrow_due(store, cfg, PID)
        commands.append(int(store.r.info("stats")["total_commands_processed"]) - start)
        return out

    put(range(1, 11))
    due()  # loads the scripts once
    assert not due()
    put(range(11, 61))
    put(range(1, 31))  # tasks encoded again (a retried job, /predict beside a job) count once
    assert not due() and store.encoded_count(PID, "enc-a", 4) == 60
    jobs = [threading.Thread(target=put, args=(range(a, a + 40),)) for a in (61, 71, 81)]  # overlapping jobs
    for job in jobs:
        job.start()
    for job in jobs:
        job.join()
    assert store.encoded_count(PID, "enc-a", 4) == 120
    assert due()
    store.forget_tasks(PID, range(100, 131))  # deleted tasks leave the count (121-130 were never encoded)
    assert store.encoded_count(PID, "enc-a", 4) == 99 and not due()
    assert len(set(commands[1:])) == 1 and commands[-1] <= 5  # the same few commands for 10 tasks or 120
    # an encoder stored before counts were kept: counted once, then the count is kept and followed
    store.r.delete(keys.embedding_count(PID, "enc-a"))
    assert not due() and store.r.get(keys.embedding_count(PID, "enc-a")) == b"99"
    put([200])
    assert due() and store.encoded_count(PID, "enc-a", 4) == 100
    store.drop_encoder(PID, "enc-a")
    assert store.r.get(keys.embedding_count(PID, "enc-a")) is None
