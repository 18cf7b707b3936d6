"""The project's neighbour graph and label propagation over it: pure numpy, scipy and faiss, no Redis.

Why a stored graph: label spreading needs every task's nearest neighbours. Rebuilding them on every
retraining made one annotation cost O(project) (43 s at 100,000 tasks); the graph only changes when
tasks are encoded, so it is built once per encoder version and grown as tasks arrive:

* :func:`build_graph`: every task's ``K`` nearest neighbours (itself excluded), with faiss
  (``IndexHNSWFlat(dim, 16)``, efConstruction 40, for large projects; exact ``IndexFlatL2`` below
  :data:`EXACT_BELOW` tasks, where exact is cheap and keeps small projects identical to sklearn's graph).
* :func:`add_to_graph`: new tasks search the stored vectors (brute force while that is cheap, a beam search
  over the stored graph for large projects), and an existing task gains a new one as neighbour where it is
  closer than its current ``K``-th.
* :func:`propagation_matrix` and :func:`spread`: the normalized graph and the iteration of scikit-learn's
  ``LabelSpreading`` (Zhou et al., 2004; knn kernel), warm-started from the previous distributions.

Distances are squared L2 in a standardized space (mean and scale of all vectors at build time), as the
old per-fit head standardized before its kNN search. The graph keeps ``K`` = 10 neighbours; propagation
uses the task itself plus its 9 nearest live ones (what ``LabelSpreading(n_neighbors=10)`` uses), so the
10th is a spare that keeps a task at full degree after a neighbour is deleted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.sparse import csgraph

K = 10
PROPAGATION_NEIGHBORS = 10  # the task itself + 9 others, as sklearn's knn kernel with n_neighbors=10
HNSW_M = 16
EF_CONSTRUCTION = 40
EXACT_BELOW = 20_000
EXACT_ADD_WORK = 2e8  # existing x new tasks up to which an add searches by brute force (about 1 s here)
ADD_CANDIDATES = 64  # existing tasks each new task looks at: its neighbours and who may gain it
ALPHA = 0.9
SWEEPS = 50
TOL = 1e-3  # sklearn's: on the summed absolute change per sweep


@dataclass
class Neighbours:
    """Rows of the graph: ``ids`` int64 [n]; ``nbr`` int64 [n, K] neighbour task ids (-1: none), nearest
    first; ``dist`` float32 [n, K] their squared distances (inf where none)."""

    ids: np.ndarray
    nbr: np.ndarray
    dist: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class Standardizer:
    """The mean and scale every vector is standardized with before distances are taken."""

    mean: np.ndarray
    scale: np.ndarray

    @classmethod
    def fit(cls, X: np.ndarray) -> Standardizer:
        X = np.asarray(X, np.float32)
        scale = X.std(axis=0)
        return cls(X.mean(axis=0).astype(np.float32), np.where(scale > 1e-12, scale, 1.0).astype(np.float32))

    def __call__(self, X: np.ndarray) -> np.ndarray:
        Z = np.asarray(X, np.float32) - self.mean  # one new array, then in place (a million rows: 128 MB)
        Z /= self.scale
        return np.ascontiguousarray(Z)


def index_of(ids: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Position of each of ``wanted`` in ``ids`` (ascending, distinct), -1 where absent or negative.

    Task ids are dense in practice, so a lookup table (4 bytes per id up to the largest) replaces a binary
    search: for the 10 million neighbour ids of a million-task graph, 0.1 s instead of 1.6 s here.
    """
    ids = np.asarray(ids, np.int64)
    wanted = np.asarray(wanted, np.int64)
    if len(ids) == 0:
        return np.full(wanted.shape, -1, np.int64)
    top = int(ids[-1])
    if top < 8 * len(ids) + 1_000_000:
        table = np.full(top + 1, -1, np.int32)
        table[ids] = np.arange(len(ids), dtype=np.int32)
        ok = (wanted >= 0) & (wanted <= top)
        return np.where(ok, table[np.clip(wanted, 0, top)], -1).astype(np.int64)
    at = np.clip(np.searchsorted(ids, wanted), 0, len(ids) - 1)
    return np.where((wanted >= 0) & (ids[at] == wanted), at, -1)


