"""The deployment files, read by Docker's own tooling: ``docker compose config`` needs no engine.

It validates the file against the Compose schema, resolves anchors and variables, and prints the
normalized result, which the tests below check service by service. Docker Compose v2 (the ``docker
compose`` plugin) is used when present, else the standalone ``docker-compose`` v1 (Debian's package).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"


def _compose_command() -> list[str] | None:
    """The first Compose implementation that can run here, or None."""
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose"]
    standalone = shutil.which("docker-compose")
    if standalone:
        return [standalone]
    return None


COMPOSE = _compose_command()
pytestmark = pytest.mark.skipif(
    COMPOSE is None,
    reason="neither the `docker compose` plugin nor `docker-compose` is installed "
    "(apt-get install docker-compose)",
)


SECRETS = {"LABEL_STUDIO_PASSWORD": "a-test-password-0123", "LABEL_STUDIO_API_KEY": "a-test-key-0123456789"}


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without variables a user might have exported for compose, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LABEL_STUDIO_", "DALT_", "REDIS_"))}
    env.update(extra)
    return env


def run_compose_config(env: dict[str, str], env_file: Path | None = None) -> subprocess.CompletedProcess:
    """``compose config`` with only ``env`` and ``env_file`` (default: an empty one, not a developer's .env)."""
    assert COMPOSE is not None
    with tempfile.TemporaryDirectory() as tmp:
        if env_file is None:
            env_file = Path(tmp) / "empty.env"
            env_file.write_text("")
        cmd = [*COMPOSE, "--env-file", str(env_file), "-f", str(COMPOSE_FILE), "--profile", "encode", "config"]
        return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=60)


def compose_config(env: dict[str, str]) -> dict:
    """Normalized configuration as Compose prints it (all profiles enabled)."""
    proc = run_compose_config(env)
    assert proc.returncode == 0, f"compose config failed:\n{proc.stderr}"
    return yaml.safe_load(proc.stdout)


@pytest.fixture(scope="module")
def config() -> dict:
    return compose_config(clean_env(**SECRETS))


def _ports(service: dict) -> set[tuple[str, str, str]]:
    """``(host_ip, published, target)`` for v1's short strings and v2's long form alike."""
    out = set()
    for p in service.get("ports", []):
        if isinstance(p, dict):
            out.add((p.get("host_ip", ""), str(p.get("published", "")), str(p["target"])))
        else:
            m = re.fullmatch(r"(?:(?P<ip>[\d.]+):)?(?P<pub>\d+):(?P<target>\d+)(?:/\w+)?", str(p))
            assert m, f"unexpected port syntax {p!r}"
            out.add((m["ip"] or "", m["pub"], m["target"]))
    return out


def _volumes(service: dict) -> dict[str, str]:
    """target -> source for v1's ``src:dst:mode`` strings and v2's long form alike."""
    out = {}
    for v in service.get("volumes", []):
        if isinstance(v, dict):
            out[v["target"]] = str(v.get("source", ""))
        else:
            parts = str(v).split(":")
            out[parts[1]] = parts[0]
    return out


def _env(service: dict) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def _command(service: dict, key: str = "command") -> list[str]:
    cmd = service.get(key) or []
    return shlex.split(cmd) if isinstance(cmd, str) else [str(c) for c in cmd]


def test_services_present(config: dict) -> None:
    assert set(config["services"]) == {"redis", "label-studio", "backend", "worker", "graph-worker", "encode"}


