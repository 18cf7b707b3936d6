"""``kill -9`` of a worker in the middle of a fit keeps the served model, and the job is retried.

The fit is held deterministically, not with a sleep that guesses its length: the victim runs
``tests.reliability.blocking_worker.FitBlockingWorker``, whose work horse reports when it is inside the fit
and then waits for a release that never comes, so the kill provably lands between reading the labels and
publishing. RQ 2.12 notices the abandoned job once its heartbeat TTL (job monitoring interval + 60 s) has
passed, when a worker runs its registry maintenance; the replacement worker runs it every 5 s.
"""

from __future__ import annotations

import pytest
from rq import Queue
from rq.job import Job, JobStatus

from backend.processes import exited
from backend.queueing import enqueue_training
from backend.training import train_project
from tests.conftest import CONFIG_XML, wait_for
from tests.reliability import blocking_worker

N = 200


def test_kill_9_mid_training_keeps_the_served_model_and_the_job_is_retried(
    store, config, procs, redis_server, client, seeded_project
):
    seeded = seeded_project(n=N)
    labels = dict(zip(seeded["ids"], seeded["y"], strict=True))
    for t in seeded["ids"][:30]:  # a quick first model: version v1 is what Label Studio is served
        store.record_annotation(1, t, t, labels[t])
    assert train_project(store, config, 1).status == "published"
    assert store.current_version(1) == "v1"
    for t in seeded["ids"][30:]:
        store.record_annotation(1, t, t, labels[t])
    assert store.label_count(1) == N

    queue = Queue("dalt", connection=store.r)
    assert enqueue_training(store, queue, 1, config)  # queued before the worker exists: no race for its id
    job_id = queue.job_ids[0]
    victim = procs("worker", redis_server, "--job-monitoring-interval", "5",
                   RQ_WORKER_CLASS="tests.reliability.blocking_worker.FitBlockingWorker")
    wait_for(lambda: store.r.llen(blocking_worker.ENTERED) == 1 or not victim.alive, timeout=120)
    assert victim.alive, f"the blocking worker died before the fit:\n{victim.tail()}"
    horse = int(store.r.lindex(blocking_worker.ENTERED, 0))
    assert horse != victim.pid and Job.fetch(job_id, connection=store.r).get_status() == JobStatus.STARTED
    victim.kill()  # kill -9 of the worker, its work horse (inside the fit) and its scheduler process
    wait_for(lambda: exited(horse), timeout=30)

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
    assert store.r.llen(blocking_worker.ENTERED) == 1  # the retry ran in the plain worker, unblocked
    print(f"\nkill -9 inside the fit (horse {horse}): served model stayed v1; job {job_id} retried, "
          f"published {head['version']}")


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
