"""The README's demo command, run non-interactively: ``dalt demo --smoke`` sets up and stops."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from backend.processes import ROOT

pytestmark = pytest.mark.e2e


def test_demo_sets_up_everything_and_stops_cleanly(tmp_path: Path) -> None:
    argv = [str(Path(sys.executable).parent / "dalt"), "demo", "--smoke", "--port", "0", "--backend-port", "0",
            "--data-dir", str(tmp_path / "demo"), "--images", "60", "--encoder-epochs", "5"]
    proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=480)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert "login demo@dalt.local / dalt-demo" in out
    assert "encoded 60" in out
    assert "smoke check passed" in out
    assert "demo stopped" in out
    # Nothing it started outlives it: each service's process group is gone.
    leftover = subprocess.run(["pgrep", "-f", str(tmp_path / "demo")], capture_output=True, text=True)
    assert leftover.stdout.strip() == "", f"processes left running: {leftover.stdout}"
