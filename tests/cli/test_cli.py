"""The ``dalt`` command: its console script, its subcommands, and the older scripts that wrap it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from backend.cli import COMMANDS, build_parser
from backend.cli import main as dalt
from tests.conftest import ROOT

BIN = Path(sys.executable).parent  # the environment running the tests, where pip put the console script
SUBCOMMANDS = ["run", "encode", "order", "report", "predict", "accept", "reconcile", "purge", "demo", "study", "bench",
               "ls-venv", "docs"]
# The older script names, each a thin wrapper around one `dalt` subcommand.
WRAPPERS = {
    "encode_tasks.py": ["encode"], "order_tasks.py": ["order"], "report.py": ["report"],
    "reconcile.py": ["reconcile"], "run_backend.py": ["run"], "simulate.py": ["study"], "bench.py": ["bench"],
    "bench_encoder.py": ["bench", "encoder"], "demo.py": ["demo"], "ls_venv.py": ["ls-venv"],
}


def run_dalt(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "dalt"), *args], capture_output=True, text=True, timeout=120, cwd=ROOT)


def test_console_script_help_lists_every_subcommand() -> None:
    proc = run_dalt("--help")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: dalt")
    listed = re.findall(r"^    ([\w-]+)", proc.stdout, re.M)
    assert listed == SUBCOMMANDS
    assert list(COMMANDS) == SUBCOMMANDS


def test_console_script_encode_help_keeps_every_option() -> None:
    proc = run_dalt("encode", "--help")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: dalt encode")
    for option in ("--project", "--images", "--export", "--ls-url", "--local-files-root", "--retrain", "--objective",
                   "--latent-dim", "--steps", "--min-steps", "--max-seconds", "--epochs", "--patience", "--image-size",
                   "--channels", "--train-limit",
                   "--batch-size", "--workers", "--encode-threads", "--page-size", "--seed", "--redis-url",
                   "--no-progress"):
        assert option in proc.stdout, option


def test_python_m_backend_cli_is_dalt() -> None:
    proc = subprocess.run([sys.executable, "-m", "backend.cli", "--help"], capture_output=True, text=True,
                          timeout=60, cwd=ROOT)
    assert proc.returncode == 0 and "reconcile" in proc.stdout, proc.stderr


def test_help_loads_no_heavy_library() -> None:
    """Command modules import their libraries only when they run, so `dalt --help` answers at once."""
    code = ("import sys; from backend.cli import build_parser; build_parser(); "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'numpy', 'torch', 'redis', 'rq', 'sklearn', "
            "'requests', 'flask', 'label_studio_sdk'}))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_every_subcommand_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args([command, "--help"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: dalt {command}")


def test_bench_encoder_has_its_own_options() -> None:
    args = build_parser().parse_args(["bench", "encoder", "--epochs", "2", "--repeats", "1", "--json", "x.json"])
    assert (args.bench_what, args.epochs, args.repeats, args.encoder_json) == ("encoder", 2, 1, "x.json")
    assert build_parser().parse_args(["bench", "--quick"]).bench_what is None


def test_bad_input_is_one_line_and_exit_status_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert dalt(["bench", "--only", "predict,nope"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["dalt bench: error: unknown benchmark(s): nope; known: "
                   "predict, webhook, freshness, training, encoding, memory, scaleout, scale"]
    assert dalt(["study"]) == 1
    assert capsys.readouterr().err.strip() == "dalt study: error: --dataset is required (or --merge)"


def test_order_of_a_project_without_encoder_says_what_to_run(redis_server: str, store,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert dalt(["order", "--project", "6", "--redis-url", redis_server, "--dry-run"]) == 1
    assert "run `dalt encode --project 6` first" in capsys.readouterr().err


def test_reconcile_with_no_project_reports_zero(redis_server: str, store, monkeypatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("REDIS_URL", redis_server)
    assert dalt(["reconcile"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == (
        "reconciled 0 project(s), 0 failed: 0 added, 0 updated, 0 removed")


def test_reconcile_reports_an_unreachable_project_and_goes_on(redis_server: str, store, monkeypatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    """Per-project lines reach the stdout of the moment (not one captured when the module was imported)."""
    from backend.projects import Projects

    build_parser()  # the command modules are imported now, under this test's capture
    config = ('<View><Image name="image" value="$image"/><Choices name="label" toName="image">'
              '<Choice value="a"/><Choice value="b"/></Choices></View>')
    for pid in (3, 4):
        Projects(store).configure(pid, config)
    monkeypatch.setenv("REDIS_URL", redis_server)
    monkeypatch.setenv("LABEL_STUDIO_URL", "http://127.0.0.1:9")  # nothing listens on the discard port
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", "k" * 40)
    assert dalt(["reconcile"]) == 1
    out = capsys.readouterr().out.strip().splitlines()
    assert [line.split(":")[0] for line in out[:2]] == ["project 3", "project 4"]
    assert all("failed (" in line for line in out[:2])
    assert out[-1] == "reconciled 0 project(s), 2 failed: 0 added, 0 updated, 0 removed"


@pytest.mark.parametrize("name", sorted(WRAPPERS))
def test_older_scripts_are_thin_wrappers(name: str) -> None:
    text = (ROOT / "scripts" / name).read_text()
    assert "sys.path" not in text
    assert len(text.splitlines()) <= 15
    words = ", ".join(f'"{w}"' for w in WRAPPERS[name])
    assert f"dalt([{words}, *" in text


def test_older_script_runs_the_subcommand() -> None:
    proc = subprocess.run([sys.executable, "scripts/simulate.py", "--help"], capture_output=True, text=True,
                          timeout=60, cwd=ROOT)
    assert proc.returncode == 0 and proc.stdout.startswith("usage: dalt study"), proc.stderr


def test_makefile_runs_the_dalt_command() -> None:
    makefile = (ROOT / "Makefile").read_text()
    for target, command in (("run", "dalt run"), ("demo", "dalt demo"), ("bench", "dalt bench --json"),
                            ("study", "dalt study --dataset mnist")):
        body = makefile.split(f"\n{target}:", 1)[1].split("\n\n", 1)[0]
        assert f"$(BIN)/{command}" in body, target


def test_run_takes_its_defaults_from_the_environment_and_its_options_win(monkeypatch) -> None:
    """`dalt run` hands ProcessConfig (PORT, HOST, DALT_*_WORKERS, REDIS_URL, DALT_REDIS_PORT) to run_backend."""
    import backend.processes

    seen: dict = {}
    monkeypatch.setattr(backend.processes, "run_backend", lambda **kw: seen.update(kw) or 0)
    for name, value in {"PORT": "9111", "HOST": "127.0.0.1", "DALT_HTTP_WORKERS": "3", "DALT_RQ_WORKERS": "2",
                        "DALT_REDIS_PORT": "6499"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.delenv("DALT_QUEUE_REDIS_URL", raising=False)
    assert dalt(["run", "--rq-workers", "4"]) == 0
    assert seen == {"host": "127.0.0.1", "port": 9111, "http_workers": 3, "rq_workers": 4, "redis_url": None,
                    "redis_port": 6499, "queue_redis_url": None,
                    "graph_queue": "dalt-graph"}
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:7000/0")
    assert dalt(["run"]) == 0
    assert seen["redis_url"] == "redis://127.0.0.1:7000/0"
    monkeypatch.setenv("DALT_QUEUE_REDIS_URL", "redis://127.0.0.1:7001/0")
    assert dalt(["run"]) == 0
    assert seen["queue_redis_url"] == "redis://127.0.0.1:7001/0"
