"""The heads DALT can train, in one explicit registry: ``DALT_HEAD`` picks one by name.

* ``logreg``: logistic regression on the labeled embeddings (the paper's head);
* ``spreading`` (the default): ``logreg`` averaged with the newest spread snapshot, which the graph lane
  computes in the background over the stored neighbour graph (``uses_snapshot``; ``backend.heads.snapshot``);
* ``spreading-rebuild``: the same averaging, but label spreading is refit over a kNN graph of every cached
  embedding on every fit (``needs_unlabeled``; the default before the graph lane: its cost grows with the
  project, so it stays as the benchmarks' baseline, and its stored heads still load).

``needs_unlabeled`` tells training to pass every cached embedding of the project, not only the labeled
ones; ``uses_snapshot`` to pass the newest spread snapshot's metadata. A head's stored ``kind`` is its
class's: ``logreg``, ``spread_snapshot``, ``spreading`` (the rebuild head), or ``constant`` (while only
one class has labels). Heads stored before the kinds were unified name logistic regression ``linear``; they
still load.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from backend.heads.base import ConstantHead, Head, decode_head
from backend.heads.logreg import LogRegHead, fit_logreg
from backend.heads.snapshot import SnapshotSpreadingHead, fit_snapshot_spreading
from backend.heads.spreading import SpreadingHead, fit_spreading


@dataclass(frozen=True)
class HeadKind:
    """One trainable head: its name, its fit function, the class it makes, and what it needs.

    ``fit(X, y, classes, *, unlabeled=None, unlabeled_ids=None) -> Head``.
    """

    name: str
    fit: Callable[..., Head]
    cls: type[Head]
    needs_unlabeled: bool
    uses_snapshot: bool = False


HEADS: dict[str, HeadKind] = {
    "logreg": HeadKind("logreg", fit_logreg, LogRegHead, needs_unlabeled=False),
    "spreading": HeadKind("spreading", fit_snapshot_spreading, SnapshotSpreadingHead, needs_unlabeled=False,
                          uses_snapshot=True),
    "spreading-rebuild": HeadKind("spreading-rebuild", fit_spreading, SpreadingHead, needs_unlabeled=True),
}

# Stored kind -> class, for loading: every kind a fit can produce, and old names of them.
HEAD_CLASSES: dict[str, type[Head]] = {
    ConstantHead.kind: ConstantHead,
    LogRegHead.kind: LogRegHead,
    "linear": LogRegHead,
    SpreadingHead.kind: SpreadingHead,
    SnapshotSpreadingHead.kind: SnapshotSpreadingHead,
}


def head_kind(name: str) -> HeadKind:
    """The registered head ``name``.

    Raises:
        ValueError: for an unknown name, listing the known ones.
    """
    if name not in HEADS:
        raise ValueError(f"unknown head {name!r}; known: {', '.join(sorted(HEADS))}")
    return HEADS[name]


def fit_head(
    name: str,
    X: np.ndarray,
    y: Sequence[str],
    classes: Sequence[str],
    *,
    unlabeled: np.ndarray | None = None,
    unlabeled_ids: np.ndarray | None = None,
    snapshot: Mapping[str, Any] | None = None,
) -> Head:
    """Fit a head of a registered kind (``snapshot``: the newest spread snapshot's metadata, for kinds that
    use one).

    Raises:
        ValueError: for an unknown kind or no labels.
    """
    kind = head_kind(name)
    if len(y) == 0:
        raise ValueError("no labeled embeddings to fit a head on")
    if kind.uses_snapshot:
        return kind.fit(X, y, classes, snapshot=snapshot)
    return kind.fit(X, y, classes, unlabeled=unlabeled, unlabeled_ids=unlabeled_ids)


def load_head(blob: bytes) -> Head:
    """Rebuild a stored head (any kind in :data:`HEAD_CLASSES`).

    Raises:
        ValueError: for a blob that is not a head archive or of an unknown kind.
    """
    return decode_head(blob, HEAD_CLASSES)


__all__ = ["HEADS", "HEAD_CLASSES", "Head", "HeadKind", "SnapshotSpreadingHead", "fit_head", "head_kind", "load_head"]
