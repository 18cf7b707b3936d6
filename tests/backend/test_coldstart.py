"""Cold start: the most typical task of every cluster comes first, then the rest."""

from __future__ import annotations

import numpy as np

from backend.coldstart import default_clusters, order_values, typicality_order


def _blobs(seed: int = 0):
    rng = np.random.default_rng(seed)
    centers = np.array([[0, 0], [20, 0], [0, 20], [20, 20], [40, 40]], float)
    sizes = [50, 40, 30, 20, 10]
    X = np.vstack([c + rng.normal(0, 1, size=(n, 2)) for c, n in zip(centers, sizes, strict=True)])
    cluster = np.repeat(np.arange(5), sizes)
    ids = np.arange(1000, 1000 + len(X))
    return ids, X.astype(np.float32), cluster, centers


def test_one_typical_task_per_cluster_first_then_every_task_once() -> None:
    ids, X, cluster, _ = _blobs()
    order = typicality_order(ids, X, 5, seed=0)
    assert sorted(order.tolist()) == ids.tolist()
    first = order[:5] - 1000
    assert sorted(cluster[first].tolist()) == [0, 1, 2, 3, 4]
    assert cluster[first].tolist() == [0, 1, 2, 3, 4]  # biggest clusters first
    for i in first:  # each leader is its cluster's member nearest the cluster mean
        members = np.nonzero(cluster == cluster[i])[0]
        d = np.linalg.norm(X[members] - X[members].mean(axis=0), axis=1)
        assert d[members.tolist().index(i)] <= np.sort(d)[2]


def test_deterministic_with_a_seed_and_positions_for_label_studio() -> None:
    ids, X, _, _ = _blobs()
    a, b = typicality_order(ids, X, 5, seed=3), typicality_order(ids, X, 5, seed=3)
    np.testing.assert_array_equal(a, b)
    pos = order_values(a)
    assert pos[int(a[0])] == 0 and sorted(pos.values()) == list(range(len(ids)))
    assert default_clusters(5000, 10) == 50 and default_clusters(8, 10) == 8
    assert len(typicality_order(ids[:0], X[:0], 5)) == 0
