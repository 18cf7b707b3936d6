"""backend.processes: a missing redis-server is an error (never a skip), and stop() leaves nothing running."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from backend import processes
from tests.conftest import ROOT


def test_without_redis_server_starting_one_raises_a_clear_error(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no redis-server anywhere
    with pytest.raises(processes.RedisServerMissing, match="redis-server is not installed"):
        processes.start_redis(tmp_path / "redis")


def test_a_suite_run_without_redis_server_errors_instead_of_skipping(tmp_path: Path) -> None:
    """A test that needs the suite's Redis, run where redis-server is missing, ERRORS (a CI run goes red)."""
    probe = tmp_path / "test_probe.py"
    probe.write_text("def test_needs_the_suites_redis(redis_server):\n    assert redis_server\n")
    empty = tmp_path / "bin"
    empty.mkdir()
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "tests.conftest", "-p", "no:cacheprovider", str(probe)],
        cwd=ROOT, env={"PATH": str(empty), "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=300,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out[-3000:]
    assert "1 error" in out and "RedisServerMissing" in out, out[-3000:]
    assert "skipped" not in out, out[-3000:]


def test_stop_kills_descendants_that_left_the_process_group(tmp_path: Path) -> None:
    """Like RQ's work horse, a grandchild that calls setsid() is out of the group and still gets stopped."""
    pid_file = tmp_path / "grandchild.pid"
    script = textwrap.dedent(f"""
        import os, subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c",
            "import os, time; os.setsid(); open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(600)"])
        time.sleep(600)
    """)
    p = processes.ManagedProcess("parent", [sys.executable, "-c", script], log_path=tmp_path / "parent.log").start()
    grandchild = int(processes.wait_for(lambda: pid_file.exists() and pid_file.read_text(), timeout=30,
                                        what="the grandchild's pid"))
    assert grandchild in processes.descendants(p.pid)
    p.stop(timeout=5)
    processes.wait_for(lambda: processes.exited(grandchild), timeout=10, what="the grandchild to exit")
    assert not p.alive


def test_wait_for_names_what_it_waited_for() -> None:
    with pytest.raises(TimeoutError, match="the impossible not met"):
        processes.wait_for(lambda: False, timeout=0.1, what="the impossible")
    assert processes.wait_for(lambda: 7, timeout=1) == 7