def test_label_studio_can_reach_a_backend_on_the_compose_network(config: dict) -> None:
    ls = config["services"]["label-studio"]
    assert ls["image"] == "heartexlabs/label-studio:1.23.2"
    env = _env(ls)
    # Both switches: with only ML_BLOCK_LOCAL_IP off, connecting answers 403 yet half-creates the backend.
    assert env["ML_BLOCK_LOCAL_IP"] == "false"
    assert env["SSRF_PROTECTION_ENABLED"] == "false"
    assert env["LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN"] == "true"
    assert env["LOCAL_FILES_SERVING_ENABLED"] == "true"
    assert env["LOCAL_FILES_DOCUMENT_ROOT"] == "/label-studio/files"
    assert env["SENTRY_DSN"] == "" and env["FRONTEND_SENTRY_DSN"] == ""
    assert env["COLLECT_ANALYTICS"] == "false" and env["LATEST_VERSION_CHECK"] == "false"
    # The key Label Studio gives its admin is the one the backend downloads images with.
    assert env["LABEL_STUDIO_USER_TOKEN"] == _env(config["services"]["backend"])["LABEL_STUDIO_API_KEY"]
    assert len(env["LABEL_STUDIO_USER_TOKEN"]) > 5  # shorter keys are silently not applied
    assert ("127.0.0.1", "8080", "8080") in _ports(ls)  # loopback unless LABEL_STUDIO_BIND says otherwise
    assert _volumes(ls)["/label-studio/data"] == "label-studio-data"
    assert "/health" in " ".join(_command(ls["healthcheck"], "test"))


def test_redis_is_persistent_and_never_evicts(config: dict) -> None:
    redis = config["services"]["redis"]
    cmd = _command(redis)
    assert cmd[0] == "redis-server"
    assert cmd[cmd.index("--appendonly") + 1] == "yes"
    assert cmd[cmd.index("--maxmemory-policy") + 1] == "noeviction"
    assert _volumes(redis)["/data"] == "redis-data"
    assert "ports" not in redis, "Redis must not be published on the host"
    assert _command(redis["healthcheck"], "test")[-2:] == ["redis-cli", "ping"]


def test_backend_runs_under_gunicorn(config: dict) -> None:
    backend = config["services"]["backend"]
    cmd = _command(backend)
    assert cmd[:2] == ["gunicorn", "backend.app:create_app()"]
    assert cmd[cmd.index("-b") + 1] == "0.0.0.0:9090"
    assert ("127.0.0.1", "9090", "9090") in _ports(backend)
    env = _env(backend)
    assert env["REDIS_URL"] == "redis://redis:6379/0"
    assert env["LABEL_STUDIO_URL"] == "http://label-studio:8080"
    assert env["DALT_HTTP_WORKERS"] == "2"
    assert env["PROMETHEUS_MULTIPROC_DIR"] in " ".join(map(str, backend["tmpfs"]))  # empty on every start
    assert backend["depends_on"]["redis"]["condition"] == "service_healthy"
    assert "localhost:9090/health" in " ".join(_command(backend["healthcheck"], "test"))


def test_worker_and_encoder_share_the_backend_image_and_settings(config: dict) -> None:
    services = config["services"]
    backend, worker, encode = services["backend"], services["worker"], services["encode"]
    assert worker["image"] == backend["image"] == encode["image"]
    assert _env(worker) == _env(encode)
    assert _env(worker).items() <= _env(backend).items()  # the backend adds only its HTTP settings
    cmd = _command(worker)
    assert cmd[:2] == ["rq", "worker"] and cmd[-1] == "dalt"
    assert cmd[cmd.index("--url") + 1] == _env(worker)["REDIS_URL"]
    assert cmd[cmd.index("--worker-class") + 1] == "backend.worker.PreloadedWorker"
    assert "--with-scheduler" in cmd and "--maintenance-interval" in cmd
    assert _env(worker)["DALT_QUEUE"] == "dalt"
    # The encoder is a one-shot job, only started on request.
    assert encode["profiles"] == ["encode"]
    assert _command(encode, "entrypoint") == ["dalt", "encode"]
    assert _command(encode) == ["--project", "1"]
    assert encode["restart"] == "no"


