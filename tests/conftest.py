"""Shared fixtures: a private redis-server, real `rq worker` processes, the app and its client.

The suite never touches a user's Redis: it starts its own ``redis-server`` on a free loopback port with
no persistence, and flushes it between tests. Without ``redis-server`` the suite fails with an error
(:class:`backend.processes.RedisServerMissing`), never a skip. Processes come from :mod:`backend.processes`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import redis

from backend import processes
from backend.app import create_app
from backend.config import Config
from backend.processes import ROOT, ManagedProcess, free_port, wait_for  # noqa: F401 - shared with the tests
from backend.store import Store

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a redis-server private to this test session."""
    server = processes.start_redis(tmp_path_factory.mktemp("redis"))
    yield server.url
    server.stop()


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[processes.RedisCluster]:
    """A private 3-master Redis Cluster (free ports, no persistence) for this test session; ``.url`` opens it."""
    cluster = processes.start_redis_cluster(tmp_path_factory.mktemp("cluster"), masters=3)
    yield cluster
    cluster.stop()


@pytest.fixture
def cluster_store(redis_cluster: processes.RedisCluster) -> Iterator[Store]:
    """A store on the private Redis Cluster, every node flushed before the test."""
    store = Store.from_url(redis_cluster.url)
    store.r.flushall(target_nodes=store.r.PRIMARIES)
    yield store
    store.r.close()


@pytest.fixture
def redis_client(redis_server: str) -> Iterator[redis.Redis]:
    """A client on the private server, flushed before each test."""
    client = redis.Redis.from_url(redis_server)
    client.flushall()
    yield client
    client.close()


@pytest.fixture
def config(redis_server: str) -> Config:
    """Configuration for tests: the private Redis, retries fast, no auth."""
    return Config(redis_url=redis_server, log_level="WARNING")


@pytest.fixture
def store(redis_client: redis.Redis, config: Config) -> Store:
    """A store on the flushed private Redis."""
    return Store(redis_client, keep_versions=config.keep_versions)


@pytest.fixture
def app(config: Config, store: Store):
    """The Flask app on the private Redis."""
    return create_app(config, store=store)


@pytest.fixture
def client(app):
    """Flask's test client."""
    return app.test_client()


def load_fixture(name: str) -> dict:
    """A captured Label Studio request (``tests/fixtures/NAME.json``)."""
    return json.loads((FIXTURES / f"{name}.json").read_text())


@pytest.fixture
def ls_payload() -> Callable[[str], dict]:
    """Body of a captured Label Studio request, e.g. ``ls_payload("webhook_annotation_created")``."""
    return lambda name: load_fixture(name)["body"]


def worker_env(redis_url: str, **extra: str) -> dict[str, str]:
    """Environment for backend processes started by tests (``tests`` importable: test worker classes)."""
    env = processes.service_env(redis_url, PYTHONPATH=str(ROOT), LOG_LEVEL="INFO")
    env.setdefault("DALT_TRAIN_RETRIES", "3")
    env.update(extra)
    return env


def start_test_worker(redis_url: str, log_path: Path, *args: str, **env: str) -> ManagedProcess:
    """A real ``rq worker`` (PreloadedWorker unless ``RQ_WORKER_CLASS`` says otherwise) on the ``dalt`` queue.

    ``--worker-ttl 5``: a killed worker is noticed quickly; ``args`` add CLI options.
    """
    worker_class = env.pop("RQ_WORKER_CLASS", processes.PRELOADED_WORKER)
    return processes.start_worker(worker_env(redis_url, **env), worker_class=worker_class,
                                  args=["--worker-ttl", "5", *args], log_path=log_path)


@pytest.fixture
def start_worker(redis_server: str, tmp_path: Path) -> Iterator[Callable[..., ManagedProcess]]:
    """Factory for real worker processes; all are stopped at the end of the test."""
    workers: list[ManagedProcess] = []

    def start(**env: str) -> ManagedProcess:
        w = start_test_worker(redis_server, tmp_path / f"worker{len(workers)}.log", **env)
        workers.append(w)
        return w

    yield start
    processes.stop_all(workers)


@pytest.fixture
def rq_worker(start_worker: Callable[..., ManagedProcess], redis_client: redis.Redis) -> ManagedProcess:
    """One real ``rq worker`` process on the private Redis."""
    return start_worker()


CONFIG_XML = load_fixture("setup")["body"]["schema"]  # Image + Choices zero/one/two, as LS sent it
CLASSES = ("zero", "one", "two")


def clustered_embeddings(n: int, dim: int = 8, seed: int = 0) -> tuple[list[int], np.ndarray, list[str]]:
    """``n`` tasks (ids 1..n) whose embeddings form one well separated cluster per class."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 4, size=(len(CLASSES), dim))
    y = [CLASSES[i % len(CLASSES)] for i in range(n)]
    X = np.stack([centers[CLASSES.index(c)] for c in y]) + rng.normal(0, 0.5, size=(n, dim))
    return list(range(1, n + 1)), X.astype("float32"), y


@pytest.fixture
def seeded_project(store: Store) -> Callable[..., dict]:
    """Create project 1 as Label Studio's /setup would, with an encoder and cached embeddings.

    Returns a dict with ``pid``, ``ids``, ``X``, ``y`` (the true class of each task).
    """

    def seed(n: int = 60, dim: int = 8, pid: int = 1, encoder_version: str = "enc-test") -> dict:
        from backend.projects import Projects

        ids, X, y = clustered_embeddings(n, dim)
        Projects(store).configure(pid, CONFIG_XML)
        store.put_encoder(pid, encoder_version, b"", {"dim": dim, "objective": "test"})
        store.put_embeddings(pid, encoder_version, dict(zip(ids, X, strict=True)))
        return {"pid": pid, "ids": ids, "X": X, "y": y, "encoder_version": encoder_version}

    return seed


@pytest.fixture
def annotation_event(ls_payload: Callable[[str], dict]) -> Callable[..., dict]:
    """Build an ANNOTATION_CREATED webhook body from the captured one, for any task and label."""

    def make(ann_id: int, task_id: int, label: str | None, *, action: str = "ANNOTATION_CREATED",
             pid: int = 1, cancelled: bool = False, min_annotations: int = 0) -> dict:
        body = json.loads(json.dumps(ls_payload("webhook_annotation_created")))
        body["action"] = action
        ann = body["annotation"]
        ann.update(id=ann_id, task=task_id, was_cancelled=cancelled, project=pid)
        ann["result"] = (
            [{"from_name": "label", "to_name": "image", "type": "choices", "value": {"choices": [label]}}]
            if label is not None else []
        )
        body["task"]["id"] = task_id
        body["project"].update(id=pid, min_annotations_to_start_training=min_annotations)
        return body

    return make


def jobs_idle(store, pid: int) -> bool:
    """No job is queued, scheduled or running, and no training of the project is pending."""
    from rq import Queue

    q = Queue("dalt", connection=store.r)
    return (
        not store.train_pending(pid)
        and q.count == 0
        and q.started_job_registry.count == 0
        and q.scheduled_job_registry.count == 0
    )


def training_settled(store, pid: int) -> bool:
    """The served head was trained on the latest labels and nothing is queued or running."""
    versions = store.versions(pid)
    return bool(versions) and versions[0]["generation"] == store.generation(pid) and jobs_idle(store, pid)


def run_jobs(store: Store, queue_name: str = "dalt") -> None:
    """Run queued jobs in this process (unit tests; integration tests use real workers)."""
    from rq import Queue, SimpleWorker

    SimpleWorker([Queue(queue_name, connection=store.r)], connection=store.r).work(burst=True)
