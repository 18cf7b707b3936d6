"""gunicorn settings for DALT; gunicorn reads ./gunicorn.conf.py by itself, command-line flags win.

Used by ``make run``, the Dockerfile and docker compose: ``gunicorn 'backend.app:create_app()'``.
"""

import os

from backend.config import ProcessConfig

_process = ProcessConfig.from_env()  # HOST, PORT, DALT_HTTP_WORKERS, DALT_HTTP_THREADS (docs/configuration.md)
# Loopback unless HOST says otherwise (the Dockerfile sets HOST=0.0.0.0: a container publishes its port).
bind = f"{_process.host}:{_process.port}"
workers = _process.http_workers
threads = _process.http_threads
timeout = 120  # Label Studio waits up to 100 s for a /predict of a large selection
accesslog = "-"
# The path without its query string: a webhook secret given as ?secret= must never reach a log.
access_log_format = '%(h)s %(l)s %(u)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(M)sms'


def child_exit(server, worker):
    """Let Prometheus' multiprocess mode drop a dead worker's live gauges."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
