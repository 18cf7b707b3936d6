"""Heads fit on embeddings and survive serialization without pickle."""

import numpy as np
import pytest

from backend.heads import fit_head, load_head
from tests.conftest import CLASSES, clustered_embeddings


def test_logreg_learns_separable_clusters_and_round_trips():
    _, X, y = clustered_embeddings(90)
    head = fit_head("logreg", X[:60], y[:60], CLASSES)
    labels, scores = head.predict(X[60:])
    assert np.mean(np.array(labels) == np.array(y[60:])) > 0.95
    assert ((scores > 0) & (scores <= 1)).all()
    again = load_head(head.to_bytes())
    np.testing.assert_allclose(again.predict_proba(X[60:]), head.predict_proba(X[60:]), rtol=1e-6)
    assert again.classes == list(CLASSES)


def test_binary_problem_gives_two_columns():
    _, X, y = clustered_embeddings(30)
    keep = [i for i, c in enumerate(y) if c != "two"]
    head = fit_head("logreg", X[keep], [y[i] for i in keep], CLASSES)
    assert head.classes == ["zero", "one"]
    assert head.predict_proba(X[:3]).shape == (3, 2)


def test_single_class_gives_a_modest_constant():
    head = fit_head("logreg", np.zeros((2, 4)), ["one", "one"], CLASSES)
    labels, scores = head.predict(np.zeros((3, 4)))
    assert labels == ["one"] * 3
    assert scores[0] == pytest.approx(3 / 4)


def test_garbage_blobs_are_refused():
    with pytest.raises(ValueError):
        load_head(b"not an archive")


def test_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="unknown head"):
        fit_head("nope", np.zeros((1, 2)), ["a"], ["a", "b"])
