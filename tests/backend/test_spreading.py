"""The rebuild-per-fit label-spreading head (``spreading-rebuild``, the scale benchmark's baseline): beats plain
LR with few labels, round-trips without pickle, serves unseen tasks."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import make_moons

from backend.config import Config
from backend.heads import HEADS, fit_head, load_head
from backend.heads.spreading import SpreadingHead
from backend.predict import HeadCache, predict_tasks
from backend.projects import Projects
from backend.training import train_project


@pytest.fixture(scope="module")
def moons() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Two interleaved half moons (not linearly separable), 3 labels per class, ids 100.."""
    X, y = make_moons(n_samples=600, noise=0.06, random_state=0)
    X = np.hstack([X, np.zeros((len(X), 2))]).astype(np.float32)  # 4-dim "embeddings"
    labels = np.array(["a", "b"])[y]
    rng = np.random.default_rng(0)
    few = np.concatenate([rng.choice(np.nonzero(y == c)[0], 3, replace=False) for c in (0, 1)])
    ids = np.arange(100, 100 + len(X), dtype=np.int64)
    return X, labels, ids, few


def _accuracy(head, X, labels, ids) -> float:
    pred, _ = head.predict(X, ids)
    return float(np.mean(np.array(pred) == labels))


def test_spreading_beats_plain_logistic_regression_with_few_labels(moons) -> None:
    X, labels, ids, few = moons
    lr = fit_head("logreg", X[few], labels[few].tolist(), ["a", "b"])
    sp = fit_head("spreading-rebuild", X[few], labels[few].tolist(), ["a", "b"], unlabeled=X, unlabeled_ids=ids)
    assert "spreading-rebuild" in HEADS and isinstance(sp, SpreadingHead)
    acc_lr, acc_sp = _accuracy(lr, X, labels, ids), _accuracy(sp, X, labels, ids)
    assert acc_sp > 0.95 and acc_sp > acc_lr + 0.05, (acc_lr, acc_sp)


def test_round_trip_without_pickle_and_unseen_tasks_get_logistic_regression(moons) -> None:
    X, labels, ids, few = moons
    sp = fit_head("spreading-rebuild", X[few], labels[few].tolist(), ["a", "b"], unlabeled=X, unlabeled_ids=ids)
    blob = sp.to_bytes()
    with np.load(__import__("io").BytesIO(blob), allow_pickle=False) as z:  # plain arrays only
        assert "spread_proba" in z.files
    again = load_head(blob)
    assert isinstance(again, SpreadingHead) and again.classes == ["a", "b"]
    np.testing.assert_allclose(again.predict_proba(X, ids), sp.predict_proba(X, ids), atol=1e-6)
    # Task ids the head never saw (created after training) fall back to the logistic regression part.
    unseen = np.arange(10_000, 10_000 + len(X))
    lr_only = again.predict_proba(X, unseen)
    np.testing.assert_allclose(lr_only, again.predict_proba(X, None), atol=1e-6)
    np.testing.assert_allclose(lr_only.sum(axis=1), 1.0, atol=1e-5)
    assert not np.allclose(lr_only, again.predict_proba(X, ids))


def test_single_class_and_no_unlabeled_degrade_gracefully(moons) -> None:
    X, labels, ids, few = moons
    one_class = fit_head("spreading-rebuild", X[:2], ["a", "a"], ["a", "b"], unlabeled=X, unlabeled_ids=ids)
    assert one_class.kind == "constant"
    assert fit_head("spreading-rebuild", X[few], labels[few].tolist(), ["a", "b"]).kind == "logreg"


def test_training_and_predict_paths_serve_a_spreading_head(seeded_project, store) -> None:
    seeded = seeded_project(n=90)
    pid = seeded["pid"]
    for i in range(6):
        store.record_annotation(pid, i + 1, seeded["ids"][i], seeded["y"][i])
    res = train_project(store, Config(redis_url="unused://", head="spreading-rebuild"), pid)
    assert res.status == "published"
    record = store.head(pid, res.version)
    assert record.meta["head"] == "spreading"
    cfg = Projects(store).config(pid)
    tasks = [{"id": t, "data": {}} for t in [*seeded["ids"][6:], 5000]]  # 5000: never embedded
    _, results = predict_tasks(store, HeadCache(), pid, cfg, tasks)
    labels = [r["result"][0]["value"]["choices"][0] if r["result"] else None for r in results]
    assert labels[-1] is None  # no embedding, no encoder to make one: empty result, batch not failed
    assert np.mean(np.array(labels[:-1]) == np.array(seeded["y"][6:])) > 0.95
