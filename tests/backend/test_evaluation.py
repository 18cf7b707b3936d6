"""Live evaluation: accepted/corrected per served version, lead times, once per suggestion, /metrics."""

from __future__ import annotations

from backend.evaluation import evaluation_summary, record_outcome
from tests.conftest import run_jobs


def test_outcomes_are_counted_per_version_once_per_suggestion(store) -> None:
    store.record_served(1, {10: {"version": "v1", "label": "one", "score": 0.9},
                            11: {"version": "v1", "label": "two", "score": 0.6},
                            12: {"version": "v2", "label": "zero", "score": 0.8}})
    assert record_outcome(store, 1, 10, "one", lead_time=2.0) == "accepted"
    assert record_outcome(store, 1, 11, "one", lead_time=6.0) == "corrected"
    assert record_outcome(store, 1, 12, "zero", lead_time=4.0) == "accepted"
    assert record_outcome(store, 1, 10, "two", lead_time=9.0) is None  # an update: counted once
    assert record_outcome(store, 1, 99, "one") is None  # nothing served
    assert record_outcome(store, 1, 11, None) is None  # cancelled annotation
    s = evaluation_summary(store, 1)
    assert list(s["versions"]) == ["v1", "v2"]
    v1 = s["versions"]["v1"]
    assert (v1["accepted"], v1["corrected"], v1["acceptance_rate"]) == (1, 1, 0.5)
    assert v1["lead_time_accepted_mean"] == 2.0 and v1["lead_time_corrected_mean"] == 6.0
    total = s["total"]
    assert (total["accepted"], total["corrected"], total["evaluated"]) == (2, 1, 3)
    assert total["lead_time_accepted_mean"] == 3.0


def test_a_new_suggestion_is_evaluated_again_and_bad_lead_times_are_ignored(store) -> None:
    store.record_served(1, {10: {"version": "v1", "label": "one", "score": 0.9}})
    assert record_outcome(store, 1, 10, "one", lead_time=float("nan")) == "accepted"
    store.record_served(1, {10: {"version": "v3", "label": "two", "score": 0.7}})
    assert record_outcome(store, 1, 10, "one", lead_time="slow") == "corrected"
    s = evaluation_summary(store, 1)
    assert s["versions"]["v3"]["corrected"] == 1 and s["total"]["lead_time_accepted_count"] == 0


def test_webhook_records_outcomes_and_metrics_expose_them(client, annotation_event, seeded_project, store,
                                                           ls_payload) -> None:
    seeded = seeded_project()
    for i in range(10):
        resp = client.post("/webhook", json=annotation_event(i + 1, seeded["ids"][i], seeded["y"][i]))
        assert resp.status_code == 200
    run_jobs(store)
    body = ls_payload("predict_request_single_task")
    body["tasks"] = [dict(body["tasks"][0], id=t) for t in seeded["ids"][10:14]]
    results = client.post("/predict", json=body).json["results"]
    served = [r["result"][0]["value"]["choices"][0] for r in results]
    # Task 11 gets its suggested label, task 12 a different one; lead_time comes from the payload (2.5 s).
    other = next(c for c in ("zero", "one", "two") if c != served[1])
    r1 = client.post("/webhook", json=annotation_event(101, seeded["ids"][10], served[0])).json
    r2 = client.post("/webhook", json=annotation_event(102, seeded["ids"][11], other)).json
    assert r1["detail"]["prediction"] == "accepted" and r2["detail"]["prediction"] == "corrected"
    v = results[0]["model_version"]
    summary = evaluation_summary(store, 1)["versions"][v]
    assert (summary["accepted"], summary["corrected"]) == (1, 1)
    text = client.get("/metrics").get_data(as_text=True)
    assert f'dalt_predictions_evaluated_total{{outcome="accepted",project="1",version="{v}"}} 1.0' in text
    assert f'dalt_acceptance_rate{{project="1",version="{v}"}} 0.5' in text
    assert 'dalt_acceptance_rate{project="1",version="all"} 0.5' in text
    assert "dalt_annotation_lead_time_seconds_count" in text
