"""gunicorn settings for DALT; gunicorn reads ./gunicorn.conf.py by itself, command-line flags win.

Used by ``make run``, the Dockerfile and docker compose: ``gunicorn 'backend.app:create_app()'``.
"""

import os

# Loopback unless HOST says otherwise: a fresh start must not open the webhook to the network
# (the Dockerfile sets HOST=0.0.0.0: a container publishes its port explicitly).
bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '9090')}"
workers = int(os.environ.get("DALT_HTTP_WORKERS", "2"))
threads = int(os.environ.get("DALT_HTTP_THREADS", "4"))
timeout = 120  # Label Studio waits up to 100 s for a /predict of a large selection
accesslog = "-"
# The path without its query string: a webhook secret given as ?secret= must never reach a log.
access_log_format = '%(h)s %(l)s %(u)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(M)sms'


def child_exit(server, worker):
    """Let Prometheus' multiprocess mode drop a dead worker's live gauges."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
