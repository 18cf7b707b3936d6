"""``dalt study --quick`` end to end on scikit-learn digits: real Redis, training and predict paths."""

from __future__ import annotations

import json

import pytest

from backend.cli import main as dalt
from backend.study.options import QUICK_METHODS, StudyOptions
from backend.study.output import merge_reports
from backend.study.replay import labels_to_reach, should_train


@pytest.fixture(scope="module")
def quick_report(tmp_path_factory, redis_server):
    out = tmp_path_factory.mktemp("study")
    argv = ["study", "--dataset", "digits", "--quick", "--limit", "160", "--epochs", "1", "--no-progress",
            "--methods", "raw+lr,contrastive+spread,contrastive+spread+coldstart",
            "--redis-url", redis_server, "--json", str(out / "digits.json"), "--plot", str(out)]
    assert dalt(argv) == 0
    report = json.loads((out / "digits.json").read_text())
    return report, out


def test_quick_study_writes_the_required_json(quick_report) -> None:
    report, out = quick_report
    data = json.loads((out / "digits.json").read_text())
    assert 0.0 <= data["acceptance_rate"] <= 1.0
    assert data["default_method"] == "contrastive+spread"
    curve = data["rest_accuracy"]
    assert curve and all(0.0 <= v <= 1.0 for v in curve.values())
    assert {"10", "50", "100"} <= set(curve)  # checkpoints always get a head
    assert set(data["methods"]) == {"raw+lr", "contrastive+spread", "contrastive+spread+coldstart"}
    for m in data["methods"].values():
        assert m["tasks"] == 160 and m["accepted"] + m["corrected"] == 160
        assert len(m["acceptance_per_block"]) == 2  # blocks of 100 in quick mode
        assert set(m["labels_to_reach"]) == {"0.90", "0.95", "0.97"}
    # Bulk accept at the 100-label checkpoint (the only one below 160 tasks), for both targets.
    bulk = data["bulk_accept"]["100"]
    assert set(bulk) == {"0.99", "0.995"}
    for v in bulk.values():
        assert set(v) == {"threshold", "coverage", "realised_precision"} and 0.0 <= v["coverage"] <= 1.0
    detail = data["methods"]["contrastive+spread"]["bulk_accept"]["100"]
    assert detail["remaining"] == 60 and detail["evidence"] > 0
    # Digits are easy: far better than chance (10%) with a hundred labels, whatever the method.
    assert data["methods"]["raw+lr"]["acceptance_rate"] > 0.6


def test_live_evaluation_saw_what_the_replay_saw(quick_report) -> None:
    report, _ = quick_report
    for m in report["methods"].values():
        live = m["live_evaluation"]
        # Only the very first task had no head to suggest anything.
        assert live["evaluated"] == m["tasks"] - 1
        assert live["accepted"] == m["accepted"]


def test_plots_are_png_files(quick_report) -> None:
    report, out = quick_report
    assert sorted(p.name for p in out.glob("*.png")) == ["digits_acceptance.png", "digits_learning.png",
                                                          "digits_reliability.png"]
    for p in out.glob("*.png"):
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_retraining_rule_and_labels_to_reach() -> None:
    assert all(should_train(n, n - 1, 100, 0.05) for n in range(1, 101))
    assert not should_train(101, 100, 100, 0.05) and should_train(105, 100, 100, 0.05)
    assert should_train(1000, 990, 100, 0.05)  # a checkpoint
    assert labels_to_reach({10: 0.5, 20: 0.91, 30: 0.89, 40: 0.96}, 0.9) == 20
    assert labels_to_reach({10: 0.5}, 0.9) is None


def test_quick_options_shrink_the_run_and_unknown_methods_are_refused() -> None:
    quick = StudyOptions(dataset="digits", quick=True).resolved()
    assert quick.methods == QUICK_METHODS
    assert (quick.limit, quick.epochs, quick.block, quick.eager, quick.growth) == (400, 3, 100, 50, 0.1)
    full = StudyOptions(dataset="digits").resolved()
    assert (full.limit, full.epochs, full.block, full.eager, full.growth) == (None, None, 500, 100, 0.05)
    assert len(full.methods) == 8
    with pytest.raises(ValueError, match="unknown method"):
        StudyOptions(dataset="digits", methods=("raw+lr", "nope"))


def test_merge_combines_runs_split_by_method_and_refuses_other_runs(quick_report, tmp_path) -> None:
    report, out = quick_report
    data = json.loads((out / "digits.json").read_text())
    a = dict(data, methods={"raw+lr": data["methods"]["raw+lr"]}, wall_seconds=5.0)
    b = dict(data, methods={k: v for k, v in data["methods"].items() if k != "raw+lr"}, wall_seconds=7.0)
    (tmp_path / "a.json").write_text(json.dumps(a))
    (tmp_path / "b.json").write_text(json.dumps(b))
    assert dalt(["study", "--merge", str(tmp_path / "b.json"), str(tmp_path / "a.json"),
                 "--json", str(tmp_path / "m.json")]) == 0
    merged = json.loads((tmp_path / "m.json").read_text())
    assert list(merged["methods"]) == ["raw+lr", "contrastive+spread", "contrastive+spread+coldstart"]
    assert merged["acceptance_rate"] == data["acceptance_rate"] and merged["wall_seconds"] == 7.0
    assert merged["rest_accuracy"] == data["rest_accuracy"]
    (tmp_path / "c.json").write_text(json.dumps(dict(a, tasks=999)))
    with pytest.raises(ValueError, match="tasks"):
        merge_reports([tmp_path / "a.json", tmp_path / "c.json"], "contrastive+spread")
    assert dalt(["study", "--merge", str(tmp_path / "a.json"), str(tmp_path / "c.json")]) == 1


def test_bulk_accept_table_has_a_row_per_checkpoint_and_says_none_where_nothing_is_accepted() -> None:
    from backend.study.output import bulk_accept_table

    hit = {"threshold": 0.97, "coverage": 0.7, "realised_precision": 0.992, "wrong": 26, "accepted": 3431}
    miss = {"threshold": None, "coverage": 0.0, "realised_precision": None, "wrong": 0, "accepted": 0}
    checkpoint = {"remaining": 4900, "ece": 0.011, "raw_ece": 0.139, "method": "expected",
                  "targets": {"0.99": hit, "0.995": miss}, "other_methods": {"bound": {"0.99": miss, "0.995": miss}}}
    report = {"default_method": "m", "methods": {"m": {"bulk_accept": {"100": checkpoint, "500": checkpoint}}}}
    lines = bulk_accept_table(report).splitlines()
    assert lines[0] == ("| human labels | remaining | ECE (raw scores) | `expected` 0.99 | `expected` 0.995 "
                        "| `bound` 0.99 | `bound` 0.995 |")
    assert len(lines) == 4
    assert lines[2] == "| 100 | 4900 | 1.1% (13.9%) | 0.97 / 70.0% / 99.2% (26 of 3431) | none | none | none |"
    assert bulk_accept_table({"default_method": "m", "methods": {"m": {}}}) == ""
