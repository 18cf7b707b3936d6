"""The neighbour graph and label propagation (pure): recall against exact kNN, incremental adds, sklearn parity."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.semi_supervised import LabelSpreading

from backend import graph


def _clustered(n: int, dim: int = 8, clusters: int = 6, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=4, size=(clusters, dim))
    return (centers[rng.integers(0, clusters, n)] + rng.normal(size=(n, dim))).astype(np.float32)


def _exact(X: np.ndarray, k: int) -> np.ndarray:
    d = ((X[:, None, :] - X[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    return np.argsort(d, axis=1, kind="stable")[:, :k]


def test_exact_build_equals_brute_force_and_excludes_self() -> None:
    X = _clustered(400)
    ids = np.arange(1000, 1400)
    rows = graph.build_graph(ids, X)
    truth = ids[_exact(X, graph.K)]
    assert (rows.nbr != ids[:, None]).all()
    overlap = np.mean([len(set(a) & set(b)) / graph.K for a, b in zip(rows.nbr, truth, strict=True)])
    assert overlap > 0.999
    assert np.all(np.diff(rows.dist, axis=1) >= 0)  # nearest first


def test_hnsw_build_recall_against_exact_knn() -> None:
    X = _clustered(3000, dim=16)
    ids = np.arange(3000)
    rows = graph.build_graph(ids, X, exact_below=0)  # force the approximate index
    truth = _exact(X, graph.K)
    recall = np.mean([len(set(a) & set(b)) / graph.K for a, b in zip(rows.nbr, truth, strict=True)])
    assert recall > 0.9, recall


def test_adding_tasks_gives_the_graph_a_rebuild_would() -> None:
    X = _clustered(900)
    ids = np.arange(1, 901) * 3  # sparse ids
    old = graph.build_graph(ids[:600], X[:600])
    new_rows, changed = graph.add_to_graph(old, X[:600], ids[600:], X[600:])
    merged = {int(t): set(r) for t, r in zip(old.ids, old.nbr, strict=True)}
    merged.update({int(t): set(r) for t, r in zip(changed.ids, changed.nbr, strict=True)})
    merged.update({int(t): set(r) for t, r in zip(new_rows.ids, new_rows.nbr, strict=True)})
    full = graph.build_graph(ids, X)
    agree = np.mean([merged[int(t)] == set(r) for t, r in zip(full.ids, full.nbr, strict=True)])
    assert agree > 0.99, agree
    assert 0 < len(changed) < 600  # only the tasks that gained a closer neighbour are rewritten


def test_propagation_matches_sklearn_label_spreading() -> None:
    X = _clustered(800)
    std = graph.Standardizer.fit(X)
    Z = std(X)
    rows = graph.build_graph(np.arange(800), Z)
    rng = np.random.default_rng(1)
    labeled = rng.choice(800, 40, replace=False)
    targets = rng.integers(0, 3, 40)
    y = np.full(800, -1)
    y[labeled] = targets
    model = LabelSpreading(kernel="knn", n_neighbors=10, alpha=0.9, max_iter=50)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(Z, y)
    dist, _ = graph.spread(graph.propagation_matrix(rows), labeled, targets, 3, sweeps=50)
    np.testing.assert_allclose(dist, model.label_distributions_, atol=1e-4)


def test_warm_start_converges_to_the_same_fixed_point_and_deleted_neighbours_drop_out() -> None:
    X = _clustered(500)
    rows = graph.build_graph(np.arange(500), X)
    labeled, targets = np.arange(0, 500, 25), np.arange(20) % 2
    S = graph.propagation_matrix(rows)
    cold, _ = graph.spread(S, labeled, targets, 2, sweeps=300, tol=0)
    rough, _ = graph.spread(S, labeled, targets, 2, sweeps=5)
    warm, _ = graph.spread(S, labeled, targets, 2, start=rough, sweeps=300, tol=0)
    np.testing.assert_allclose(warm, cold, atol=1e-3)
    # a task no longer in the graph is skipped as a neighbour: the matrix only covers live rows
    keep = np.arange(1, 500)
    S2 = graph.propagation_matrix(graph.Neighbours(rows.ids[keep], rows.nbr[keep], rows.dist[keep]))
    assert S2.shape == (499, 499)


@pytest.mark.parametrize("n", [1, 2])
def test_tiny_projects(n: int) -> None:
    rows = graph.build_graph(np.arange(n), _clustered(n))
    assert rows.nbr.shape == (n, graph.K) and (rows.nbr[:, 1:] == -1).all()


def test_adding_to_a_large_graph_by_beam_search_nearly_matches_a_rebuild() -> None:
    X = _clustered(6000, dim=16, clusters=20)
    ids = np.arange(6000)
    old = graph.build_graph(ids[:5000], X[:5000])
    new_rows, changed = graph.add_to_graph(old, X[:5000], ids[5000:], X[5000:], exact_work=0)  # force the walk
    full = graph.build_graph(ids, X)
    truth = {int(t): set(r) for t, r in zip(full.ids, full.nbr, strict=True)}
    recall = np.mean([len(set(r) & truth[int(t)]) / graph.K for t, r in zip(new_rows.ids, new_rows.nbr, strict=True)])
    assert recall > 0.95, recall
    merged = {int(t): set(r) for t, r in zip(old.ids, old.nbr, strict=True)}
    merged.update({int(t): set(r) for t, r in zip(changed.ids, changed.nbr, strict=True)})
    old_recall = np.mean([len(merged[int(t)] & truth[int(t)]) / graph.K for t in ids[:5000].tolist()])
    assert old_recall > 0.98, old_recall
