"""Cold start: which tasks to label first, so the first few dozen labels teach the head the most.

Why: in random order the first 50 labels may miss a class or land on outliers. k-means over the cached
embeddings finds the dataset's typical shapes; labeling the most typical task of every cluster first
(the one nearest its centroid, big clusters first) covers every mode of the data with one label each.
After that first round the remaining tasks follow in a seeded random order: typical tasks are redundant
once their cluster has a label, and random order keeps the rest representative.

The order reaches Label Studio as a number per task (``dalt_order``, 0 first), which
``dalt order`` (``backend.ordering``) writes into each task's data so annotators sort the data manager by it.
"""

from __future__ import annotations

import numpy as np


def default_clusters(n_tasks: int, n_classes: int) -> int:
    """Five clusters per class (classes have several modes: 7 with and without a bar), 10 at least."""
    return int(max(1, min(n_tasks, max(10, 5 * max(1, n_classes)))))


def typicality_order(
    task_ids: np.ndarray, X: np.ndarray, n_clusters: int, *, seed: int = 0
) -> np.ndarray:
    """Task ids in labeling order: the most typical task of each k-means cluster first, then the rest shuffled.

    Args:
        task_ids: ``int64 [n]``.
        X: embeddings ``[n, dim]`` (standardized here, so no dimension dominates the distances).
        n_clusters: how many typical tasks lead (capped at ``n``).
        seed: k-means initialisation and the order of the rest.

    Returns:
        A permutation of ``task_ids``.
    """
    from sklearn.cluster import KMeans

    ids = np.asarray(task_ids, np.int64)
    n = len(ids)
    if n == 0:
        return ids.copy()
    X = np.asarray(X, np.float32)
    Z = (X - X.mean(axis=0)) / (X.std(axis=0) + 1e-6)
    k = int(min(max(1, n_clusters), n))
    km = KMeans(n_clusters=k, n_init=3, random_state=seed).fit(Z)
    dist = np.linalg.norm(Z - km.cluster_centers_[km.labels_], axis=1)
    sizes = np.bincount(km.labels_, minlength=k)
    leaders = []
    for c in np.argsort(-sizes, kind="stable"):
        members = np.nonzero(km.labels_ == c)[0]
        if len(members):
            leaders.append(members[np.argmin(dist[members])])
    leaders_arr = np.array(leaders, np.int64)
    rest = np.setdiff1d(np.arange(n), leaders_arr)
    rest = np.random.default_rng(seed).permutation(rest)
    return ids[np.concatenate([leaders_arr, rest])]


def order_values(order: np.ndarray) -> dict[int, int]:
    """``{task id: position}`` for an order from :func:`typicality_order` (what Label Studio sorts by)."""
    return {int(t): i for i, t in enumerate(order)}
