"""Every RQ job entry point. Workers run them as ``rq worker --url <queue Redis> dalt``.

Workers listen on the queue Redis (``DALT_QUEUE_REDIS_URL``, default ``REDIS_URL``); jobs build their Store
on the project data's Redis (``REDIS_URL``, possibly a Redis Cluster) and the configuration from the
environment, so any worker on any machine that reaches the same Redis can run them. The coalescing rules
they take part in (clear the pending flag first thing) are written in ``backend.queueing``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from redis.lock import Lock
from rq import get_current_job

from backend.config import Config
from backend.store import Store

log = logging.getLogger(__name__)

# Seconds a killed run keeps its project locked; the holder extends the lock every third of it.
TRAIN_LOCK_TTL = 15.0


def _context() -> tuple[Store, Config]:
    from backend import labelconfig

    config = Config.from_env()
    labelconfig.config_cache.resize(config.config_cache_bytes)
    job = get_current_job()
    if job is not None and not config.queue_redis_url:  # queues and data on one Redis: the worker's connection
        return Store(job.connection, keep_versions=config.keep_versions), config
    return Store.from_url(config.redis_url, keep_versions=config.keep_versions), config


def train_project_job(pid: int) -> dict:
    """Retrain the head of one project and publish a new version if its labels are newer."""
    from backend.training import train_project

    store, config = _context()
    if not store.project(pid).get("label_config"):  # purged (or never configured): leave no key behind
        store.clear_train_pending(pid)
        return {"project": pid, "status": "skipped", "reason": "unknown project"}
    with held(store.train_lock(pid, ttl=TRAIN_LOCK_TTL)) as lock_times:
        store.clear_train_pending(pid)  # FIRST (after the lock): labels arriving from now on queue one more run
        t0 = time.perf_counter()
        try:
            result = train_project(store, config, pid)
        except Exception:
            store.incr_stat(pid, "train_failures")
            raise
        store.incr_stat(pid, "train_runs")
        store.incr_stat(pid, "train_seconds", float(time.perf_counter() - t0))
        store.incr_stat(pid, f"train_{result.status}")
    out = dict(result.as_dict(), locked=lock_times)
    if result.spread_behind and result.status == "published":
        from backend.queueing import enqueue_spreading

        out["spread_queued"] = bool(enqueue_spreading(store, config, pid))
    out["peak_rss_mb"] = peak_rss_mb()
    return out


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM) in MB: what a job's work horse cost at most."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return 0.0


def update_graph_job(pid: int) -> dict:
    """Build or grow the project's neighbour graph (after encoding); then queue a propagation if it has labels."""
    from backend.graphlane import update_graph
    from backend.queueing import enqueue_spreading

    store, config = _context()
    with held(store.graph_lock(pid, ttl=TRAIN_LOCK_TTL)):
        store.clear_graph_pending(pid)  # FIRST (after the lock): tasks encoded from now on queue one more
        result = update_graph(store, config, pid)
    out = result.as_dict()
    if result.status in ("built", "added") and store.label_count(pid) > 0:
        out["spread_queued"] = bool(enqueue_spreading(store, config, pid))
    out["peak_rss_mb"] = peak_rss_mb()
    return out


def spread_project_job(pid: int) -> dict:
    """The graph lane: propagate the labels over the stored graph, write a snapshot, publish a head naming it."""
    from backend.graphlane import spread_project

    store, config = _context()
    if not store.project(pid).get("label_config"):
        store.clear_spread_pending(pid)
        return {"project": pid, "status": "skipped", "reason": "unknown project"}
    with held(store.graph_lock(pid, ttl=TRAIN_LOCK_TTL)):
        store.clear_spread_pending(pid)  # FIRST (after the lock): labels arriving from now on queue one more
        return dict(spread_project(store, config, pid).as_dict(), peak_rss_mb=peak_rss_mb())


@contextmanager
def held(lock: Lock) -> Iterator[list[float]]:
    """Hold a redis-py lock, extending it from a thread while the body runs; yields [acquired, released]."""
    lock.acquire(blocking=True)
    times = [time.time()]
    stop = threading.Event()

    def keep() -> None:
        while not stop.wait(TRAIN_LOCK_TTL / 3):
            try:
                lock.reacquire()
            except Exception:  # noqa: BLE001 - lost it (Redis outage); publishing stays generation-guarded
                log.warning("training lock could not be extended", exc_info=True)

    keeper = threading.Thread(target=keep, daemon=True)
    keeper.start()
    try:
        yield times
    finally:
        stop.set()
        keeper.join()
        times.append(time.time())
        try:
            lock.release()
        except Exception:  # noqa: BLE001 - expired or Redis gone: the TTL frees it
            log.warning("training lock already released", exc_info=True)


def encode_tasks_job(pid: int, tasks: list[dict]) -> dict:
    """Encode tasks that Label Studio just created, so their first prediction is a cache hit."""
    from backend.encoding import encode_missing
    from backend.queueing import enqueue_graph_update

    store, config = _context()
    vectors = encode_missing(store, config, pid, tasks)
    out = {"project": pid, "tasks": len(tasks), "encoded": len(vectors), "regrow_queued": False}
    if vectors:  # the new tasks join the neighbour graph in the background; a project that outgrew its encoder regrows
        out["graph_queued"] = bool(enqueue_graph_update(store, config, pid))
        from backend.queueing import enqueue_regrow, job_queue
        from backend.regrow import regrow_due

        if regrow_due(store, config, pid):
            out["regrow_queued"] = enqueue_regrow(store, job_queue(config, store), pid, config)
    return out


def regrow_encoder_job(pid: int) -> dict:
    """Retrain the encoder of a project that outgrew it; switch only if not worse (``backend.regrow``)."""
    from backend.regrow import regrow_encoder

    store, config = _context()
    return regrow_encoder(store, config, pid).as_dict()


def reconcile_project_job(pid: int, force: bool = False, wait: float = 0.0) -> dict:
    """Reconcile one project's annotations with Label Studio (lost webhooks, see ``backend.reconcile``).

    Args:
        force: resync even if the counters agree.
        wait: seconds to let webhooks still in flight (concurrent annotators) land before comparing.
    """
    from backend.reconcile import reconcile_project

    store, config = _context()
    store.clear_reconcile(pid, started_at=time.time())  # FIRST: mismatches seen from now on queue one more
    if wait > 0:
        time.sleep(min(wait, 60.0))
    return reconcile_project(store, config, pid, force=force).as_dict()


def purge_project_job(pid: int) -> dict:
    """Purge a project that Label Studio says it deleted (``PROJECT_DELETED``); nothing if it still exists."""
    from backend.labelstudio import label_studio_access, project_exists

    store, config = _context()
    access = label_studio_access(config, {})
    if not (access.trusted and access.usable):
        return {"project": pid, "status": "skipped", "reason": "no configured Label Studio to confirm with"}
    if project_exists(access, pid):
        log.warning("PROJECT_DELETED for project %s, but Label Studio still has it: nothing purged", pid)
        return {"project": pid, "status": "refused", "reason": "the project still exists in Label Studio"}
    removed = store.purge_project(pid)
    log.info("project %s: purged (%d keys), Label Studio deleted it", pid, removed)
    return {"project": pid, "status": "purged", "keys": removed}
