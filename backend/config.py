"""Configuration from environment variables, read in one place.

Names follow Label Studio's ML-backend conventions (``LABEL_STUDIO_URL``, ``LABEL_STUDIO_API_KEY``,
``BASIC_AUTH_USER``/``BASIC_AUTH_PASS``, ``LOG_LEVEL``) so an admin can reuse their usual settings; the
rest are prefixed ``DALT_``. :class:`Config` is what the backend and its workers do; :class:`ProcessConfig`
is how ``dalt run``, ``gunicorn.conf.py`` and the Label Studio helpers start processes. Every variable of both
mappings is documented in docs/configuration.md (tests/test_docs.py checks that page against them).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import ClassVar, Self
from urllib.parse import urlsplit

from encoder.settings import FetchSettings, TrainBudget

_BUDGET = TrainBudget()


def _bool(value: str) -> bool:
    return value.strip().lower() in ("1", "true", "yes", "on")


def _list(value: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in value.split(",") if v.strip())


class _FromEnv:
    """A frozen dataclass read from the environment variables its ``_ENV`` maps its fields to."""

    _ENV: ClassVar[dict[str, str]] = {}

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Self:
        """Read the settings from ``environ`` (default ``os.environ``); ``overrides`` win.

        Raises:
            ValueError: naming the variable whose value cannot be parsed.
        """
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for f in fields(cls):  # type: ignore[arg-type]
            name = cls._ENV.get(f.name)
            if name is None or name not in env:
                continue
            raw = env[name]
            try:
                if f.type in ("int", int):
                    values[f.name] = int(raw)
                elif f.type in ("float", float):
                    values[f.name] = float(raw)
                elif f.type in ("bool", bool):
                    values[f.name] = _bool(raw)
                elif "tuple" in str(f.type):
                    values[f.name] = _list(raw)
                else:
                    values[f.name] = raw
            except ValueError as exc:
                raise ValueError(f"{name}={raw!r} is not a valid value: {exc}") from None
        values.update(overrides)
        return cls(**values)


@dataclass(frozen=True)
class Config(_FromEnv):
    """Everything the backend, the workers and the scripts can be told."""

    redis_url: str = "redis://127.0.0.1:6379/0"
    # RQ's queues (empty: REDIS_URL); see queue_url
    queue_redis_url: str = ""
    label_studio_url: str = ""
    label_studio_api_key: str = field(default="", repr=False)
    basic_auth_user: str = ""
    basic_auth_pass: str = field(default="", repr=False)
    webhook_secret: str = field(default="", repr=False)
    log_level: str = "INFO"
    queue_name: str = "dalt"
    # The graph lane's queue (graph updates, label propagation): its own worker, so a long propagation never
    # delays the fast lane's training runs.
    graph_queue: str = "dalt-graph"
    # Training
    train_job_timeout: int = 600
    train_retries: int = 3
    keep_versions: int = 10
    # "spreading" (label spreading over all cached embeddings + logistic regression) won the labeling study
    # (docs/study); "logreg" is the paper's head.
    head: str = "spreading"
    # Calibrated scores (backend.calibration): folds of the held-out refits (0 or 1: serve raw scores),
    # and whether labels bulk-accepted from predictions train the head (they never calibrate it).
    calibration_folds: int = 5
    calibration_growth: float = 0.1  # refit the map when human labels grew by this fraction (0: every version)
    train_on_bulk: bool = False
    # The graph lane (backend.graphlane): BLAS/faiss threads of its jobs, and the most label-spreading sweeps
    # per propagation (warm-started from the previous snapshot, so runs add up to convergence).
    graph_threads: int = 1
    spread_sweeps: int = 30
    # Encoder objective for bulk encoding (dalt encode): "contrastive" won the study;
    # "autoencoder" is the paper's, "augmented-autoencoder" the paper's on augmented images.
    encoder_objective: str = "contrastive"
    # Encoder training budget (encoder.settings.TrainBudget): optimizer steps, the floor early stopping
    # cannot cut, a wall-clock cap in seconds (0: none), and patience in evaluations (every 50 steps).
    encoder_steps: int = _BUDGET.steps
    encoder_min_steps: int = _BUDGET.min_steps
    encoder_max_seconds: float = _BUDGET.max_seconds or 0.0
    encoder_patience: int = _BUDGET.patience
    # Retrain the encoder in the background once it has encoded this many times the images it was trained
    # on (backend.regrow); 0: never.
    encoder_regrow: float = 2.0
    # Requests: what one request may cost (docs/guarantees.md, "Bounded work per request")
    max_content_length: int = 32 * 1024 * 1024
    max_json_values: int = 2_000_000  # counted on the raw body before it is parsed
    predict_max_tasks: int = 10_000
    webhook_max_tasks: int = 10_000  # TASKS_CREATED / TASKS_DELETED
    predict_encode_limit: int = 64
    # Image fetching (see encoder.fetch)
    fetch_timeout: float = 10.0
    max_image_bytes: int = 20 * 1024 * 1024
    max_image_pixels: int = 40_000_000
    max_decode_bytes: int = 128 * 1024 * 1024
    allowed_hosts: tuple[str, ...] = ()
    allow_private_networks: bool = False
    local_files_root: str = ""
    # Label Studio's LOCAL_FILES_DOCUMENT_ROOT as Label Studio sees it (its storages' paths start with it);
    # empty: the same path as local_files_root (both on one machine).
    local_files_ls_root: str = ""
    # Per-process caches, bounded in bytes (backend.cache)
    config_cache_bytes: int = 16 * 1024 * 1024
    head_cache_bytes: int = 256 * 1024 * 1024
    encoder_cache_bytes: int = 256 * 1024 * 1024
    fetcher_cache_bytes: int = 64 * 1024 * 1024
    # Metrics and the status page: how many projects and versions they list
    metrics_projects: int = 100
    metrics_versions: int = 3
    # Lost webhooks (see backend.reconcile)
    reconcile_delay: float = 2.0
    reconcile_interval: float = 60.0

    _ENV = {
        "redis_url": "REDIS_URL",
        "queue_redis_url": "DALT_QUEUE_REDIS_URL",
        "label_studio_url": "LABEL_STUDIO_URL",
        "label_studio_api_key": "LABEL_STUDIO_API_KEY",
        "basic_auth_user": "BASIC_AUTH_USER",
        "basic_auth_pass": "BASIC_AUTH_PASS",
        "webhook_secret": "DALT_WEBHOOK_SECRET",
        "log_level": "LOG_LEVEL",
        "queue_name": "DALT_QUEUE",
        "graph_queue": "DALT_GRAPH_QUEUE",
        "graph_threads": "DALT_GRAPH_THREADS",
        "spread_sweeps": "DALT_SPREAD_SWEEPS",
        "train_job_timeout": "DALT_TRAIN_JOB_TIMEOUT",
        "train_retries": "DALT_TRAIN_RETRIES",
        "keep_versions": "DALT_KEEP_VERSIONS",
        "head": "DALT_HEAD",
        "calibration_folds": "DALT_CALIBRATION_FOLDS",
        "calibration_growth": "DALT_CALIBRATION_GROWTH",
        "train_on_bulk": "DALT_TRAIN_ON_BULK",
        "encoder_objective": "DALT_ENCODER_OBJECTIVE",
        "encoder_steps": "DALT_ENCODER_STEPS",
        "encoder_min_steps": "DALT_ENCODER_MIN_STEPS",
        "encoder_max_seconds": "DALT_ENCODER_MAX_SECONDS",
        "encoder_patience": "DALT_ENCODER_PATIENCE",
        "encoder_regrow": "DALT_ENCODER_REGROW",
        "max_content_length": "DALT_MAX_CONTENT_LENGTH",
        "max_json_values": "DALT_MAX_JSON_VALUES",
        "predict_max_tasks": "DALT_PREDICT_MAX_TASKS",
        "webhook_max_tasks": "DALT_WEBHOOK_MAX_TASKS",
        "predict_encode_limit": "DALT_PREDICT_ENCODE_LIMIT",
        "fetch_timeout": "DALT_FETCH_TIMEOUT",
        "max_image_bytes": "DALT_MAX_IMAGE_BYTES",
        "max_image_pixels": "DALT_MAX_IMAGE_PIXELS",
        "max_decode_bytes": "DALT_MAX_DECODE_BYTES",
        "allowed_hosts": "DALT_ALLOWED_HOSTS",
        "allow_private_networks": "DALT_ALLOW_PRIVATE_NETWORKS",
        "local_files_root": "DALT_LOCAL_FILES_ROOT",
        "local_files_ls_root": "DALT_LOCAL_FILES_LS_ROOT",
        "config_cache_bytes": "DALT_CONFIG_CACHE_BYTES",
        "head_cache_bytes": "DALT_HEAD_CACHE_BYTES",
        "encoder_cache_bytes": "DALT_ENCODER_CACHE_BYTES",
        "fetcher_cache_bytes": "DALT_FETCHER_CACHE_BYTES",
        "metrics_projects": "DALT_METRICS_PROJECTS",
        "metrics_versions": "DALT_METRICS_VERSIONS",
        "reconcile_delay": "DALT_RECONCILE_DELAY",
        "reconcile_interval": "DALT_RECONCILE_INTERVAL",
    }

    @property
    def queue_url(self) -> str:
        """Where RQ's queues live: ``DALT_QUEUE_REDIS_URL``, else ``REDIS_URL``.

        RQ keeps a job's keys apart from its queue's and moves them together in MULTI/EXEC, which a Redis
        Cluster refuses across slots; so with project data on a cluster the queues need a plain Redis.

        Raises:
            ValueError: ``REDIS_URL`` names a Redis Cluster and ``DALT_QUEUE_REDIS_URL`` is unset, or the
                queue URL is a cluster's itself.
        """
        url = self.queue_redis_url or self.redis_url
        if urlsplit(url).scheme.lower().endswith("+cluster"):
            which = "DALT_QUEUE_REDIS_URL" if self.queue_redis_url else "REDIS_URL"
            raise ValueError(f"{which} names a Redis Cluster, where RQ's queues cannot live: set "
                             "DALT_QUEUE_REDIS_URL to a plain redis:// URL (docs/deployment.md, Past one Redis)")
        return url

    @property
    def basic_auth_enabled(self) -> bool:
        """Basic auth is on only when both user and password are set."""
        return bool(self.basic_auth_user and self.basic_auth_pass)

    def train_budget(self) -> TrainBudget:
        """How much training a project's encoder gets (``dalt encode``)."""
        return TrainBudget(steps=self.encoder_steps, min_steps=self.encoder_min_steps,
                           max_seconds=self.encoder_max_seconds or None, patience=self.encoder_patience)

    def fetch_settings(self, ls_url: str | None = None, api_key: str | None = None, *, ls_trusted: bool = True,
                       local_files_scope: tuple[str, ...] | None = None) -> FetchSettings:
        """The encoder package's settings with this configuration's limits, for one Label Studio URL and key.

        Which URL and key (and whether the URL is trusted) is decided by ``backend.labelstudio`` alone
        (``LabelStudioAccess.fetch_settings``); nothing here falls back to the configured key, so a key never
        travels with a URL it was not configured with.

        Args:
            ls_trusted: the URL is the configured ``LABEL_STUDIO_URL`` (exempt from the private-address
                check); False for a ``hostname`` that ``/setup`` sent.
            local_files_scope: directories (as Label Studio names them) whose files may be read from disk
                for this project (its local storages); None: no scoping (a command run by hand on an export).
        """
        return FetchSettings(
            ls_url=ls_url or None,
            api_key=api_key or None,
            ls_trusted=ls_trusted,
            timeout=self.fetch_timeout,
            max_bytes=self.max_image_bytes,
            max_pixels=self.max_image_pixels,
            max_decode_bytes=self.max_decode_bytes,
            allowed_hosts=self.allowed_hosts,
            allow_private_networks=self.allow_private_networks,
            local_files_root=self.local_files_root or None,
            local_files_ls_root=self.local_files_ls_root or self.local_files_root or None,
            local_files_scope=local_files_scope,
        )


