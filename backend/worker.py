"""An RQ worker class that imports DALT's job code once, before it forks a work horse per job.

``rq worker`` forks a fresh work horse for every job (so a crashing or killed job cannot take the worker
down), and the horse imports the job's module on first use: scikit-learn for training, torch for
encoding. Those imports cost 1-3 s on a small machine, paid again by every job, which made each model
update take seconds longer than the fit itself. Importing them here, in the worker's parent process,
lets every forked horse inherit them ready-made; fork isolation is kept.

Use: ``rq worker --url <queue Redis> --worker-class backend.worker.PreloadedWorker ...`` (or
``RQ_WORKER_CLASS``). The worker listens on the queue Redis (``DALT_QUEUE_REDIS_URL``, else ``REDIS_URL``;
never a Redis Cluster); the jobs it runs open the project data on ``REDIS_URL`` themselves (``backend.jobs``).
"""

from __future__ import annotations

import sklearn.linear_model  # noqa: F401 - preloaded for the horses: the logreg head's fit
from rq.worker import Worker

import backend.encoding  # noqa: F401 - preloaded for the horses: torch, the encoder package
import backend.jobs  # noqa: F401 - preloaded for the horses: job entry points
import backend.training  # noqa: F401 - preloaded for the horses: training code


class PreloadedWorker(Worker):
    """``rq.Worker`` whose process already holds the job code (see the module docstring)."""
