"""A test-only RQ worker whose work horse stops INSIDE a head's fit until the test lets it go.

``rq worker --worker-class tests.reliability.blocking_worker.FitBlockingWorker`` wraps the fit that
``backend.training`` calls: on entering it, the horse records its pid under :data:`ENTERED` in the job's
Redis, then waits until :data:`RELEASE` exists. A test therefore knows, without guessing how long a fit
takes, that the job is between reading the labels and publishing: the moment to ``kill -9`` it.
"""

from __future__ import annotations

import os
import time

import backend.training
from backend.worker import PreloadedWorker

ENTERED = "dalt-test:fit-entered"  # list of the pids of horses that entered the fit
RELEASE = "dalt-test:fit-release"  # set by the test: blocked fits go on
MAX_BLOCK_S = 600.0  # never hang a forgotten horse forever


def _blocking(fit):
    def blocked_fit(*args, **kwargs):
        from rq import get_current_job

        r = get_current_job().connection
        r.rpush(ENTERED, os.getpid())
        deadline = time.monotonic() + MAX_BLOCK_S
        while not r.exists(RELEASE) and time.monotonic() < deadline:
            time.sleep(0.05)
        return fit(*args, **kwargs)

    return blocked_fit


class FitBlockingWorker(PreloadedWorker):
    """:class:`backend.worker.PreloadedWorker` whose horses block inside the fit (see the module docstring)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # An AttributeError here (the fit moved) stops the worker, and the test fails: never a silent pass.
        backend.training.fit_head = _blocking(backend.training.fit_head)
