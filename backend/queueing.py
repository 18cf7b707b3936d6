"""Every enqueue of an RQ job, and the rules that keep a burst of events from queueing a burst of jobs.

Coalescing, per project (the only place these rules are written down):

* Training. A label change queues a run only if it sets the project's ``train_pending`` flag (``SET NX``);
  while the flag is set, further changes ride on the queued run. A starting run first waits for the
  project's training lock (so two runs of one project never fit at once, even on several workers), then
  clears the flag, then reads the labels: a label arriving from that moment on queues exactly one more run.
  So per project at most one run trains and one waits or is queued, and the last label always gets a run.
  This holds for every trigger: labels, reconcile, bulk encoding and ``START_TRAINING`` (Label Studio's
  Train button; fifty presses queue one run). The flag expires after two job timeouts, so a queued job that
  vanished (Redis flushed by hand) cannot block training forever; a failed enqueue clears the flag it has
  just set.
* Reconcile. A counters mismatch queues a reconcile job only if it sets the project's ``reconcile`` flag
  (cleared when the job starts), and only when the last reconcile started more than
  ``DALT_RECONCILE_INTERVAL`` ago: a mismatch that remains is seen again by a later webhook, and a
  misconfigured project cannot make DALT crawl Label Studio non-stop. ``START_TRAINING`` and a
  reconcile by hand skip the interval, never the flag: presses while a crawl is queued ride on it, so at
  most one crawl runs and one waits, as for training. The job waits ``DALT_RECONCILE_DELAY`` itself
  before comparing, so webhooks still in flight from concurrent annotators land first (RQ's scheduler,
  needed for ``enqueue_in``, dies with a Redis outage and is restarted only every maintenance interval).
* Encoding of new tasks (``TASKS_CREATED``) is not coalesced: each event names other tasks.
* The graph lane (its own queue, ``DALT_GRAPH_QUEUE``, and worker). A graph update (after bulk encoding
  and after each encoding job) and a propagation (after a fast-lane run whose newest snapshot predates its
  labels, and after a graph update when the project has labels) are coalesced like training: queued only
  if they set the project's ``graph_pending`` / ``spread_pending`` flag, which the job clears first thing
  after taking the project's graph lock (updates and propagations never overlap). So labels arriving
  during a propagation queue exactly one more, and the graph-based head lags by at most two runs.
* Purge (``PROJECT_DELETED``): queued only with a configured ``LABEL_STUDIO_URL`` and key, and the job
  deletes nothing unless that Label Studio answers 404 for the project (an unauthenticated webhook must
  not be able to wipe a project).

Jobs are enqueued by dotted name (``backend.jobs.*``): the web process never imports the job code.

Queues live on their own connection, :func:`job_queue`: ``DALT_QUEUE_REDIS_URL`` (default ``REDIS_URL``).
RQ's keys carry no hash tag and RQ moves them in MULTI/EXEC, so with project data on a Redis Cluster the
queues stay on a plain Redis; workers listen there (``rq worker --url``) and their jobs open the store on
``REDIS_URL`` (``backend.jobs``).
"""

from __future__ import annotations

import logging
import time
import uuid

from rq import Queue, Retry, get_current_job

from backend.config import Config
from backend.labelstudio import label_studio_access
from backend.store import Store
from backend.store.connection import connect, is_cluster

log = logging.getLogger(__name__)

# Retry intervals (s) for a failed or abandoned (worker killed) job.
RETRY_INTERVALS = [1, 5, 15]


def job_queue(config: Config, store: Store | None = None) -> Queue:
    """The queue every job goes to, on the queue Redis (``DALT_QUEUE_REDIS_URL``, else ``REDIS_URL``).

    Inside a job it is the connection the worker took that job from; with no separate queue URL and a
    plain Redis, ``store``'s own connection (the same server: no second pool).

    Raises:
        ValueError: project data is on a Redis Cluster and no plain queue Redis is configured.
    """
    job = get_current_job()
    if job is not None:
        connection = job.connection
    elif store is not None and not config.queue_redis_url and not is_cluster(store.r):
        connection = store.r
    else:
        connection = connect(config.queue_url, health_check_interval=30)
    return Queue(config.queue_name, connection=connection)


