"""A project that outgrew its encoder: the regrow job retrains it, switches only if not worse, head follows."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from rq import Queue

from backend import bulk, regrow
from backend.config import Config
from backend.encoding import encode_missing
from backend.queueing import enqueue_regrow
from backend.store import Store
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
    assert result.head_training_queued and bulk.head_is_stale(store, PID, new.version)
    assert not regrow.regrow_due(store, cfg, PID)  # the new encoder saw all 40


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
