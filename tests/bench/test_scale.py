"""``dalt bench --scale 20000 --quick``: the scale sweep runs end to end and reports every number (no timing
asserts)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

DALT = Path(sys.executable).parent / "dalt"
SCALE_KEYS = {"graph_build_s", "add_1000_s", "freshness_median_s", "freshness_p95_s", "graph_head_lag_s",
              "predict_10000_s", "redis_bytes_per_task", "worker_rss_mb"}


def test_scale_sweep_quick_size(tmp_path: Path) -> None:
    out = tmp_path / "scale.json"
    proc = subprocess.run([str(DALT), "bench", "--scale", "20000", "--quick", "--no-progress", "--json", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=900, check=False)
    assert proc.returncode == 0, proc.stderr[-4000:]
    data = json.loads(out.read_text())
    assert set(data["results"]) == {"scale"} and data["errors"] == {}
    assert set(data["scale"]) == {"20000"} and set(data["scale"]["20000"]) == SCALE_KEYS
    assert all(isinstance(v, (int, float)) and v > 0 for v in data["scale"]["20000"].values())
    size = data["results"]["scale"]["sizes"]["20000"]
    assert {"200", "1000"} <= set(size) and size["add_1000_changed"] > 0
    assert {"emb", "knn", "spread"} <= set(size["redis_bytes_per_task_by_key"])
    assert set(data["results"]["scale"]["baseline"]) == {"5000", "20000"}  # the rebuild head beside it
    assert proc.stdout.strip().splitlines()[-1].startswith("bench: 1/1 benchmarks ran")


def test_scale_sizes_are_validated() -> None:
    proc = subprocess.run([str(DALT), "bench", "--scale", "lots"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode != 0 and "--scale" in (proc.stderr + proc.stdout)