def _retry(config: Config) -> Retry | None:
    if config.train_retries <= 0:
        return None
    intervals = RETRY_INTERVALS[: config.train_retries]
    intervals += [intervals[-1]] * (config.train_retries - len(intervals))
    return Retry(max=config.train_retries, interval=intervals)


def _job_options(config: Config, kind: str, pid: int, description: str) -> dict:
    """What training and encoding jobs get: a unique id, explicit timeout, retries, result lifetimes."""
    return {
        "job_id": f"dalt-{kind}-{pid}-{uuid.uuid4().hex[:12]}",
        "job_timeout": config.train_job_timeout,
        "result_ttl": 3600,
        "failure_ttl": 7 * 24 * 3600,
        "retry": _retry(config),
        "description": description,
    }


def enqueue_training(store: Store, queue: Queue, pid: int, config: Config) -> bool:
    """Queue a training run for ``pid`` unless one is already queued (see the rules above).

    Returns:
        True when a job was enqueued.
    """
    marked = store.mark_train_pending(pid, ttl=config.train_job_timeout * 2)
    if not marked:
        return False
    try:
        queue.enqueue(
            "backend.jobs.train_project_job", pid, **_job_options(config, "train", pid, f"train head of project {pid}")
        )
    except Exception:
        # Without this, a flag set just before Redis went away would block every run for its whole TTL.
        try:
            store.clear_train_pending(pid)
        except Exception:  # noqa: BLE001 - Redis is gone; the TTL frees the flag eventually
            pass
        raise
    return True


def _flagged(mark, clear, enqueue) -> str | None:
    """Enqueue only when ``mark()`` set a coalescing flag (returns the job id); a failed enqueue clears it."""
    if not mark():
        return None
    try:
        return enqueue().id
    except Exception:
        try:
            clear()
        except Exception:  # noqa: BLE001 - Redis is gone; the TTL frees the flag eventually
            pass
        raise


def graph_queue(store: Store, config: Config) -> Queue:
    """The graph lane's queue, on the same queue Redis as every other job (:func:`job_queue`)."""
    return Queue(config.graph_queue, connection=job_queue(config, store).connection)


def enqueue_graph_update(store: Store, config: Config, pid: int) -> str | None:
    """Queue a graph update (build, or add newly encoded tasks) unless one is queued; the job id, or None."""
    return _flagged(
        lambda: store.mark_graph_pending(pid, ttl=config.train_job_timeout * 2),
        lambda: store.clear_graph_pending(pid),
        lambda: graph_queue(store, config).enqueue(
            "backend.jobs.update_graph_job", pid,
            **_job_options(config, "graph", pid, f"update the neighbour graph of project {pid}")),
    )


def enqueue_spreading(store: Store, config: Config, pid: int) -> str | None:
    """Queue a graph-lane propagation unless one is queued; the job id, or None."""
    return _flagged(
        lambda: store.mark_spread_pending(pid, ttl=config.train_job_timeout * 2),
        lambda: store.clear_spread_pending(pid),
        lambda: graph_queue(store, config).enqueue(
            "backend.jobs.spread_project_job", pid,
            **_job_options(config, "spread", pid, f"propagate the labels of project {pid} over its graph")),
    )


def enqueue_encoding(queue: Queue, pid: int, tasks: list[dict], config: Config) -> str:
    """Queue encoding of new tasks (``TASKS_CREATED``); returns the job id."""
    job = queue.enqueue(
        "backend.jobs.encode_tasks_job",
        pid,
        tasks,
        **_job_options(config, "encode", pid, f"encode {len(tasks)} new tasks of project {pid}"),
    )
    return job.id


