"""Calibrated scores: the ``score`` DALT serves means what it says (of suggestions scored 0.99, ~99% are right).

Why: bulk accept picks a score threshold for a precision target; that only works if scores are
probabilities of being right. Heads are over-confident with few labels (label spreading most of all), so
at training time :func:`fit_calibration` refits the head ``folds`` times with one fold of the labels held
out (the head's OWN out-of-fold predictions, transductive heads included), and fits a monotone map from
the top-class probability to whether it was right: scikit-learn's
:class:`~sklearn.isotonic.IsotonicRegression` or Platt scaling (a logistic regression on the logit of the
probability), whichever has the lower cross-validated Brier score on those pairs. The map's knots (at
most a few hundred floats) go into the version's meta, so :func:`calibrate` costs one ``np.interp`` in
``/predict``. The held-out (calibrated score, correct) pairs are kept as per-bin
counts (:data:`BIN_EDGES`): the evidence ``dalt accept`` picks a threshold from, alongside the live
evaluation's per-bin counts from annotators (``Store.record_outcome``).

Scores are capped at ``1 - 1/(2 (n + 1))`` for ``n`` held-out labels: no finite evidence shows certainty.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from backend.heads import Head, fit_head

# Reads the graph lane's snapshot rows (values, found) of some task ids.
SpreadOf = Callable[[np.ndarray], "tuple[np.ndarray, np.ndarray]"]

# Lower edges of the score bins of the evidence and the reliability table (last bin: [0.999, 1]).
BIN_EDGES: tuple[float, ...] = (0.0, 0.5, 0.8, 0.9, 0.95, 0.97, 0.98, 0.99, 0.995, 0.998, 0.999)
MIN_LABELS = 20  # fewer labels: scores served raw (too few held-out points to fit a map)


def bin_of(score: float) -> str:
    """The lower edge of the bin ``score`` falls in, as the string the evaluation counters use."""
    i = int(np.searchsorted(BIN_EDGES, float(score), side="right")) - 1
    return f"{BIN_EDGES[max(i, 0)]:g}"


@dataclass
class Evidence:
    """Per-bin counts of (calibrated score, correct) pairs: ``n`` pairs, ``correct`` right, ``score_sum``."""

    n: np.ndarray
    correct: np.ndarray
    score_sum: np.ndarray

    @classmethod
    def empty(cls) -> Evidence:
        z = np.zeros(len(BIN_EDGES))
        return cls(z.copy(), z.copy(), z.copy())

    @classmethod
    def of(cls, scores: np.ndarray, correct: np.ndarray) -> Evidence:
        ev = cls.empty()
        idx = np.clip(np.searchsorted(BIN_EDGES, scores, side="right") - 1, 0, len(BIN_EDGES) - 1)
        np.add.at(ev.n, idx, 1)
        np.add.at(ev.correct, idx, correct.astype(float))
        np.add.at(ev.score_sum, idx, scores)
        return ev

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> Evidence:
        if not d:
            return cls.empty()
        return cls(*(np.asarray(d[k], float) for k in ("n", "correct", "score_sum")))

    @classmethod
    def from_counters(cls, counts: dict[str, float]) -> Evidence:
        """From live-evaluation counters ``bin:<edge>:accepted|corrected|score_sum`` (``Store.evaluation``)."""
        ev = cls.empty()
        for i, edge in enumerate(BIN_EDGES):
            b = f"bin:{edge:g}:"
            acc, cor = counts.get(b + "accepted", 0.0), counts.get(b + "corrected", 0.0)
            ev.n[i], ev.correct[i], ev.score_sum[i] = acc + cor, acc, counts.get(b + "score_sum", 0.0)
        return ev

    def __add__(self, other: Evidence) -> Evidence:
        return Evidence(self.n + other.n, self.correct + other.correct, self.score_sum + other.score_sum)

    def as_dict(self) -> dict[str, list[float]]:
        return {"n": self.n.tolist(), "correct": self.correct.tolist(),
                "score_sum": [round(float(s), 4) for s in self.score_sum]}

    def table(self) -> list[dict[str, Any]]:
        """The reliability table: per non-empty bin, pairs, mean score (expected) and share right (observed)."""
        rows = []
        for i, edge in enumerate(BIN_EDGES):
            if self.n[i]:
                rows.append({"bin": f"{edge:g}", "n": int(self.n[i]), "expected": float(self.score_sum[i] / self.n[i]),
                             "observed": float(self.correct[i] / self.n[i])})
        return rows

    def ece(self) -> float | None:
        """Expected calibration error over the bins (None without evidence)."""
        total = self.n.sum()
        if not total:
            return None
        return float(np.abs(self.score_sum - self.correct).sum() / total)


def lower_bound(correct: float, n: float, confidence: float = 0.95) -> float:
    """One-sided Clopper-Pearson lower bound on a success rate (0 for no trials)."""
    from scipy.stats import beta

    if n <= 0 or correct <= 0:
        return 0.0
    return float(beta.ppf(1 - confidence, correct, n - correct + 1))


def pick_threshold(ev: Evidence, target: float, confidence: float = 0.95) -> tuple[float | None, float]:
    """Lowest bin edge ``t`` whose evidence at scores >= t has a precision lower bound >= ``target``.

    Only edges of bins with evidence qualify (no extrapolation to scores never evaluated).

    Returns:
        ``(threshold or None when no edge qualifies, the lower bound at it or the best one seen)``.
    """
    best, chosen = 0.0, None
    for i in range(len(BIN_EDGES) - 1, -1, -1):  # from the top: evidence grows as t falls
        if not ev.n[i]:
            continue  # no evidence at these scores: never extrapolate below the lowest one seen
        lb = lower_bound(ev.correct[i:].sum(), ev.n[i:].sum(), confidence)
        if lb >= target:
            chosen, best = BIN_EDGES[i], lb
        elif chosen is None:
            best = max(best, lb)
    return chosen, best


def pick_threshold_expected(ev: Evidence, pool: np.ndarray, target: float) -> tuple[float | None, float]:
    """Lowest bin edge ``t`` where the accepted pool's mean calibrated score (its expected precision) and
    the evidence's observed precision at scores >= t both reach ``target``.

    Returns:
        ``(threshold or None, the pool's expected precision at it or 0)``.
    """
    pool = np.asarray(pool, float)
    chosen, expected = None, 0.0
    for i in range(len(BIN_EDGES) - 1, -1, -1):
        taken = pool >= BIN_EDGES[i]
        n, right = ev.n[i:].sum(), ev.correct[i:].sum()
        if not ev.n[i] or not taken.any():
            continue
        mean = float(pool[taken].mean())
        if mean >= target and right / n >= target:
            chosen, expected = BIN_EDGES[i], mean
    return chosen, expected


METHODS = ("expected", "bound")


def calibrate(meta: dict[str, Any] | None, scores: np.ndarray) -> np.ndarray:
    """Map a head's top-class probabilities through the version's calibration (unchanged without one)."""
    cal = (meta or {}).get("calibration")
    if not cal or not cal.get("x"):
        return scores
    return np.interp(np.asarray(scores, float), cal["x"], cal["y"]).astype(np.float32)


def _folds(y: np.ndarray, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    from sklearn.model_selection import KFold, StratifiedKFold

    _, counts = np.unique(y, return_counts=True)
    splitter = (StratifiedKFold(folds, shuffle=True, random_state=seed) if counts.min() >= folds
                else KFold(folds, shuffle=True, random_state=seed))
    return list(splitter.split(np.zeros(len(y)), y))


def out_of_fold(fit: Callable[..., Head], X: np.ndarray, y: Sequence[str], classes: Sequence[str],
                task_ids: np.ndarray, folds: int = 5, seed: int = 0, spread_of: SpreadOf | None = None,
                **fit_kwargs: Any) -> tuple[np.ndarray, np.ndarray]:
    """The head's top-class probability and whether it was right, for every label, fit without its fold.

    ``spread_of(ids)``: the graph lane's snapshot rows of ``ids`` for heads that average them in, so the held-out
    scores are the ones /predict would serve (the snapshot itself was spread from every label, held-out ones
    included: the study measures what that does to the realised precision).
    """
    yy = np.asarray(y)
    conf = np.zeros(len(yy), np.float64)
    right = np.zeros(len(yy), bool)
    for train, held in _folds(yy, folds, seed):
        head = fit(X[train], list(yy[train]), classes, **fit_kwargs)
        pred, p = head.predict(X[held], task_ids[held], spread_of(task_ids[held]) if spread_of else None)
        conf[held] = p
        right[held] = np.asarray(pred) == yy[held]
    return conf, right


def _isotonic(conf: np.ndarray, right: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.isotonic import IsotonicRegression

    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(conf, right.astype(float))
    return np.asarray(iso.X_thresholds_, float), np.asarray(iso.y_thresholds_, float)


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def _platt(conf: np.ndarray, right: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Platt scaling on the logit of the confidence, as knots on a grid (so applying it is ``np.interp``)."""
    from sklearn.linear_model import LogisticRegression

    if right.all() or not right.any():
        return _isotonic(conf, right)
    lr = LogisticRegression(C=1e4).fit(_logit(conf)[:, None], right.astype(int))
    grid = np.r_[np.linspace(0, 1, 101), 1 - np.logspace(-6, -2, 41), np.quantile(conf, np.linspace(0, 1, 51))]
    xs = np.unique(grid)
    return xs, lr.predict_proba(_logit(xs)[:, None])[:, 1]


FITS = {"isotonic": _isotonic, "platt": _platt}


def _choose(conf: np.ndarray, right: np.ndarray, seed: int) -> str:
    """The map with the lower Brier score in 2-fold cross-validation over the held-out pairs."""
    rng = np.random.default_rng(seed)
    half = rng.permutation(len(conf)) % 2 == 0
    loss = {}
    for name, fit in FITS.items():
        err = 0.0
        for a in (half, ~half):
            xs, ys = fit(conf[a], right[a])
            err += float(((np.interp(conf[~a], xs, ys) - right[~a]) ** 2).sum())
        loss[name] = err
    return min(loss, key=loss.__getitem__)


def fit_calibration(fit: Callable[..., Head], X: np.ndarray, y: Sequence[str], classes: Sequence[str],
                    task_ids: np.ndarray, folds: int = 5, seed: int = 0, method: str = "auto",
                    **fit_kwargs: Any) -> dict[str, Any] | None:
    """The ``calibration`` entry of a version's meta (None with fewer than :data:`MIN_LABELS` labels or
    ``folds < 2``): the map's knots ``x``/``y``, held-out evidence per bin, its ECE, and the seconds spent.

    Args:
        method: ``isotonic``, ``platt``, or ``auto`` (the one with the lower cross-validated Brier score
            on the held-out pairs; fitting either map costs microseconds next to the head refits).
    """
    if folds < 2 or len(y) < max(MIN_LABELS, folds) or len(set(y)) < 2:
        return None
    t0 = time.perf_counter()
    order = np.argsort(task_ids, kind="stable")  # folds depend on the labels, not on Redis's hash order
    X, y, task_ids = X[order], [y[i] for i in order], task_ids[order]
    conf, right = out_of_fold(fit, X, y, classes, task_ids, folds, seed, **fit_kwargs)
    chosen = _choose(conf, right, seed) if method == "auto" else method
    xs, ys = FITS[chosen](conf, right)
    cap = 1.0 - 0.5 / (len(conf) + 1)
    ys = np.minimum(ys, cap)
    meta = {"x": [round(float(v), 6) for v in xs], "y": [round(float(v), 6) for v in ys]}
    calibrated = calibrate({"calibration": meta}, conf)
    ev = Evidence.of(calibrated.astype(float), right)
    raw_ev = Evidence.of(conf, right)
    return {"method": chosen, "folds": folds, "labels": len(conf), **meta, "evidence": ev.as_dict(),
            "ece": ev.ece(), "raw_ece": raw_ev.ece(), "seconds": round(time.perf_counter() - t0, 4)}


def reusable(previous: Sequence[dict[str, Any]], labels: int, head: str, encoder_version: str,
             growth: float) -> dict[str, Any] | None:
    """The newest kept version's calibration when it still speaks for this fit (same head kind and encoder,
    labels grew by at most ``growth`` since it was fit and did not shrink), marked ``reused``; else None.

    Why: the held-out refits cost ``folds`` head fits per version; the map moves little between versions a
    few labels apart, so it is refit only when the labels grew by ``growth`` (``DALT_CALIBRATION_GROWTH``).
    """
    for meta in previous[:1]:
        cal = meta.get("calibration")
        if (cal and growth > 0 and meta.get("head") == head and meta.get("encoder_version") == encoder_version
                and cal["labels"] <= labels <= cal["labels"] * (1 + growth)):
            return {**cal, "reused": True}
    return None


def _snapshot_rows(store: Any, pid: int, head: Head) -> SpreadOf | None:
    """Reader of the snapshot rows ``head`` averages in (None for heads without a snapshot)."""
    snap = int(getattr(head, "snapshot", 0) or 0)
    if not snap:
        return None
    classes = int(head.snapshot_classes)
    return lambda ids: store.snapshot_rows(pid, snap, ids, classes)


def version_calibration(store: Any, config: Any, pid: int, head: Head, encoder_version: str, X: np.ndarray,
                        y: Sequence[str], task_ids: np.ndarray, bulk: set[int], **fit_kwargs: Any) -> dict | None:
    """The calibration a new version of ``pid`` carries (training's one call): the previous version's when
    :func:`reusable`, else a fresh :func:`fit_calibration` on the HUMAN labels (bulk-accepted ones never
    calibrate); None with ``DALT_CALIBRATION_FOLDS`` below 2.

    Args:
        store: ``backend.store.Store``; config: ``backend.config.Config`` (``head``, ``calibration_*``).
    """
    if config.calibration_folds < 2:
        return None
    human = ~np.isin(task_ids, np.fromiter(bulk, np.int64, len(bulk)))
    return reusable(store.versions(pid), int(human.sum()), head.kind, encoder_version,
                    config.calibration_growth) or fit_calibration(
        lambda *a, **kw: fit_head(config.head, *a, **kw), X[human], [v for v, h in zip(y, human, strict=True) if h],
        head.classes, task_ids[human], folds=config.calibration_folds, spread_of=_snapshot_rows(store, pid, head),
        **fit_kwargs)
