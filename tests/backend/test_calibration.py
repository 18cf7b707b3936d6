"""Calibrated scores: held-out refits -> a monotone map in the version's meta; per-bin evidence; thresholds;
bulk-accepted labels are no evidence and (by default) do not train."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from backend.calibration import (
    BIN_EDGES,
    Evidence,
    bin_of,
    calibrate,
    fit_calibration,
    lower_bound,
    pick_threshold,
    pick_threshold_expected,
)
from backend.config import Config
from backend.evaluation import evaluation_summary, record_outcome
from backend.heads import fit_head
from backend.training import train_project
from tests.conftest import load_fixture


def overlapping(n: int, seed: int) -> tuple[np.ndarray, list[str]]:
    """Two heavily overlapping classes in many dimensions: logistic regression is over-confident."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    X = rng.normal(0, 1, (n, 40)) + 0.35 * y[:, None]
    return X.astype(np.float32), ["a" if v == 0 else "b" for v in y]


def test_calibration_lowers_the_calibration_error_of_an_over_confident_head() -> None:
    X, y = overlapping(300, 0)
    Xt, yt = overlapping(3000, 1)

    def fit(*a, **kw):
        return fit_head("logreg", *a, **kw)

    cal = fit_calibration(fit, X, y, ["a", "b"], np.arange(300), folds=5)
    assert cal is not None and cal["method"] in ("isotonic", "platt") and cal["labels"] == 300
    assert np.all(np.diff(cal["y"]) >= 0)  # monotone
    head = fit(X, y, ["a", "b"])
    pred, raw = head.predict(Xt)
    right = np.asarray(pred) == np.asarray(yt)
    raw_ece = Evidence.of(raw.astype(float), right).ece()
    cal_ece = Evidence.of(calibrate({"calibration": cal}, raw).astype(float), right).ece()
    assert raw_ece > 0.05 and cal_ece < raw_ece / 2


def test_both_maps_calibrate_and_auto_picks_one() -> None:
    X, y = overlapping(300, 0)
    Xt, yt = overlapping(3000, 1)

    def fit(*a, **kw):
        return fit_head("logreg", *a, **kw)

    _, raw = fit(X, y, ["a", "b"]).predict(Xt)
    pred, _ = fit(X, y, ["a", "b"]).predict(Xt)
    right = np.asarray(pred) == np.asarray(yt)
    for method in ("isotonic", "platt"):
        cal = fit_calibration(fit, X, y, ["a", "b"], np.arange(300), method=method)
        assert cal["method"] == method and np.all(np.diff(cal["y"]) >= -1e-9)
        assert Evidence.of(calibrate({"calibration": cal}, raw).astype(float), right).ece() < 0.06


def test_too_few_labels_serve_raw_scores() -> None:
    X, y = overlapping(10, 0)
    assert fit_calibration(lambda *a, **kw: fit_head("logreg", *a, **kw), X, y, ["a", "b"], np.arange(10)) is None
    s = np.array([0.7, 0.9], np.float32)
    assert np.array_equal(calibrate({"calibration": None}, s), s) and np.array_equal(calibrate({}, s), s)


def test_bins_and_thresholds_follow_the_evidence() -> None:
    assert bin_of(0.3) == "0" and bin_of(0.995) == "0.995" and bin_of(1.0) == "0.999" and bin_of(0.9899) == "0.98"
    # 600 right above 0.99, then 100 with 10 wrong in [0.98, 0.99): only scores >= 0.995 keep a 0.99 bound.
    scores = np.r_[np.full(600, 0.995), np.full(100, 0.985)]
    right = np.r_[np.ones(600, bool), np.arange(100) >= 10]
    ev = Evidence.of(scores, right)
    t, lb = pick_threshold(ev, 0.99)
    assert t == 0.995 and lb >= 0.99  # the 0.99 bin is empty: its edge is no better than 0.995
    assert pick_threshold(ev, 0.9)[0] == 0.98  # not lower: no evidence below 0.98
    assert pick_threshold(Evidence.of(np.full(50, 0.999), np.ones(50, bool)), 0.99)[0] is None  # too little
    assert lower_bound(0, 0) == 0.0 and lower_bound(299, 299) > 0.99 > lower_bound(290, 290)
    assert len(ev.table()) == 2 and abs(ev.table()[0]["observed"] - 0.9) < 1e-9


def test_expected_precision_threshold_needs_both_the_pool_and_the_evidence() -> None:
    # Evidence: 99.5% right above 0.98, 90% in [0.9, 0.95). Pool: calibrated scores of unlabeled tasks.
    ev = Evidence.of(np.r_[np.full(200, 0.985), np.full(100, 0.92)],
                     np.r_[np.arange(200) > 0, np.arange(100) >= 10])
    pool = np.r_[np.full(800, 0.999), np.full(200, 0.93)]
    t, expected = pick_threshold_expected(ev, pool, 0.99)
    assert t == 0.98 and expected == pytest.approx(0.999)  # 0.9 would give the pool 0.985 and evidence 0.963
    assert pick_threshold_expected(ev, pool, 0.98)[0] == 0.98  # pool alone at t=0.9 is 0.985, evidence is not
    assert pick_threshold_expected(ev, np.full(5, 0.96), 0.99)[0] is None  # no task of the pool at >= 0.98


