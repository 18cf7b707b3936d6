"""The classification head: a small model over cached embeddings, cheap enough to refit on every label.

Heads are serialized as ``.npz`` archives of plain arrays (``allow_pickle=False``): a head blob comes from
Redis, and unpickling whatever sits in a shared database would let anyone with Redis access run code in
the backend.

New head kinds register with :func:`register_head`; ``DALT_HEAD`` picks one by name.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence

import numpy as np

HEADS: dict[str, Callable[..., Head]] = {}


def register_head(name: str) -> Callable[[Callable[..., Head]], Callable[..., Head]]:
    """Register a fit function ``fit(X, y, classes, *, unlabeled=None, unlabeled_ids=None) -> Head``."""

    def deco(fn: Callable[..., Head]) -> Callable[..., Head]:
        HEADS[name] = fn
        return fn

    return deco


class Head:
    """A fitted head: maps embeddings to probabilities over ``classes``.

    Subclasses store their parameters in ``arrays`` so that :meth:`to_bytes` / :func:`load_head` need no
    pickling.
    """

    kind = "base"

    def __init__(self, classes: Sequence[str], arrays: dict[str, np.ndarray]):
        self.classes = list(classes)
        self.arrays = arrays

    def predict_proba(self, X: np.ndarray, task_ids: np.ndarray | None = None) -> np.ndarray:
        """Probabilities ``[n, len(classes)]``; ``task_ids`` lets transductive heads use what they learned."""
        raise NotImplementedError

    def predict(self, X: np.ndarray, task_ids: np.ndarray | None = None) -> tuple[list[str], np.ndarray]:
        """Top class and its probability for each row."""
        if len(X) == 0:
            return [], np.zeros(0, np.float32)
        proba = self.predict_proba(X, task_ids)
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


_KINDS: dict[str, type[Head]] = {}


def head_kind(cls: type[Head]) -> type[Head]:
    """Class decorator: make a head class loadable by :func:`load_head`."""
    _KINDS[cls.kind] = cls
    return cls


def load_head(blob: bytes) -> Head:
    """Rebuild a head from :meth:`Head.to_bytes` output.

    Raises:
        ValueError: for a blob that is not a head archive.
    """
    try:
        with np.load(io.BytesIO(blob), allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception as exc:
        raise ValueError(f"not a head archive: {exc}") from None
    kind = str(arrays.pop("__kind__"))
    classes = [str(c) for c in arrays.pop("__classes__")]
    _load_plugins()
    if kind not in _KINDS:
        raise ValueError(f"unknown head kind {kind!r}")
    return _KINDS[kind](classes, arrays)


# Heads in their own modules register on import; imported on first use (they import this module).
_PLUGINS = ("backend.spreading",)


def _load_plugins() -> None:
    import importlib

    for mod in _PLUGINS:
        importlib.import_module(mod)


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


@head_kind
class ConstantHead(Head):
    """Used while only one class has labels: no classifier can be fit yet.

    Scores follow Laplace's rule of succession, so one label does not claim certainty.
    """

    kind = "constant"

    def predict_proba(self, X: np.ndarray, task_ids: np.ndarray | None = None) -> np.ndarray:
        return np.repeat(self.arrays["proba"][None, :], len(X), axis=0)


@head_kind
class LinearHead(Head):
    """Multinomial logistic regression on standardized embeddings (the paper's real-time model)."""

    kind = "linear"

    def predict_proba(self, X: np.ndarray, task_ids: np.ndarray | None = None) -> np.ndarray:
        a = self.arrays
        Z = (np.asarray(X, np.float32) - a["mean"]) / a["scale"]
        logits = Z @ a["coef"].T + a["intercept"]
        if logits.shape[1] == 1:  # binary logistic regression keeps one column
            logits = np.hstack([-logits, logits])
        return _softmax(logits)


def constant_head(y: Sequence[str], classes: Sequence[str]) -> Head:
    """A head for the single-class case: predicts the only class seen."""
    n = len(y)
    proba = np.array([(n + 1) / (n + 2)], np.float32)
    return ConstantHead([y[0]], {"proba": proba})


@register_head("logreg")
def fit_logreg(
    X: np.ndarray,
    y: Sequence[str],
    classes: Sequence[str],
    *,
    unlabeled: np.ndarray | None = None,
    unlabeled_ids: np.ndarray | None = None,
    C: float = 1.0,
) -> Head:
    """Fit multinomial logistic regression on the labeled embeddings.

    Only classes that have labels become outputs; the order follows the label config's ``classes``.
    """
    from sklearn.linear_model import LogisticRegression

    seen = [c for c in classes if c in set(y)] or sorted(set(y))
    if len(seen) < 2:
        return constant_head(list(y), classes)
    X = np.asarray(X, np.float32)
    mean = X.mean(axis=0)
    scale = X.std(axis=0) + 1e-6
    index = {c: i for i, c in enumerate(seen)}
    target = np.array([index[v] for v in y])
    model = LogisticRegression(C=C, max_iter=1000)
    model.fit((X - mean) / scale, target)
    return LinearHead(
        seen,
        {
            "mean": mean,
            "scale": scale.astype(np.float32),
            "coef": model.coef_.astype(np.float32),
            "intercept": model.intercept_.astype(np.float32),
        },
    )


def fit_head(
    kind: str,
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
    _load_plugins()
    if kind not in HEADS:
        raise ValueError(f"unknown head {kind!r}; known: {', '.join(sorted(HEADS))}")
    if len(y) == 0:
        raise ValueError("no labeled embeddings to fit a head on")
    return HEADS[kind](X, y, classes, unlabeled=unlabeled, unlabeled_ids=unlabeled_ids)
