"""One command to try DALT in Label Studio: everything set up, a sample project ready to label.

Starts (each in its own process group, all stopped on Ctrl-C):

1. a private ``redis-server`` (AOF in ``var/demo/redis``; never the Redis on 6379),
2. Label Studio 1.23.2 from its own virtualenv (created on first use, about 1 GB; ``scripts/ls_venv.py``),
   with its database in ``var/demo/label-studio`` so a second run starts in seconds,
3. DALT's backend (gunicorn) and one RQ worker,

then, on the first run, creates the project "DALT demo: MNIST digits" with MNIST digits uploaded,
connects the backend and bulk-encodes the images. Label a few digits: after each one the worker
retrains, and the next task opens with the new model's suggestion already selected.

Usage::

    python scripts/demo.py               # Ctrl-C stops everything
    python scripts/demo.py --smoke       # set up, check, stop (non-interactive test)
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the harness lives with the end-to-end tests, which share it

from tests.e2e import harness  # noqa: E402

PROJECT_TITLE = "DALT demo: MNIST digits"
USERNAME = "demo@dalt.local"
PASSWORD = "dalt-demo"
API_KEY = "dalt-demo-legacy-api-key"


def find_project(client) -> int | None:
    for project in client.projects.list():
        if project.title == PROJECT_TITLE:
            return project.id
    return None


def connect(client, pid: int, backend_url: str) -> int:
    """Point the project at this run's backend (recreating the connection if the URL changed)."""
    for ml in client.ml.list(project=pid):
        if ml.url == backend_url:
            return ml.id
        client.ml.delete(id=ml.id)  # updating the URL fails in Label Studio 1.23.2 (HTTP 500)
    return client.ml.create(url=backend_url, project=pid, title="DALT", is_interactive=False).id


def create_project(ls: harness.LabelStudio, data_dir: Path, images: int) -> int:
    client = ls.sdk()
    pid = client.projects.create(
        title=PROJECT_TITLE,
        label_config=harness.DIGITS_LABEL_CONFIG,
        description="Label a few digits: DALT retrains after each annotation and pre-selects its guess.",
    ).id
    pngs = harness.write_mnist_pngs(data_dir / "images", images, offset=2000)
    print(f"uploading {len(pngs)} MNIST digits to project {pid}", flush=True)
    harness.upload_images(ls, pid, [path for path, _ in pngs])
    return pid


def encode(pid: int, env: dict[str, str], progress: bool, epochs: int | None) -> None:
    """Bulk-encode the project's images (trains the project's encoder on the first run)."""
    argv = [harness.venv_bin("python"), str(ROOT / "scripts" / "encode_tasks.py"), "--project", str(pid)]
    if epochs:
        argv += ["--epochs", str(epochs)]
    if not progress:
        argv.append("--no-progress")
    subprocess.run(argv, cwd=ROOT, env=env, check=True)


def smoke_check(ls: harness.LabelStudio, dalt_url: str, pid: int, ml_id: int) -> None:
    """What --smoke verifies: the backend is connected, every task encoded, Label Studio gets answers."""
    import requests

    client = ls.sdk()
    ml = client.ml.get(id=ml_id)
    assert ml.state == "CO", f"ML backend state {ml.state} (expected CO = connected): {ml.error_message}"
    task = ls.api("GET", f"/api/projects/{pid}/next").json()
    assert task.get("id"), task
    health = requests.get(dalt_url + "/health", timeout=5)
    assert health.status_code == 200, health.text
    print(f"smoke check passed: backend connected, next task {task['id']} served", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run Label Studio + DALT with a sample MNIST project.")
    parser.add_argument("--port", type=int, default=8080, help="Label Studio port (0: any free port)")
    parser.add_argument("--backend-port", type=int, default=9090, help="DALT backend port (0: any free)")
    parser.add_argument("--data-dir", type=Path, default=ROOT / "var" / "demo",
                        help="where Label Studio, Redis and the images keep their data")
    parser.add_argument("--images", type=int, default=300, help="MNIST digits in the sample project")
    parser.add_argument("--encoder-epochs", type=int, default=None,
                        help="most epochs for the project's encoder (default: encode_tasks.py's)")
    parser.add_argument("--smoke", action="store_true", help="set up, check, stop (for tests and CI)")
    args = parser.parse_args(argv)

    data_dir = args.data_dir.resolve()
    log_dir = data_dir / "logs"
    processes: list[harness.ManagedProcess] = []
    def on_signal(signum, _frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    t0 = time.monotonic()
    try:
        print("starting Redis, Label Studio (first start: about a minute), the backend and a worker...",
              flush=True)
        redis_url, redis_proc = harness.start_redis(data_dir / "redis", log_dir)
        processes.append(redis_proc)
        ls = harness.start_label_studio(
            data_dir / "label-studio", data_dir / "local-files", port=args.port or None,
            username=USERNAME, password=PASSWORD, api_key=API_KEY, host="127.0.0.1",
            use_template=True,  # a local demo: start from a database migrated once per machine
        )
        processes.append(ls.process)
        env = harness.backend_env(redis_url, ls)
        backend_url, backend = harness.start_backend(env, log_dir, port=args.backend_port or None)
        processes.append(backend)
        processes.append(harness.start_worker(env, log_dir))

        client = ls.sdk()
        pid = find_project(client)
        fresh = pid is None
        if fresh:
            pid = create_project(ls, data_dir, args.images)
        ml_id = connect(client, pid, backend_url)
        # Incremental: a rerun encodes nothing new.
        encode(pid, env, progress=not args.smoke, epochs=args.encoder_epochs)

        print(
            "\n"
            f"  Label Studio:  {ls.url}/projects/{pid}/data   (login {USERNAME} / {PASSWORD})\n"
            f"  DALT backend:  {backend_url}   (/versions, /metrics)\n"
            f"  Logs:          {log_dir}\n"
            "  Open the project, click 'Label All Tasks', choose the digit and Submit a few times:\n"
            "  the next task opens with DALT's suggestion selected, and it improves with every label.\n"
            f"  Ready in {time.monotonic() - t0:.0f} s. Ctrl-C stops everything.\n",
            flush=True,
        )
        if args.smoke:
            smoke_check(ls, backend_url, pid, ml_id)
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
        for p in reversed(processes):
            p.stop()
        print("demo stopped: Label Studio, backend, worker and Redis are down", flush=True)


if __name__ == "__main__":
    sys.exit(main())
