"""What every head is: a small model over cached embeddings, cheap enough to refit on every label.

Heads are serialized as ``.npz`` archives of plain arrays (``allow_pickle=False``): a head blob comes from
Redis, and unpickling whatever sits in a shared database would let anyone with Redis access run code in
the backend. An archive names its kind; :func:`decode_head` rebuilds the head with the class the caller's
table gives for that kind (``backend.heads.load_head`` passes the registry's).
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import numpy as np


class Head:
    """A fitted head: maps embeddings to probabilities over ``classes``.

    Subclasses store their parameters in ``arrays`` so that :meth:`to_bytes` / :func:`decode_head` need no
    pickling.
    """

    kind = "base"

    def __init__(self, classes: Sequence[str], arrays: dict[str, np.ndarray]):
        self.classes = list(classes)
        self.arrays = arrays

    def predict_proba(self, X: np.ndarray, task_ids: np.ndarray | None = None) -> np.ndarray:
        """Probabilities ``[n, len(classes)]``; ``task_ids`` lets transductive heads use what they learned."""
        raise NotImplementedError

    def predict(self, X: np.ndarray, task_ids: np.ndarray | None = None,
                spread: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[list[str], np.ndarray]:
        """Top class and its probability for each row (``spread``: snapshot rows, for heads that use them)."""
        if len(X) == 0:
            return [], np.zeros(0, np.float32)
        proba = self.predict_proba(X, task_ids) if spread is None else self.predict_proba(X, task_ids, spread)
        top = proba.argmax(axis=1)
        return [self.classes[i] for i in top], proba[np.arange(len(top)), top]

    def to_bytes(self) -> bytes:
        """Serialize to an ``.npz`` archive (no pickle)."""
        buf = io.BytesIO()
        np.savez(
            buf,
            __kind__=np.array(self.kind),
            __classes__=np.array(self.classes, dtype=str),
            **self.arrays,
        )
        return buf.getvalue()


def decode_head(blob: bytes, classes_by_kind: Mapping[str, type[Head]]) -> Head:
    """Rebuild a head from :meth:`Head.to_bytes` output.

    Raises:
        ValueError: for a blob that is not a head archive, or of a kind ``classes_by_kind`` lacks.
    """
    try:
        with np.load(io.BytesIO(blob), allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception as exc:
        raise ValueError(f"not a head archive: {exc}") from None
    if "__kind__" not in arrays or "__classes__" not in arrays:
        raise ValueError("not a head archive: no kind or classes")
    kind = str(arrays.pop("__kind__"))
    classes = [str(c) for c in arrays.pop("__classes__")]
    if kind not in classes_by_kind:
        raise ValueError(f"unknown head kind {kind!r}")
    return classes_by_kind[kind](classes, arrays)


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class ConstantHead(Head):
    """Used while only one class has labels: no classifier can be fit yet.

    Scores follow Laplace's rule of succession, so one label does not claim certainty.
    """

    kind = "constant"

    def predict_proba(self, X: np.ndarray, task_ids: np.ndarray | None = None) -> np.ndarray:
        return np.repeat(self.arrays["proba"][None, :], len(X), axis=0)


def constant_head(y: Sequence[str], classes: Sequence[str]) -> Head:
    """A head for the single-class case: predicts the only class seen."""
    n = len(y)
    proba = np.array([(n + 1) / (n + 2)], np.float32)
    return ConstantHead([y[0]], {"proba": proba})