@dataclass(frozen=True)
class ProcessConfig(_FromEnv):
    """How DALT's processes are started and served: ``dalt run``, ``gunicorn.conf.py``, Label Studio's venv.

    Apart from :class:`Config` because none of it changes what the backend does, only where and how many.
    """

    # Loopback: a fresh `dalt run` must not open the webhook to the network (docs/guarantees.md)
    host: str = "127.0.0.1"
    port: int = 9090
    http_workers: int = 2
    http_threads: int = 4
    rq_workers: int = 1
    # ``dalt run`` starts its own redis-server on this port unless REDIS_URL is set (6390: never a Redis on 6379)
    redis_url: str = ""
    redis_port: int = 6390
    # RQ's queues when project data is elsewhere (a Redis Cluster); empty: the data Redis
    queue_redis_url: str = ""
    # Label Studio's own virtualenv for the demo and the e2e tests (empty: ~/.cache/dalt/label-studio-<version>)
    ls_venv: str = ""

    _ENV = {
        "host": "HOST",
        "port": "PORT",
        "http_workers": "DALT_HTTP_WORKERS",
        "http_threads": "DALT_HTTP_THREADS",
        "rq_workers": "DALT_RQ_WORKERS",
        "redis_url": "REDIS_URL",
        "redis_port": "DALT_REDIS_PORT",
        "queue_redis_url": "DALT_QUEUE_REDIS_URL",
        "ls_venv": "DALT_LS_VENV",
    }

