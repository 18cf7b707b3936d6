"""The private virtualenv that holds Label Studio for the e2e tests and the demo (created once).

Label Studio pins ``redis<5.3``, ``rq<2.7`` and more, which must not constrain DALT's own environment, so it
lives in its own virtualenv outside the repository (default ``~/.cache/dalt/label-studio-1.23.2``, or
``$DALT_LS_VENV``). Ensuring it again is cheap: an existing, working install is reused.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

LS_VERSION = "1.23.2"
_MARKER = ".dalt-ls-ready"


def ls_venv_dir() -> Path:
    """Where the Label Studio virtualenv lives (``$DALT_LS_VENV`` overrides the cache default)."""
    from backend.config import ProcessConfig

    override = ProcessConfig.from_env().ls_venv
    if override:
        return Path(override).expanduser()
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "dalt" / f"label-studio-{LS_VERSION}"


def ls_executable(venv_dir: Path | None = None) -> Path:
    """Path of the ``label-studio`` console script inside the virtualenv."""
    return (venv_dir or ls_venv_dir()) / "bin" / "label-studio"


def ls_python(venv_dir: Path | None = None) -> Path:
    """Path of the virtualenv's Python (used to run Label Studio's Django management commands)."""
    return (venv_dir or ls_venv_dir()) / "bin" / "python"


def is_ready(venv_dir: Path | None = None) -> bool:
    """True when a previous run finished the install (the marker is written only after pip succeeded)."""
    venv_dir = venv_dir or ls_venv_dir()
    marker = venv_dir / _MARKER
    return (
        marker.is_file()
        and marker.read_text().strip() == LS_VERSION
        and ls_executable(venv_dir).exists()
    )


def _base_python() -> str:
    """A Python to build the venv from; ``sys._base_executable`` avoids nesting inside our own .venv."""
    return getattr(sys, "_base_executable", None) or sys.executable


def ensure_ls_venv(venv_dir: Path | None = None, quiet: bool = False) -> Path:
    """Install ``label-studio==LS_VERSION`` into its own virtualenv unless already there.

    Returns:
        The path of the ``label-studio`` executable.
    """
    venv_dir = venv_dir or ls_venv_dir()
    if is_ready(venv_dir):
        return ls_executable(venv_dir)
    if venv_dir.exists():
        # A half-finished install (interrupted pip) is not trusted: start over.
        shutil.rmtree(venv_dir)
    venv_dir.parent.mkdir(parents=True, exist_ok=True)
    print(f"Creating Label Studio {LS_VERSION} virtualenv in {venv_dir} (about 1 GB, 1-2 minutes)",
          file=sys.stderr, flush=True)
    subprocess.run([_base_python(), "-m", "venv", str(venv_dir)], check=True)
    pip = [str(venv_dir / "bin" / "python"), "-m", "pip"]
    quiet_flag = ["-q"] if quiet else []
    subprocess.run([*pip, "install", *quiet_flag, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "install", *quiet_flag, f"label-studio=={LS_VERSION}"], check=True)
    (venv_dir / _MARKER).write_text(LS_VERSION + "\n")
    print(f"Label Studio {LS_VERSION} ready in {venv_dir}", file=sys.stderr, flush=True)
    return ls_executable(venv_dir)
