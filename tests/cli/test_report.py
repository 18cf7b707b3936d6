"""``dalt report`` prints the live evaluation recorded in Redis (backend.report)."""

from __future__ import annotations

import json

from backend.cli import main as dalt
from backend.store import keys


def _seed(store) -> None:
    store.save_project(7, title="digits")
    store.record_served(7, {1: {"version": "v1", "label": "a", "score": 0.9},
                            2: {"version": "v1", "label": "b", "score": 0.9},
                            3: {"version": "v2", "label": "a", "score": 0.9}})
    store.record_outcome(7, 1, "a", 2.0)
    store.record_outcome(7, 2, "a", 8.0)
    store.record_outcome(7, 3, "a", 3.0)


def test_report_prints_versions_rates_and_lead_times(store, redis_server, capsys) -> None:
    _seed(store)
    store.save_project(8)
    assert dalt(["report", "--redis-url", redis_server]) == 0
    out = capsys.readouterr().out
    lines = {line.split()[0]: line.split() for line in out.splitlines() if line.startswith("  v") or "  all" in line}
    assert lines["v1"][1:5] == ["2", "1", "1", "50.0%"] and lines["v1"][5:] == ["2.0", "8.0"]
    assert lines["v2"][1:5] == ["1", "1", "0", "100.0%"]
    assert "project 8" in out and "no annotation has been compared" in out
    assert "2 project(s), 3 annotations evaluated, 66.7% of predictions accepted" in out


def test_report_json_for_one_project(store, redis_server, capsys) -> None:
    _seed(store)
    assert dalt(["report", "--redis-url", redis_server, "--project", "7", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["7"]["total"]["accepted"] == 2 and data["7"]["versions"]["v1"]["lead_time_corrected_mean"] == 8.0


def test_report_shows_reliability_and_the_audited_error_next_to_the_promised_one(store, redis_server, capsys) -> None:
    store.save_project(7, title="digits")
    store.record_served(7, {t: {"version": "v1", "label": "a", "score": 0.995, "bin": "0.995"} for t in range(1, 5)})
    for t in range(1, 4):
        store.record_outcome(7, t, "a")
    store.record_outcome(7, 4, "b")
    store.save_accept_run(7, {"version": "v1", "target": 0.99, "threshold": 0.995, "accepted": 400,
                              "promised_error_rate": 0.01, "expected_wrong": 2.0, "audit_size": 3}, [11, 12, 13])
    store.r.hset(keys.bulk_tasks(7), mapping={11: "a", 12: "a"})
    batch = store.batch()
    store.review_bulk_in(batch, 7, 11, "b")  # the auditor corrected one accepted label, confirmed another
    store.review_bulk_in(batch, 7, 12, "a")
    batch.execute()
    assert dalt(["report", "--redis-url", redis_server, "--project", "7"]) == 0
    out = capsys.readouterr().out
    row = next(line.split() for line in out.splitlines() if line.startswith("  0.995"))
    assert row == ["0.995", "4", "99.5%", "75.0%"]
    assert "promised error 1.0%" in out and "2 of 3 reviewed, 1 corrected; realised error 50.0%" in out
