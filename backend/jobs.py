"""RQ job entry points. Workers run them as ``rq worker --url $REDIS_URL dalt``.

They build their Store from the worker's own Redis connection and the configuration from the
environment, so any worker on any machine that reaches the same Redis can run them.
"""

from __future__ import annotations

import logging
import time

from rq import get_current_job

from backend.config import Config
from backend.store import Store

log = logging.getLogger(__name__)


def _context() -> tuple[Store, Config]:
    config = Config.from_env()
    job = get_current_job()
    if job is not None:
        return Store(job.connection, keep_versions=config.keep_versions), config
    return Store.from_url(config.redis_url, keep_versions=config.keep_versions), config


def train_project_job(pid: int) -> dict:
    """Retrain the head of one project and publish a new version if its labels are newer."""
    from backend.training import train_project

    store, config = _context()
    store.clear_train_pending(pid)  # FIRST: labels arriving from now on queue one more run
    t0 = time.perf_counter()
    try:
        result = train_project(store, config, pid)
    except Exception:
        store.incr_stat(pid, "train_failures")
        raise
    store.incr_stat(pid, "train_runs")
    store.incr_stat(pid, "train_seconds", float(time.perf_counter() - t0))
    store.incr_stat(pid, f"train_{result.status}")
    return result.as_dict()


def encode_tasks_job(pid: int, tasks: list[dict]) -> dict:
    """Encode tasks that Label Studio just created, so their first prediction is a cache hit."""
    from backend.encoding import encode_missing

    store, config = _context()
    vectors = encode_missing(store, config, pid, tasks)
    return {"project": pid, "tasks": len(tasks), "encoded": len(vectors)}
