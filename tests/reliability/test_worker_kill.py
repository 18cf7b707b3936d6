"""Item 2: ``kill -9`` of a worker in the middle of a (really slow) fit.

The fit is made slow honestly, not with a sleep hook: 20,000 labeled tasks whose 64-dim embeddings are
strongly correlated (condition number 1e4), so L-BFGS needs its full iteration budget (about 4 s on one
core here). RQ 2.12 notices the abandoned job once its heartbeat TTL (job monitoring interval + 60 s) has
passed, when a worker runs its registry maintenance; the replacement worker runs it every 5 s.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from rq import Queue
from rq.job import Job, JobStatus

from backend.projects import Projects
from backend.queueing import enqueue_training
from backend.training import train_project
from tests.conftest import CLASSES, CONFIG_XML, wait_for

N, DIM = 20_000, 64


def slow_project(store, pid: int = 1) -> dict[int, str]:
    """A project whose head takes seconds to fit: ill-conditioned embeddings, a linear labeling rule."""
    rng = np.random.default_rng(7)
    Z = rng.normal(size=(N, DIM))
    U, _, Vt = np.linalg.svd(rng.normal(size=(DIM, DIM)))
    X = (Z @ (U * np.logspace(0, -4, DIM)) @ Vt) * 50
    y = (Z @ rng.normal(size=(DIM, len(CLASSES)))).argmax(axis=1)
    Projects(store).configure(pid, CONFIG_XML)
    store.put_encoder(pid, "enc-slow", b"", {"dim": DIM, "objective": "test"})
    ids = range(1, N + 1)
    store.put_embeddings(pid, "enc-slow", dict(zip(ids, X.astype("float32"), strict=True)))
    return {t: CLASSES[c] for t, c in zip(ids, y, strict=True)}


def test_kill_9_mid_training_keeps_the_served_model_and_the_job_is_retried(store, config, procs, redis_server, client):
    labels = slow_project(store)
    for t in range(1, 31):  # a quick first model: version v1 is what Label Studio is served
        store.record_annotation(1, t, t, labels[t])
    assert train_project(store, config, 1).status == "published"
    assert store.current_version(1) == "v1"
    pipe_ids = list(labels.items())
    for t, label in pipe_ids[30:]:
        store.record_annotation(1, t, t, label)
    assert store.label_count(1) == N

    queue = Queue("dalt", connection=store.r)
    assert enqueue_training(store, queue, 1, config)  # queued before the worker exists: no race for its id
    job_id = queue.job_ids[0]
    victim = procs("worker", redis_server, "--job-monitoring-interval", "5")
    wait_for(lambda: Job.fetch(job_id, connection=store.r).get_status() == JobStatus.STARTED, timeout=60)
    time.sleep(1.5)  # inside the fit (about 4 s of L-BFGS after the embeddings are read)
    victim.kill()  # kill -9 of the worker, its work horse and its scheduler process

    # The served model is still the previous one, and the job is neither finished nor lost.
    assert store.current_version(1) == "v1"
    assert client.post("/setup", json={"project": "1.1", "schema": CONFIG_XML}).json["model_version"] == "v1"
    job = Job.fetch(job_id, connection=store.r)
    assert job.get_status() == JobStatus.STARTED and job_id in queue.started_job_registry.get_job_ids(cleanup=False)
    assert not store.train_pending(1)  # the job cleared it when it started: new labels still queue a run

    procs("worker", redis_server, "--maintenance-interval", "5")
    wait_for(lambda: store.current_version(1) not in (None, "v1"), timeout=150, interval=0.5)
    head = store.versions(1)[0]
    assert head["labels"] == N and head["generation"] == store.generation(1)
    job = Job.fetch(job_id, connection=store.r)
    assert job.get_status() == JobStatus.FINISHED
    assert job.retries_left == config.train_retries - 1  # the same job, retried once by RQ
    assert store.stats(1).get("train_runs") == 1  # the killed run never counted as done
    print(f"\nkill -9 mid-fit: served model stayed v1; job {job_id} retried, published {head['version']}")


def test_a_failed_enqueue_never_leaves_the_pending_flag_blocking_training(store, config, monkeypatch):
    """Redis dropping between setting the flag and enqueueing must not block every run for the flag's TTL."""
    import redis

    queue = Queue("dalt", connection=store.r)

    def down(*args, **kwargs):
        raise redis.exceptions.ConnectionError("Redis went away")

    monkeypatch.setattr(queue, "enqueue", down)
    with pytest.raises(redis.exceptions.ConnectionError):
        enqueue_training(store, queue, 1, config)
    assert not store.train_pending(1)
    monkeypatch.undo()
    assert enqueue_training(store, queue, 1, config) and queue.count == 1
