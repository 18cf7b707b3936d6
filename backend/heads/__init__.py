"""The heads DALT can train, in one explicit registry: ``DALT_HEAD`` picks one by name.

* ``logreg``: logistic regression on the labeled embeddings (the paper's head);
* ``spreading`` (the default): label spreading over every cached embedding, averaged with ``logreg``
  (``needs_unlabeled``).

``needs_unlabeled`` tells training to pass every cached embedding of the project, not only the labeled
ones. A head's stored ``kind`` is its class's: ``logreg``, ``spreading``, or ``constant`` (while only one
class has labels). Heads stored before the kinds were unified name logistic regression ``linear``; they
still load.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from backend.heads.base import ConstantHead, Head, decode_head
from backend.heads.logreg import LogRegHead, fit_logreg
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


HEADS: dict[str, HeadKind] = {
    "logreg": HeadKind("logreg", fit_logreg, LogRegHead, needs_unlabeled=False),
    "spreading": HeadKind("spreading", fit_spreading, SpreadingHead, needs_unlabeled=True),
}

# Stored kind -> class, for loading: every kind a fit can produce, and old names of them.
HEAD_CLASSES: dict[str, type[Head]] = {
    ConstantHead.kind: ConstantHead,
    LogRegHead.kind: LogRegHead,
    "linear": LogRegHead,
    SpreadingHead.kind: SpreadingHead,
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
) -> Head:
    """Fit a head of a registered kind.

    Raises:
        ValueError: for an unknown kind or no labels.
    """
    kind = head_kind(name)
    if len(y) == 0:
        raise ValueError("no labeled embeddings to fit a head on")
    return kind.fit(X, y, classes, unlabeled=unlabeled, unlabeled_ids=unlabeled_ids)


def load_head(blob: bytes) -> Head:
    """Rebuild a stored head (any kind in :data:`HEAD_CLASSES`).

    Raises:
        ValueError: for a blob that is not a head archive or of an unknown kind.
    """
    return decode_head(blob, HEAD_CLASSES)


__all__ = ["HEADS", "HEAD_CLASSES", "Head", "HeadKind", "fit_head", "head_kind", "load_head"]
