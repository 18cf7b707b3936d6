"""The default head: logistic regression averaged with the latest spread snapshot (the two lanes).

Why: label spreading over every task makes the suggestions much better with few labels (the labeling
study), but rebuilding it on every label made one annotation cost O(project). So the work is split:

* the fast lane (every label, ``backend.training``) fits logistic regression on the labels only (tens of
  milliseconds) and publishes a head that NAMES the newest spread snapshot; it holds no per-task data, so a
  version costs a few kB whatever the project's size;
* the graph lane (``backend.graphlane``, in the background) propagates the labels over the stored
  neighbour graph and writes a new snapshot of every task's distribution once, in Redis.

``/predict`` reads the requested tasks' snapshot rows from Redis with their embeddings and averages them
with the regression's probabilities, as the rebuild-per-fit ``spreading-rebuild`` head does with the
distributions it carries. Tasks the snapshot lacks (created since, or a deleted snapshot) get the
logistic regression alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from backend.heads.base import Head
from backend.heads.logreg import LogRegHead, fit_logreg

SPREAD_WEIGHT = 0.5


class SnapshotSpreadingHead(Head):
    """Logistic regression + the rows of spread snapshot ``snapshot`` (0: none yet), see the module docstring.

    Arrays: the regression's, ``snapshot`` (int), ``weight`` (the snapshot's share), ``columns`` (for each
    snapshot class, its column among this head's classes) and ``snapshot_classes`` (their count).
    """

    kind = "spread_snapshot"

    @property
    def snapshot(self) -> int:
        """The snapshot id whose rows this head averages in (0: none)."""
        return int(self.arrays["snapshot"])

    @property
    def snapshot_classes(self) -> int:
        """How many classes the snapshot's rows hold (what a row read needs)."""
        return int(len(self.arrays["columns"]))

    def predict_proba(self, X: np.ndarray, task_ids: np.ndarray | None = None,
                      spread: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
        """Probabilities; ``spread`` = ``(rows [n, snapshot classes], found)`` read from the snapshot."""
        a = self.arrays
        proba = LogRegHead(self.classes, {k: a[k] for k in ("mean", "scale", "coef", "intercept")}).predict_proba(X)
        if spread is None or self.snapshot == 0 or len(proba) == 0:
            return proba
        rows, found = spread
        rows = np.asarray(rows, np.float32)
        found = np.asarray(found, bool) & (rows.sum(axis=1) > 0)
        if found.any():
            full = np.zeros((int(found.sum()), len(self.classes)), np.float32)
            full[:, a["columns"]] = rows[found]
            w = float(a["weight"])
            proba[found] = (1 - w) * proba[found] + w * full
        return proba


def fit_snapshot_spreading(X: np.ndarray, y: Sequence[str], classes: Sequence[str], *,
                           snapshot: Mapping[str, Any] | None = None, weight: float = SPREAD_WEIGHT,
                           **_: Any) -> Head:
    """Fit logistic regression on the labels and name ``snapshot`` (its metadata) as the spread to average in.

    The snapshot is used when its classes are among the regression's (a class labeled for the first time
    since the snapshot only gets the regression's share until the graph lane catches up).
    """
    lr = fit_logreg(X, y, classes)
    if not isinstance(lr, LogRegHead):
        return lr
    snap, columns = 0, np.zeros(0, np.int64)
    if snapshot and set(snapshot.get("classes", [])) <= set(lr.classes) and snapshot.get("classes"):
        snap = int(snapshot["snapshot"])
        columns = np.array([lr.classes.index(c) for c in snapshot["classes"]], np.int64)
    arrays = dict(lr.arrays, snapshot=np.array(snap, np.int64), weight=np.array(weight, np.float32),
                  columns=columns)
    return SnapshotSpreadingHead(lr.classes, arrays)