def enqueue_regrow(store: Store, queue: Queue, pid: int, config: Config) -> bool:
    """Queue a regrow of ``pid``'s encoder (``backend.regrow``), once per current encoder version.

    The job id names the encoder it replaces, so the many ``TASKS_CREATED`` jobs of a growing project queue
    one regrow; a kept result (the candidate was worse) stays for a week, so it is not retried at once.

    Returns:
        True when a job was enqueued.
    """
    from rq.job import Job

    info = store.current_encoder(pid)
    if info is None:
        return False
    job_id = f"dalt-regrow-{pid}-{info.version}"
    if Job.exists(job_id, connection=queue.connection):
        return False
    options = {**_job_options(config, "regrow", pid, f"regrow the encoder of project {pid}"), "job_id": job_id,
               "result_ttl": 7 * 24 * 3600, "job_timeout": max(config.train_job_timeout, 3600)}
    queue.enqueue("backend.jobs.regrow_encoder_job", pid, **options)
    return True


def enqueue_reconcile(
    store: Store, queue: Queue, config: Config, pid: int, *, reason: str, force: bool = False
) -> str:
    """Queue a reconcile job unless one is queued, or (unless ``force``) one started within the interval.

    Args:
        reason: why (logged).
        force: also skip the interval, and resync even if the counters agree when the job runs
            (``START_TRAINING``, by hand).

    Returns:
        ``"queued"``, ``"pending"`` (one is queued), ``"recent"`` (one started less than
        ``DALT_RECONCILE_INTERVAL`` ago) or ``"no_access"`` (no Label Studio URL and key to resync with).
    """
    if not label_studio_access(config, store.project(pid)).usable:
        if pid not in _warned and len(_warned) < 1000:
            _warned.add(pid)
            log.warning("project %s: %s, but no Label Studio URL/key to resync with (set LABEL_STUDIO_URL and "
                        "LABEL_STUDIO_API_KEY)", pid, reason)
        return "no_access"
    last = store.last_reconcile(pid)
    if not force and last is not None and time.time() - last < config.reconcile_interval:
        return "recent"
    if not store.mark_reconcile(pid, ttl=int(config.reconcile_delay) + 3600):
        return "pending"
    log.info("project %s: reconcile queued (%s)", pid, reason)
    try:
        queue.enqueue(
            "backend.jobs.reconcile_project_job",
            pid,
            force,
            config.reconcile_delay,
            job_timeout=max(600, config.train_job_timeout),
            result_ttl=3600,
            failure_ttl=7 * 24 * 3600,
            description=f"reconcile annotations of project {pid} with Label Studio",
        )
    except Exception:
        store.clear_reconcile(pid)
        raise
    return "queued"


def enqueue_purge(store: Store, queue: Queue, config: Config, pid: int) -> str:
    """``PROJECT_DELETED``: queue a purge job (it confirms the deletion with Label Studio first).

    Returns:
        ``"queued"``, ``"unknown"`` (no such project here) or ``"unconfirmable"`` (no configured Label
        Studio URL and key to confirm with: nothing is deleted; ``dalt purge`` does it by hand).
    """
    access = label_studio_access(config, {})  # only the configured Label Studio may confirm a deletion
    if not (access.trusted and access.usable):
        log.warning("PROJECT_DELETED for project %s not applied: no configured LABEL_STUDIO_URL and key to confirm "
                    "it with; run `dalt purge --project %s` by hand", pid, pid)
        return "unconfirmable"
    if not store.project(pid).get("label_config"):
        return "unknown"
    queue.enqueue("backend.jobs.purge_project_job", pid, job_id=f"dalt-purge-{pid}-{uuid.uuid4().hex[:12]}",
                  job_timeout=max(600, config.train_job_timeout), result_ttl=3600, failure_ttl=7 * 24 * 3600,
                  retry=_retry(config), description=f"purge project {pid} (deleted in Label Studio)")
    return "queued"


_warned: set[int] = set()  # projects whose missing Label Studio access was logged once (bounded)