def test_graph_lane_has_its_own_worker_on_the_graph_queue(config: dict) -> None:
    """Without a worker on the graph queue, labels still publish but the graph-based head never refreshes."""
    services = config["services"]
    worker, graph = services["worker"], services["graph-worker"]
    assert graph["image"] == worker["image"] and _env(graph) == _env(worker)
    cmd = _command(graph)
    assert cmd[:2] == ["rq", "worker"] and cmd[-1] == _env(graph)["DALT_GRAPH_QUEUE"] == "dalt-graph"
    assert cmd[cmd.index("--url") + 1] == _env(graph)["REDIS_URL"]


def test_named_volumes_are_declared(config: dict) -> None:
    assert {"redis-data", "label-studio-data"} <= set(config["volumes"])


def test_variables_override_defaults() -> None:
    env = clean_env(**dict(SECRETS, LABEL_STUDIO_API_KEY="custom-key-123456"), DALT_PORT="9191",
                    DALT_ENCODE_PROJECT="7", LABEL_STUDIO_BIND="0.0.0.0")
    config = compose_config(env)
    services = config["services"]
    assert _env(services["label-studio"])["LABEL_STUDIO_USER_TOKEN"] == "custom-key-123456"
    assert _env(services["label-studio"])["LABEL_STUDIO_PASSWORD"] == SECRETS["LABEL_STUDIO_PASSWORD"]
    assert _env(services["worker"])["LABEL_STUDIO_API_KEY"] == "custom-key-123456"
    assert ("127.0.0.1", "9191", "9090") in _ports(services["backend"])
    assert ("0.0.0.0", "8080", "8080") in _ports(services["label-studio"])
    assert _command(services["encode"]) == ["--project", "7"]


@pytest.mark.parametrize("missing", sorted(SECRETS))
def test_compose_refuses_to_start_without_real_secrets(missing: str, tmp_path: Path) -> None:
    """No published default password or key: unset, empty, or the example file copied as is, compose stops."""
    others = {k: v for k, v in SECRETS.items() if k != missing}
    for env in (clean_env(**others), clean_env(**others, **{missing: ""})):
        proc = run_compose_config(env)
        assert proc.returncode != 0
        assert missing in proc.stderr and ".env.example" in proc.stderr, proc.stderr
    copied = tmp_path / ".env"
    copied.write_text((ROOT / ".env.example").read_text())
    proc = run_compose_config(clean_env(), env_file=copied)
    assert proc.returncode != 0 and ".env.example" in proc.stderr


def test_the_example_env_file_exists_and_names_every_secret() -> None:
    """The header tells users to copy .env.example: it exists, lists both secrets empty, and is not ignored."""
    example = (ROOT / ".env.example").read_text()
    for name in SECRETS:
        assert re.search(rf"^{name}=$", example, re.M), name
    assert "cp .env.example .env" in COMPOSE_FILE.read_text()
    assert "change-me" not in COMPOSE_FILE.read_text()
    tracked = subprocess.run(["git", "ls-files", "--error-unmatch", ".env.example"], cwd=ROOT, capture_output=True)
    ignored = subprocess.run(["git", "check-ignore", "-q", ".env.example"], cwd=ROOT)
    assert tracked.returncode == 0 or ignored.returncode != 0  # committed (or at least committable)


def test_every_command_exists_outside_docker() -> None:
    """Each service runs the same code without Docker: the files and entry points it names exist."""
    assert (ROOT / "scripts" / "encode_tasks.py").is_file()
    assert (ROOT / "backend" / "app.py").is_file()
    dockerfile = (ROOT / "Dockerfile").read_text()
    for path in ("backend", "encoder", "scripts", "gunicorn.conf.py"):
        assert re.search(rf"^COPY {re.escape(path)} ", dockerfile, re.M), f"Dockerfile does not copy {path}"
    dockerignore = (ROOT / ".dockerignore").read_text().split()
    for needed in ("backend", "encoder", "scripts", "gunicorn.conf.py", "pyproject.toml", "README.md"):
        assert needed not in dockerignore
