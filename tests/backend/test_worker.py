"""backend.worker.PreloadedWorker: a real `rq worker --worker-class` process trains and publishes."""

import subprocess
import sys

from rq import Queue

from backend.queueing import enqueue_training
from tests.conftest import ROOT, wait_for


def test_preloaded_worker_trains_through_a_real_process(start_worker, seeded_project, store, config):
    seeded = seeded_project(n=60)
    for i in range(30):
        store.record_annotation(1, i + 1, seeded["ids"][i], seeded["y"][i])
    worker = start_worker(RQ_WORKER_CLASS="backend.worker.PreloadedWorker")
    assert enqueue_training(store, Queue("dalt", connection=store.r), 1, config)
    wait_for(lambda: store.current_version(1), timeout=60)
    assert store.versions(1)[0]["labels"] == 30
    assert worker.proc.poll() is None, worker.log()


def test_importing_the_worker_preloads_the_job_code():
    """In a fresh interpreter, importing the worker class is what brings in sklearn and the job code."""
    code = (
        "import sys; import rq; before = 'sklearn.linear_model' in sys.modules; import backend.worker; "
        "mods = ('backend.jobs', 'backend.training', 'backend.encoding', 'sklearn.linear_model', 'torch'); "
        "print(before, all(m in sys.modules for m in mods))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True"]
