"""The explicit head registry: names, capability flags, one vocabulary, and old blobs still loading."""

from __future__ import annotations

import io

import numpy as np
import pytest

from backend.config import Config
from backend.heads import HEAD_CLASSES, HEADS, HeadKind, fit_head, head_kind, load_head
from backend.heads.logreg import LogRegHead, fit_logreg
from backend.training import train_project
from tests.conftest import CLASSES, clustered_embeddings


def test_the_registry_names_every_head_with_its_capabilities():
    assert {name: (kind.needs_unlabeled, kind.uses_snapshot) for name, kind in HEADS.items()} == {
        "logreg": (False, False), "spreading": (False, True), "spreading-rebuild": (True, False)}
    assert all(kind.name == name and HEAD_CLASSES[kind.cls.kind] is kind.cls for name, kind in HEADS.items())
    with pytest.raises(ValueError, match="known: logreg, spreading, spreading-rebuild"):
        head_kind("linear")


def test_logreg_is_one_name_for_the_setting_and_the_stored_kind():
    _, X, y = clustered_embeddings(30)
    head = fit_head("logreg", X, y, CLASSES)
    assert head.kind == "logreg" and isinstance(load_head(head.to_bytes()), LogRegHead)


def test_blobs_of_the_old_kind_linear_still_load():
    _, X, y = clustered_embeddings(30)
    head = fit_logreg(X, y, CLASSES)
    buf = io.BytesIO()  # what the backend stored before the kinds were unified
    np.savez(buf, __kind__=np.array("linear"), __classes__=np.array(head.classes, dtype=str), **head.arrays)
    old = load_head(buf.getvalue())
    assert isinstance(old, LogRegHead) and old.classes == head.classes
    np.testing.assert_allclose(old.predict_proba(X), head.predict_proba(X))


@pytest.mark.parametrize("needs_unlabeled", [False, True])
def test_training_passes_every_embedding_only_to_heads_that_need_them(seeded_project, store, monkeypatch,
                                                                      needs_unlabeled):
    seeded = seeded_project(n=30)
    for i in range(9):
        store.record_annotation(1, i + 1, seeded["ids"][i], seeded["y"][i])
    seen = {}

    def fit(X, y, classes, *, unlabeled=None, unlabeled_ids=None):
        seen.update(labeled=len(X), unlabeled=None if unlabeled is None else len(unlabeled))
        return fit_logreg(X, y, classes)

    monkeypatch.setitem(HEADS, "probe", HeadKind("probe", fit, LogRegHead, needs_unlabeled=needs_unlabeled))
    result = train_project(store, Config(redis_url="unused://", head="probe"), 1)
    assert result.status == "published"
    assert seen == {"labeled": 9, "unlabeled": 30 if needs_unlabeled else None}
    assert store.head(1, result.version).meta["head"] == "logreg"
