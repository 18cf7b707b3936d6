"""Run a real Label Studio 1.23.2 server for the e2e tests and the demo, isolated from the user's services.

Label Studio lives in its own virtualenv (:mod:`backend.lsvenv`): its pins clash with ours. The settings it
gets are the ones it needs to talk to a backend on loopback (see docs/testing.md, End-to-end tests).

Isolation: Label Studio Community connects its django-rq queues to ``localhost:6379`` DB 0, hard-coded in
its settings, even with ``REDIS_ENABLED = False`` (it pings that Redis when it loads, and keeps the
connection). A server started here runs with ``DJANGO_SETTINGS_MODULE`` pointing at a small module written
into its data directory, which imports Label Studio's own settings and moves every queue to the Redis the
caller passes (the caller's private redis-server, on a database of its own).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import requests

from backend import lsvenv
from backend.processes import ManagedProcess, free_port, wait_http

SETTINGS_MODULE = "dalt_ls_settings"
_SETTINGS = '''"""Label Studio's settings with its django-rq queues on {where} (written by DALT on every start)."""
import importlib.util
import os
import sys

import label_studio

sys.path.insert(0, os.path.dirname(label_studio.__file__))  # as its server does: its settings import `core`

import core.settings.base  # noqa: E402 - what Label Studio's settings star-import

for _queue in core.settings.base.RQ_QUEUES.values():
    _queue.update(HOST={host!r}, PORT={port!r}, DB={db!r})

# Label Studio's settings read django.conf.settings while they load (Sentry), and Django then imports THIS
# module again: it must already be Label Studio's own (partly run) module, as with its default settings.
_spec = importlib.util.find_spec("label_studio.core.settings.label_studio")
_module = importlib.util.module_from_spec(_spec)
sys.modules[__name__] = sys.modules[_spec.name] = _module
_spec.loader.exec_module(_module)
'''


@dataclass
class LabelStudio:
    """A running Label Studio server and what a client needs to reach it."""

    url: str
    username: str
    password: str
    api_key: str
    data_dir: Path
    document_root: Path
    redis_url: str
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


def write_settings_module(directory: Path, redis_url: str) -> str:
    """Write the settings module that puts Label Studio's queues on ``redis_url``; returns its module name."""
    parts = urlsplit(redis_url)
    if parts.scheme != "redis" or not parts.hostname or not parts.port:
        raise ValueError(f"Label Studio needs a redis://HOST:PORT/DB URL, not {redis_url!r}")
    db = int(parts.path.strip("/") or 0)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{SETTINGS_MODULE}.py").write_text(
        _SETTINGS.format(where=f"{parts.hostname}:{parts.port} DB {db}", host=parts.hostname, port=parts.port, db=db)
    )
    return SETTINGS_MODULE


def label_studio_env(port: int, data_dir: Path, document_root: Path, username: str, password: str,
                     api_key: str, settings_dir: Path, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for a Label Studio that accepts a backend and webhooks on loopback / private networks."""
    env = dict(os.environ if base is None else base)
    # Our own virtualenv must not leak into Label Studio's interpreter.
    for var in ("VIRTUAL_ENV", "PYTHONHOME"):
        env.pop(var, None)
    env.update(
        PYTHONPATH=str(settings_dir),
        DJANGO_SETTINGS_MODULE=SETTINGS_MODULE,
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
    env["PATH"] = f"{lsvenv.ls_venv_dir() / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return env


def _template_dir(username: str, password: str, api_key: str) -> Path:
    """Cache folder of a migrated database made with these credentials (one per Label Studio version)."""
    digest = hashlib.sha256(f"{username}\0{password}\0{api_key}".encode()).hexdigest()[:16]
    return lsvenv.ls_venv_dir() / "db-templates" / digest


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


def start_label_studio(data_dir: Path, document_root: Path, *, redis_url: str, port: int | None = None,
                       username: str = "admin@dalt.local", password: str = "dalt-e2e-password",
                       api_key: str = "dalt-e2e-legacy-api-key-0123456789", timeout: float = 180,
                       host: str = "127.0.0.1", use_template: bool = False) -> LabelStudio:
    """Install Label Studio if needed, start it on ``redis_url``'s Redis, and wait until ``GET /health`` answers.

    The first start on an empty data directory runs the migrations (30-40 s of CPU); a restart takes
    seconds. With ``use_template``, an empty data directory starts from a copy of a database migrated
    earlier with the same credentials (saved on the first such start), which makes the first start a
    restart. Only for throwaway servers: the template's admin, key and secret are shared by every copy.

    Args:
        redis_url: where Label Studio's django-rq queues go (``redis://HOST:PORT/DB``); required, so that no
            server started here ever reaches the Redis on 6379.

    Raises:
        RuntimeError: the port is taken (Label Studio would silently move to another one), or it did not
            become healthy within ``timeout`` seconds (the message carries its log's tail).
    """
    executable = lsvenv.ensure_ls_venv(quiet=True)
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
    settings_dir = data_dir / "ls-settings"
    write_settings_module(settings_dir, redis_url)
    env = label_studio_env(port, data_dir, document_root, username, password, api_key, settings_dir)
    argv = [str(executable), "start", "--no-browser", "--internal-host", host, "--port", str(port),
            "--data-dir", str(ls_data), "--enable-legacy-api-token"]
    url = f"http://127.0.0.1:{port}"
    process = ManagedProcess("label-studio", argv, env, data_dir / "label-studio.log", cwd=data_dir, url=url).start()
    try:
        wait_http(url + "/health", timeout, process=process, interval=0.5)
        if use_template and fresh and not template.exists():
            _save_template(ls_data, template)
    except BaseException:
        process.stop()
        raise
    return LabelStudio(url, username, password, api_key, data_dir, document_root, redis_url, process)
