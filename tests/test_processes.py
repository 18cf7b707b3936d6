"""backend.processes: a missing redis-server is an error (never a skip), and stop() leaves nothing running."""

from __future__ import annotations

import os
import signal
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


def test_run_backend_serves_with_its_own_persistent_redis_and_stops_everything_on_ctrl_c(tmp_path: Path) -> None:
    """What ``dalt run`` does: own redis-server (AOF, noeviction), gunicorn answering /health, a preloaded RQ
    worker with its scheduler; SIGINT stops all of them and exits 0 with a one-line summary."""
    import redis
    from rq import Worker

    port, redis_port = processes.free_port(), processes.free_port()
    code = ("from pathlib import Path; from backend.processes import run_backend; "
            f"raise SystemExit(run_backend(host='127.0.0.1', port={port}, http_workers=1, rq_workers=1, "
            f"redis_port={redis_port}, var_dir=Path({str(tmp_path / 'var')!r})))")
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    p = processes.ManagedProcess("dalt-run", [sys.executable, "-c", code], env=env,
                                 log_path=tmp_path / "run.log").start()
    try:
        processes.wait_http(f"http://127.0.0.1:{port}/health", timeout=90, process=p)
        r = redis.Redis(port=redis_port)
        assert r.config_get("appendonly") == {"appendonly": "yes"}
        assert r.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
        assert (tmp_path / "var" / "redis").is_dir()
        processes.wait_for(lambda: len(Worker.all(connection=r)) >= 2, timeout=90, what="the two RQ workers")
        argvs = [Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") for pid in processes.descendants(p.pid)]
        # the worker (and its scheduler, forked with the same command line): python .../rq worker ...
        rq = sorted({tuple(a) for a in argvs if len(a) > 2 and a[1].endswith(b"/rq") and a[2] == b"worker"})
        # one worker per --rq-workers on the job queue, plus one on the graph lane's queue
        assert sorted(a[-2] for a in rq) == [b"dalt", b"dalt-graph"], argvs  # cmdline ends with a NUL
        for worker in rq:
            for option in (b"--with-scheduler", b"backend.worker.PreloadedWorker", b"--maintenance-interval"):
                assert option in worker, worker
            assert worker[worker.index(b"--maintenance-interval") + 1] == b"30"
        processes.wait_for(lambda: "Ctrl-C stops everything" in p.log(), timeout=30, what="the start line")
        os.kill(p.pid, signal.SIGINT)
        assert p.proc.wait(60) == 0, p.tail()
    finally:
        p.stop()
    assert p.log().rstrip().endswith("DALT: stopped"), p.tail()
    with pytest.raises(redis.exceptions.ConnectionError):
        redis.Redis(port=redis_port, socket_connect_timeout=1).ping()