def _drop_self(positions: np.ndarray, dists: np.ndarray, own: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Remove each row's own position from ``k + 1`` results (or the farthest, for duplicates of it)."""
    n = len(positions)
    is_self = positions == own[:, None]
    # rows where self was not returned (an exact duplicate crowded it out): drop the last column instead
    missing = ~is_self.any(axis=1)
    is_self[missing, -1] = True
    first = np.argmax(is_self, axis=1)
    keep = np.ones_like(is_self)
    keep[np.arange(n), first] = False
    return positions[keep].reshape(n, k), dists[keep].reshape(n, k)


def build_graph(ids: np.ndarray, X: np.ndarray, *, k: int = K, exact_below: int = EXACT_BELOW,
                threads: int = 1) -> Neighbours:
    """Every task's ``k`` nearest neighbours among ``X`` (already standardized), itself excluded."""
    import faiss

    faiss.omp_set_num_threads(max(1, threads))
    ids = np.asarray(ids, np.int64)
    X = np.ascontiguousarray(X, np.float32)
    n, dim = X.shape
    if n == 0:
        return Neighbours(ids, np.zeros((0, k), np.int64), np.zeros((0, k), np.float32))
    kk = min(k + 1, n)
    if n < exact_below:
        index = faiss.IndexFlatL2(dim)
    else:
        index = faiss.IndexHNSWFlat(dim, HNSW_M)
        index.hnsw.efConstruction = EF_CONSTRUCTION
    index.add(X)
    D, nn = index.search(X, kk)
    pos, dist = _drop_self(nn, D, np.arange(n), kk - 1)
    return _rows(ids, pos, dist, k)


def _rows(ids: np.ndarray, pos: np.ndarray, dist: np.ndarray, k: int, pool: np.ndarray | None = None) -> Neighbours:
    """Neighbour positions (into ``pool``, default ``ids``) -> task ids, padded to ``k`` columns."""
    pool = ids if pool is None else pool
    n = len(ids)
    nbr = np.full((n, k), -1, np.int64)
    d = np.full((n, k), np.inf, np.float32)
    w = min(k, pos.shape[1]) if pos.ndim == 2 else 0
    if w:
        ok = pos[:, :w] >= 0
        nbr[:, :w] = np.where(ok, pool[np.clip(pos[:, :w], 0, None)], -1)
        d[:, :w] = np.where(ok, dist[:, :w], np.inf)
    return Neighbours(ids, nbr, d)


def add_to_graph(old: Neighbours, X_old: np.ndarray, new_ids: np.ndarray, X_new: np.ndarray, *, k: int = K,
                 threads: int = 1, exact_work: float = EXACT_ADD_WORK, transform: Standardizer | None = None
                 ) -> tuple[Neighbours, Neighbours]:
    """Add new tasks to a graph.

    Each new task searches the existing vectors for its :data:`ADD_CANDIDATES` nearest: exactly (brute
    force) while ``existing x new`` is at most ``exact_work`` distance computations, beyond that by a beam
    search over the stored graph itself (:func:`graph_search`: brute force over a million tasks took 7-15 s
    on this 2-core machine, the walk well under a second). Those candidates give the new task its ``k``
    nearest (new tasks among themselves: exact), and an existing candidate gains the new task where it is
    closer than its current ``k``-th (a task whose 10th neighbour is farther than the new task's 64th
    candidate is the rare miss).

    Args:
        old: the stored rows of the existing tasks (``X_old`` holds their vectors, same order).
        new_ids, X_new: the new tasks and their vectors.
        transform: the graph's standardizer, applied here (to the existing vectors only where they are
            visited); None: the vectors are standardized already.

    Returns:
        ``(new rows, changed rows)``: the new tasks' rows, and the rows of existing tasks that gained a
        new task as neighbour.
    """
    import faiss

    faiss.omp_set_num_threads(max(1, threads))
    new_ids = np.asarray(new_ids, np.int64)
    X_new = np.ascontiguousarray(X_new if transform is None else transform(X_new), np.float32)
    m, n = len(new_ids), len(X_old)
    if m == 0:
        return _empty(k), _empty(k)
    pool_ids = np.concatenate([old.ids, new_ids])
    kk = min(k + 1, len(pool_ids))
    ks = min(ADD_CANDIDATES, n)
    if n == 0:
        D_old, nn_old = np.zeros((m, 0), np.float32), np.zeros((m, 0), np.int64)
    elif float(n) * m <= exact_work:
        D_old, nn_old = faiss.knn(X_new, np.ascontiguousarray(X_old if transform is None else transform(X_old),
                                                               np.float32), ks)
    else:
        D_old, nn_old = graph_search(X_new, X_old, positions(old), ks, transform=transform)
    D_new, nn_new = faiss.knn(X_new, X_new, min(kk, m))
    D = np.hstack([D_old, D_new])
    nn = np.hstack([nn_old, nn_new + n])
    order = np.argsort(D, axis=1, kind="stable")[:, :kk]
    pos, dist = _drop_self(np.take_along_axis(nn, order, 1), np.take_along_axis(D, order, 1), n + np.arange(m),
                           kk - 1)
    new_rows = _rows(new_ids, pos, dist, k, pool_ids)
    if n == 0:
        return new_rows, _empty(k)
    # existing candidates gain a new task where it is closer than their k-th neighbour
    o = nn_old.reshape(-1)
    j = np.repeat(np.arange(m), nn_old.shape[1])
    d = D_old.reshape(-1)
    gain = (o >= 0) & (d < old.dist[np.clip(o, 0, None), -1])
    if not gain.any():
        return new_rows, _empty(k)
    o, j, d = o[gain], j[gain], d[gain]
    srt = np.lexsort((d, o))
    o, j, d = o[srt], j[srt], d[srt]
    rows, first = np.unique(o, return_index=True)
    rank = np.arange(len(o)) - np.repeat(first, np.diff(np.r_[first, len(o)]))
    keep = rank < k
    at = np.searchsorted(rows, o[keep])
    add_nbr = np.full((len(rows), k), -1, np.int64)
    add_d = np.full((len(rows), k), np.inf, np.float32)
    add_nbr[at, rank[keep]] = new_ids[j[keep]]
    add_d[at, rank[keep]] = d[keep]
    cand_nbr = np.hstack([old.nbr[rows], add_nbr])
    cand_d = np.hstack([old.dist[rows], add_d])
    order = np.argsort(cand_d, axis=1, kind="stable")[:, :k]
    changed = Neighbours(old.ids[rows], np.take_along_axis(cand_nbr, order, 1),
                         np.take_along_axis(cand_d, order, 1).astype(np.float32))
    return new_rows, changed


def positions(rows: Neighbours) -> np.ndarray:
    """Neighbour task ids -> row positions (``rows.ids`` ascending); -1 for none or a task not in ``rows``."""
    return index_of(rows.ids, rows.nbr)


def graph_search(Xq: np.ndarray, X: np.ndarray, nbr_pos: np.ndarray, k: int, *, beam: int = 64,
                 expand: int = 16, sample: int = 4096, steps: int = 24, seed: int = 0,
                 transform: Standardizer | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Approximate ``k`` nearest rows of ``X`` for each query by a beam search over the kNN graph.

    Every query starts from the nearest of a random sample of ``sample`` rows; each step expands the
    ``expand`` nearest beam members not expanded yet (their neighbours, ``nbr_pos``: row positions, -1
    none) and keeps the ``beam`` nearest of all seen, as graph indexes (HNSW's bottom layer) search; all
    queries move together in numpy, until no beam member is left to expand.

    Args:
        transform: applied to the rows of ``X`` as they are visited (so a million raw vectors need not be
            standardized up front); ``Xq`` is already transformed.

    Returns:
        ``(squared distances [q, k], row positions [q, k])``, nearest first.
    """
    n, q = len(X), len(Xq)
    rows_of = (lambda idx: X[idx]) if transform is None else (lambda idx: transform(X[idx]))
    rng = np.random.default_rng(seed)
    start = rng.choice(n, size=min(n, sample), replace=False)
    d0 = _sqdist(Xq, rows_of(start))
    w = min(max(beam, k), len(start))
    top = np.argpartition(d0, w - 1, axis=1)[:, :w]
    cand, cd = start[top], np.take_along_axis(d0, top, 1)
    done = np.zeros(cand.shape, bool)
    rows = np.arange(q)[:, None]
    for _ in range(steps):
        pick_d = np.where(done, np.inf, cd)
        e = min(expand, w)
        pick = np.argpartition(pick_d, e - 1, axis=1)[:, :e]
        live = np.isfinite(np.take_along_axis(pick_d, pick, 1))
        if not live.any():
            break
        done[rows, pick] |= live
        nb = np.where(live[:, :, None], nbr_pos[np.take_along_axis(cand, pick, 1)], -1).reshape(q, -1)
        nb = np.where(nb >= 0, nb, cand[:, :1])
        d = ((rows_of(nb) - Xq[:, None, :]) ** 2).sum(-1)
        allc = np.hstack([cand, nb])
        alld = np.hstack([cd, d.astype(np.float32)])
        alldone = np.hstack([done, np.zeros(nb.shape, bool)])
        srt = np.argsort(allc * 2 + ~alldone, axis=1, kind="stable")  # by id, an expanded copy first
        allc, alld = np.take_along_axis(allc, srt, 1), np.take_along_axis(alld, srt, 1)
        alldone = np.take_along_axis(alldone, srt, 1)
        alld[:, 1:][allc[:, 1:] == allc[:, :-1]] = np.inf  # each row once
        top = np.argpartition(alld, w - 1, axis=1)[:, :w]
        cand, cd, done = (np.take_along_axis(a, top, 1) for a in (allc, alld, alldone))
    order = np.argsort(cd, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(cd, order, 1).astype(np.float32), np.take_along_axis(cand, order, 1)


def _sqdist(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    return np.maximum((A * A).sum(1)[:, None] + (B * B).sum(1)[None, :] - 2 * A @ B.T, 0).astype(np.float32)


def _empty(k: int) -> Neighbours:
    return Neighbours(np.zeros(0, np.int64), np.zeros((0, k), np.int64), np.zeros((0, k), np.float32))


def propagation_matrix(graph: Neighbours, neighbors: int = PROPAGATION_NEIGHBORS) -> sparse.csr_matrix:
    """The normalized graph label spreading iterates over, as scikit-learn's ``LabelSpreading`` builds it.

    Rows are the graph's tasks in ``graph.ids`` order; each connects to itself and its ``neighbors - 1``
    nearest neighbours that are still in the graph (deleted tasks drop out), then ``-laplacian(normed)``
    with a zero diagonal.
    """
    ids = graph.ids
    n = len(ids)
    order = np.argsort(ids, kind="stable")
    at = index_of(ids[order], graph.nbr)
    live = at >= 0
    keep = live & (np.cumsum(live, axis=1) <= neighbors - 1)
    rows = np.concatenate([np.arange(n), np.nonzero(keep)[0]])
    cols = np.concatenate([np.arange(n), order[at[keep]]])
    A = sparse.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(n, n))
    A.sum_duplicates()
    A.data[:] = 1.0
    L = -csgraph.laplacian(A, normed=True)
    L = sparse.coo_matrix(L)
    L.data[L.row == L.col] = 0.0
    return L.tocsr().astype(np.float32)


def spread(S: sparse.csr_matrix, labeled: np.ndarray, targets: np.ndarray, n_classes: int, *,
           start: np.ndarray | None = None, alpha: float = ALPHA, sweeps: int = SWEEPS, tol: float = TOL
           ) -> tuple[np.ndarray, int]:
    """Label spreading's iteration ``F <- alpha S F + (1 - alpha) Y``, then rows normalized.

    Args:
        labeled, targets: positions of the labeled tasks in ``S``'s order and their class indices.
        start: the previous distributions (warm start; rows of unknown tasks zero); default ``Y``.
        sweeps: the most iterations (stops earlier once the summed change is below ``tol``).

    Returns:
        ``(distributions float32 [n, n_classes], sweeps run)``.
    """
    n = S.shape[0]
    Y = np.zeros((n, n_classes), np.float32)
    Y[np.asarray(labeled, np.int64), np.asarray(targets, np.int64)] = 1.0
    F = Y.copy() if start is None else np.ascontiguousarray(start, np.float32).copy()
    if start is not None:
        F[np.asarray(labeled, np.int64)] = Y[np.asarray(labeled, np.int64)]
    static = (1 - alpha) * Y
    previous = np.zeros_like(F)
    run = 0
    for run in range(1, sweeps + 1):
        if np.abs(F - previous).sum() < tol:
            run -= 1
            break
        previous = F
        F = alpha * (S @ F) + static
    norm = F.sum(axis=1, keepdims=True)
    norm[norm == 0] = 1
    return (F / norm).astype(np.float32), run
