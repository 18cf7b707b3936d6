"""``dalt bench --quick``: the whole benchmark runs end to end and writes its JSON (no timing asserts)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

DALT = Path(sys.executable).parent / "dalt"  # the console script of the environment running the tests
SECTIONS = {"predict", "webhook", "freshness", "training", "encoding", "memory", "scaleout"}


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess, dict]:
    """One ``--quick`` run of every benchmark (a few minutes on two shared cores)."""
    out = tmp_path_factory.mktemp("bench") / "bench.json"
    proc = subprocess.run(
        [str(DALT), "bench", "--quick", "--no-progress", "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=900, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc, json.loads(Path(out).read_text())


def test_quick_run_writes_every_section(quick_run: tuple[subprocess.CompletedProcess, dict]) -> None:
    _, data = quick_run
    assert data["quick"] is True
    assert set(data["results"]) == SECTIONS
    assert data["errors"] == {}
    assert {"cpu", "cores", "memory_gib"} <= set(data["machine"])


def test_quick_run_has_the_expected_numbers(quick_run: tuple[subprocess.CompletedProcess, dict]) -> None:
    _, data = quick_run
    r = data["results"]
    for side in ("dalt", "floor"):
        assert {"1", "100"} <= set(r["predict"][side])
        assert {"p50_ms", "p99_ms", "tasks_per_s"} <= set(r["predict"][side]["1"])
    assert {"dalt", "sync_training", "dalt_training_runs"} <= set(r["webhook"])
    assert r["webhook"]["dalt_last_head_labels"] == r["webhook"]["n"]  # the last head saw every label
    assert {"median_s", "max_s", "samples_s"} <= set(r["freshness"]["100"])
    assert all("median_s" in v for v in r["freshness"]["plain_rq_worker"].values())
    assert r["training"]["compare"] and r["training"]["head_fit"]
    assert {"floor_images_per_s", "rq_fanout_images_per_s", "ratio_to_floor"} <= set(r["encoding"])
    assert r["memory"]["raw_bytes"] == 64 and r["memory"]["bytes_per_embedding_info_delta"] > 0
    assert set(r["scaleout"]["seconds"]) == {"1", "2"}
    goals = {g["goal"] for g in data["goals"]}
    assert any("p99" in g for g in goals) and any("floor" in g for g in goals)


def test_quick_run_prints_the_table(quick_run: tuple[subprocess.CompletedProcess, dict]) -> None:
    proc, data = quick_run
    assert "| benchmark | measure | DALT | baseline / ratio |" in proc.stdout
    assert data["table_markdown"] in proc.stdout
    assert proc.stdout.strip().splitlines()[-1].startswith("bench: 7/7 benchmarks ran")


def test_every_benchmark_is_listed_once_and_importable() -> None:
    import importlib

    from backend.bench.runner import BENCHES, check_names

    assert set(BENCHES) == SECTIONS | {"scale"}  # scale runs only when named (tests/bench/test_scale.py)
    for module, func in BENCHES.values():
        assert callable(getattr(importlib.import_module(module), func))
    with pytest.raises(ValueError, match="nope"):
        check_names(["predict", "nope"])
