"""Prometheus metrics for ``GET /metrics``.

Request counts and latencies are counted in the serving process (in gunicorn's multiprocess mode when
``PROMETHEUS_MULTIPROC_DIR`` is set, so every worker's requests show up). Everything the RQ workers do
(training runs and durations, queue depth, label counts, model versions) lives in Redis and is read at
scrape time, so it is right whichever process did the work.

Cardinality and cost are bounded whatever the number of projects: a scrape lists the
``DALT_METRICS_PROJECTS`` most recently active projects (``dalt_projects`` counts all), the live
evaluation of their ``DALT_METRICS_VERSIONS`` newest evaluated versions plus ``version="all"``, and reads
them in a fixed number of Redis round trips (``Store.listed_projects``, ``Store.overview``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, SummaryMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from rq import Queue

from backend.config import Config
from backend.evaluation import OUTCOMES, summarize_evaluation
from backend.store import Store

log = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class RedisCollector:
    """Reads per-project state from Redis at scrape time."""

    def __init__(self, store: Store, queue: Queue, config: Config | None = None):
        self.store = store
        self.queue = queue
        self.config = config or Config()

    def collect(self) -> Iterator:
        projects = GaugeMetricFamily("dalt_projects", "Projects with a label config (all, listed or not)")
        labels = GaugeMetricFamily("dalt_labels", "Labeled tasks per project", labels=["project"])
        version = GaugeMetricFamily("dalt_model_version", "Number of the served head version", labels=["project"])
        runs = CounterMetricFamily("dalt_training_runs", "Training jobs finished", labels=["project", "status"])
        seconds = CounterMetricFamily("dalt_training_seconds", "Time spent in training jobs", labels=["project"])
        failures = CounterMetricFamily("dalt_training_failures", "Training jobs that raised", labels=["project"])
        depth = GaugeMetricFamily("dalt_queue_depth", "Jobs waiting in the RQ queue", labels=["queue"])
        evaluated = CounterMetricFamily(
            "dalt_predictions_evaluated",
            "Annotations compared with the prediction served for their task, by model version and outcome",
            labels=["project", "version", "outcome"],
        )
        acceptance = GaugeMetricFamily(
            "dalt_acceptance_rate", "Share of served predictions the annotator kept (version 'all': every version)",
            labels=["project", "version"],
        )
        lead = SummaryMetricFamily(
            "dalt_annotation_lead_time_seconds",
            "Annotation lead_time of tasks whose prediction was accepted or corrected",
            labels=["project", "version", "outcome"],
        )
        reliability = GaugeMetricFamily(
            "dalt_score_reliability",
            "Per bin of the served score (all versions): mean score ('expected'), share the annotator kept "
            "('observed') and annotations ('n')", labels=["project", "bin", "stat"],
        )
        try:
            pids, total = self.store.listed_projects(self.config.metrics_projects)
            projects.add_metric([], total)
            for pid, state in self.store.overview(pids).items():
                p = str(pid)
                labels.add_metric([p], state["labels"])
                current = state["current"]
                version.add_metric([p], int(current[1:]) if current and current[1:].isdigit() else 0)
                stats = state["stats"]
                for status in ("published", "stale", "skipped"):
                    runs.add_metric([p, status], stats.get(f"train_{status}", 0.0))
                seconds.add_metric([p], stats.get("train_seconds", 0.0))
                failures.add_metric([p], stats.get("train_failures", 0.0))
                self._evaluation(pid, state["evaluation"], evaluated, acceptance, lead, reliability)
            depth.add_metric([self.queue.name], self.queue.count)
        except Exception:  # a scrape during a Redis outage still returns the request metrics
            log.warning("metrics: Redis state unavailable", exc_info=True)
            return
        yield from (projects, labels, version, runs, seconds, failures, depth, evaluated, acceptance, lead,
                    reliability)

    def _evaluation(self, pid: int, raw: dict, evaluated, acceptance, lead, reliability) -> None:
        """Live evaluation of the newest ``DALT_METRICS_VERSIONS`` evaluated versions, and of all together."""
        summary = summarize_evaluation(raw)
        p = str(pid)
        n = self.config.metrics_versions
        recent = list(summary["versions"].items())[-n:] if n > 0 else []
        for v, s in [*recent, ("all", summary["total"])]:
            if s["acceptance_rate"] is not None:
                acceptance.add_metric([p, v], s["acceptance_rate"])
            for o in OUTCOMES:
                if v != "all":
                    evaluated.add_metric([p, v, o], s[o])
                if s[f"lead_time_{o}_count"]:
                    lead.add_metric([p, v, o], s[f"lead_time_{o}_count"], s[f"lead_time_{o}_sum"])
        for row in summary["total"]["reliability"]:
            for stat in ("expected", "observed", "n"):
                reliability.add_metric([p, row["bin"], stat], row[stat])


class Metrics:
    """The request metrics of one app and the registry /metrics renders."""

    def __init__(self, store: Store, queue: Queue, config: Config | None = None):
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "dalt_http_requests", "HTTP requests", ["endpoint", "method", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "dalt_http_request_seconds",
            "HTTP request latency",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.predicted_tasks = Counter("dalt_predicted_tasks", "Tasks answered by /predict", registry=self.registry)
        self.redis_collector = RedisCollector(store, queue, config)

    def observe(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        """Count one request."""
        self.requests.labels(endpoint, method, str(status)).inc()
        self.latency.labels(endpoint).observe(seconds)

    def render(self) -> bytes:
        """The Prometheus text exposition of everything."""
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            MultiProcessCollector(registry)
        else:
            registry = CollectorRegistry()
            registry.register(_Forward(self.registry))
        registry.register(self.redis_collector)
        return generate_latest(registry)


class _Forward:
    """Lets a scrape registry include another registry's metrics."""

    def __init__(self, registry: CollectorRegistry):
        self.registry = registry

    def collect(self) -> Iterator:
        return self.registry.collect()
