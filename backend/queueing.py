"""Enqueueing RQ jobs, coalesced per project.

A burst of annotations must not queue one training per annotation: only the first label change after a
job started sets the project's pending flag and enqueues; the rest ride on that queued job. The job clears
the flag when it STARTS, so labels arriving while it runs queue exactly one more run.
"""

from __future__ import annotations

import uuid

from rq import Queue, Retry

from backend.config import Config
from backend.store import Store

# Retry intervals (s) for a failed or abandoned (worker killed) job.
RETRY_INTERVALS = [1, 5, 15]


def _retry(config: Config) -> Retry | None:
    if config.train_retries <= 0:
        return None
    intervals = RETRY_INTERVALS[: config.train_retries]
    intervals += [intervals[-1]] * (config.train_retries - len(intervals))
    return Retry(max=config.train_retries, interval=intervals)


def _job_options(config: Config, kind: str, pid: int, description: str) -> dict:
    """What every DALT job gets: a unique id, explicit timeout, retries, and how long results are kept."""
    return {
        "job_id": f"dalt-{kind}-{pid}-{uuid.uuid4().hex[:12]}",
        "job_timeout": config.train_job_timeout,
        "result_ttl": 3600,
        "failure_ttl": 7 * 24 * 3600,
        "retry": _retry(config),
        "description": description,
    }


def enqueue_training(store: Store, queue: Queue, pid: int, config: Config, *, force: bool = False) -> bool:
    """Queue a training run for ``pid`` unless one is already queued.

    Args:
        force: enqueue even if a run is pending (``START_TRAINING`` from Label Studio's train button).

    Returns:
        True when a job was enqueued.
    """
    # The flag outlives a job that vanished (Redis flushed by hand) only for one job timeout.
    marked = store.mark_train_pending(pid, ttl=config.train_job_timeout * 2)
    if not marked and not force:
        return False
    try:
        queue.enqueue(
            "backend.jobs.train_project_job", pid, **_job_options(config, "train", pid, f"train head of project {pid}")
        )
    except Exception:
        # Without this, a flag set just before Redis went away would block every run for its whole TTL.
        if marked:
            try:
                store.clear_train_pending(pid)
            except Exception:  # noqa: BLE001 - Redis is gone; the TTL frees the flag eventually
                pass
        raise
    return True


def enqueue_encoding(queue: Queue, pid: int, tasks: list[dict], config: Config) -> str:
    """Queue encoding of new tasks (``TASKS_CREATED``); returns the job id."""
    job = queue.enqueue(
        "backend.jobs.encode_tasks_job",
        pid,
        tasks,
        **_job_options(config, "encode", pid, f"encode {len(tasks)} new tasks of project {pid}"),
    )
    return job.id
