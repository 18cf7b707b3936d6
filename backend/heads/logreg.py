"""Multinomial logistic regression on standardized embeddings: the paper's real-time head.

Refitting takes milliseconds for hundreds of labels, which is what makes a new version per label cheap.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from backend.heads.base import Head, constant_head, softmax


class LogRegHead(Head):
    """Logistic regression over standardized embeddings. Blobs of the old kind name ``"linear"`` load too."""

    kind = "logreg"

    def predict_proba(self, X: np.ndarray, task_ids: np.ndarray | None = None) -> np.ndarray:
        a = self.arrays
        Z = (np.asarray(X, np.float32) - a["mean"]) / a["scale"]
        logits = Z @ a["coef"].T + a["intercept"]
        if logits.shape[1] == 1:  # binary logistic regression keeps one column
            logits = np.hstack([-logits, logits])
        return softmax(logits)


def fit_logreg(
    X: np.ndarray,
    y: Sequence[str],
    classes: Sequence[str],
    *,
    unlabeled: np.ndarray | None = None,
    unlabeled_ids: np.ndarray | None = None,
    C: float = 1.0,
) -> Head:
    """Fit multinomial logistic regression on the labeled embeddings (``unlabeled*`` are not used).

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
    return LogRegHead(
        seen,
        {
            "mean": mean,
            "scale": scale.astype(np.float32),
            "coef": model.coef_.astype(np.float32),
            "intercept": model.intercept_.astype(np.float32),
        },
    )