def test_training_stores_a_calibration_and_predict_serves_calibrated_scores(store, seeded_project, config) -> None:
    seeded = seeded_project(n=120)
    for i in range(100):
        store.record_annotation(1, i + 1, seeded["ids"][i], seeded["y"][i])
    res = train_project(store, Config(redis_url=config.redis_url, head="logreg"), 1)
    meta = store.head(1, res.version).meta
    cal = meta["calibration"]
    assert cal["labels"] == 100 and cal["x"] and sum(cal["evidence"]["n"]) == 100
    store.record_annotation(1, 101, seeded["ids"][100], seeded["y"][100])
    again = train_project(store, Config(redis_url=config.redis_url, head="logreg"), 1)
    assert store.head(1, again.version).meta["calibration"] == {**cal, "reused": True}  # 101 labels: < 10% more
    store.record_annotation(1, 102, seeded["ids"][101], seeded["y"][101])
    refit = train_project(store, Config(redis_url=config.redis_url, head="logreg", calibration_growth=0), 1)
    assert store.head(1, refit.version).meta["calibration"]["labels"] == 102
    store.record_annotation(1, 103, seeded["ids"][102], seeded["y"][102])
    off = train_project(store, Config(redis_url=config.redis_url, head="logreg", calibration_folds=0), 1)
    assert store.head(1, off.version).meta["calibration"] is None


def test_served_scores_are_counted_per_bin_and_bulk_accepts_are_no_evidence(store) -> None:
    store.record_served(1, {t: {"version": "v1", "label": "one", "score": s, "bin": bin_of(s)}
                            for t, s in ((1, 0.995), (2, 0.995), (3, 0.6), (4, 0.995))})
    assert record_outcome(store, 1, 1, "one") == "accepted"
    assert record_outcome(store, 1, 2, "two") == "corrected"
    assert record_outcome(store, 1, 3, "one") == "accepted"
    assert store.record_outcome(1, 4, "one", bulk=True) == "bulk"
    assert record_outcome(store, 1, 4, "two") is None  # a later edit of a bulk label is no evidence either
    total = evaluation_summary(store, 1)["total"]
    assert (total["evaluated"], total["bulk"]) == (3, 1)
    rows = {r["bin"]: r for r in total["reliability"]}
    assert rows["0.995"]["n"] == 2 and rows["0.995"]["observed"] == 0.5
    assert abs(rows["0.995"]["expected"] - 0.995) < 1e-9 and rows["0.5"]["n"] == 1
    assert len(BIN_EDGES) == len(Evidence.from_counters({}).n)


def test_bulk_accepted_labels_are_marked_and_audited(client, store, seeded_project, annotation_event) -> None:
    seeded_project()
    store.record_served(1, {1: {"version": "v1", "label": "one", "score": 0.99, "bin": "0.99"},
                            2: {"version": "v1", "label": "two", "score": 0.99, "bin": "0.99"}})
    store.save_accept_run(1, {"target": 0.99}, audit=[2])
    body = copy.deepcopy(load_fixture("webhook_annotations_created")["body"])  # tasks 1, 2 from predictions
    reply = client.post("/webhook", json=body).json
    assert reply["detail"]["bulk_accepted"] == 2 and reply["detail"].get("predictions") == {"bulk": 2}
    assert store.bulk_tasks(1) == {1, 2}
    assert evaluation_summary(store, 1)["total"]["evaluated"] == 0
    # The auditor corrects task 2 (an update of the bulk annotation, single form): a verdict, not evidence.
    reply = client.post("/webhook", json=annotation_event(12, 2, "zero", action="ANNOTATION_UPDATED")).json
    assert reply["detail"]["bulk_reviewed"] == {"corrected": 1}
    assert store.bulk_tasks(1) == {1}
    assert store.accept_run(1)["audit_counts"] == {"pending": 0, "confirmed": 0, "corrected": 1}
    # One bulk-accepted label (task 1) stays out of training unless DALT_TRAIN_ON_BULK.
    config = Config(redis_url="unused://", head="logreg")
    for i in range(3, 30):
        store.record_annotation(1, 100 + i, i, ["zero", "one", "two"][i % 3])
    assert train_project(store, config, 1).labels == 28
    assert train_project(store, Config(redis_url="unused://", head="logreg", train_on_bulk=True), 1).labels == 29


def test_a_single_annotation_from_a_prediction_is_human_evidence(client, store, seeded_project,
                                                                 annotation_event) -> None:
    seeded_project()
    store.record_served(1, {5: {"version": "v1", "label": "one", "score": 0.9, "bin": "0.9"}})
    body = annotation_event(40, 5, "one")
    body["annotation"]["parent_prediction"] = 7  # the annotator submitted the pre-annotation
    reply = client.post("/webhook", json=body).json
    assert reply["detail"]["prediction"] == "accepted" and store.bulk_tasks(1) == set()


def test_metrics_expose_the_reliability_table(client, store, seeded_project, annotation_event) -> None:
    seeded_project()
    store.record_served(1, {t: {"version": "v1", "label": "one", "score": 0.995, "bin": "0.995"} for t in (1, 2)})
    client.post("/webhook", json=annotation_event(1, 1, "one"))
    client.post("/webhook", json=annotation_event(2, 2, "two"))
    text = client.get("/metrics").get_data(as_text=True)
    assert 'dalt_score_reliability{bin="0.995",project="1",stat="n"} 2.0' in text
    assert 'dalt_score_reliability{bin="0.995",project="1",stat="observed"} 0.5' in text
