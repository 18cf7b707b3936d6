"""Glue between the backend and the ``encoder`` package: encode cache misses with the project's encoder.

Used by ``/predict`` for tasks without a cached embedding and by the job that ``TASKS_CREATED`` queues.
Per call it costs one Redis read for the current encoder version and one for the project's settings:
the encoder itself is loaded from Redis once per ``(project, version)`` and kept in-process, and one
:class:`~encoder.fetch.ImageFetcher` (connection pool, download threads, cached access token) is kept per
distinct :class:`~encoder.settings.FetchSettings` (Label Studio URL, key, limits, local storage scope).
Both caches are :class:`~backend.cache.ByteLRU` s bounded in bytes (``DALT_ENCODER_CACHE_BYTES``,
``DALT_FETCHER_CACHE_BYTES``); an evicted fetcher is closed (its connection pool and threads released).
Which URL and key a project's downloads use is decided by ``backend.labelstudio`` alone.
"""

from __future__ import annotations

import logging
import threading

import numpy as np

from backend.cache import ByteLRU
from backend.config import Config
from backend.labelstudio import LabelStudioAccess, label_studio_access, local_storage_scope
from backend.store import Store
from encoder.artifact import EncoderArtifact
from encoder.fetch import ImageFetcher
from encoder.pipeline import TaskEncoder
from encoder.settings import FetchSettings

log = logging.getLogger(__name__)

# What a cached fetcher is counted as: its pool of up to 16 download threads (stacks, buffers) and its
# connection pool are not measurable from Python, so a fixed estimate bounds how many a process keeps.
FETCHER_COST = 8 * 2**20

_lock = threading.Lock()
_artifacts: ByteLRU[tuple[int, str], tuple[EncoderArtifact, int]] | None = None
_fetchers: ByteLRU[FetchSettings, ImageFetcher] | None = None


def _caches(config: Config) -> tuple[ByteLRU, ByteLRU]:
    """The process's artifact and fetcher caches, made with the budgets of the first configuration seen."""
    global _artifacts, _fetchers
    with _lock:
        if _artifacts is None or _fetchers is None:
            _artifacts = ByteLRU(config.encoder_cache_bytes, lambda entry: entry[1], name="encoders")
            _fetchers = ByteLRU(config.fetcher_cache_bytes, lambda _: FETCHER_COST, on_evict=ImageFetcher.close,
                                name="fetchers")
        return _artifacts, _fetchers


def load_artifact(store: Store, pid: int, version: str, config: Config | None = None) -> EncoderArtifact | None:
    """The encoder ``version`` of project ``pid``, from the in-process cache or Redis (None if unknown)."""
    artifacts, _ = _caches(config or Config())
    key = (int(pid), version)
    hit = artifacts.get(key)
    if hit is not None:
        return hit[0]
    blob = store.encoder_blob(pid, version)
    if blob is None:
        return None
    art = EncoderArtifact.from_bytes(blob)
    artifacts.put(key, (art, 2 * len(blob)))  # the weights as tensors, plus the module around them
    return art


def fetcher_for(config: Config, access: LabelStudioAccess, local_files_scope: tuple[str, ...] | None = ()
                ) -> ImageFetcher:
    """A shared fetcher for this Label Studio access, local storage scope and the configured limits."""
    _, fetchers = _caches(config)
    settings = access.fetch_settings(config, local_files_scope)
    return fetchers.get_or_create(settings, lambda: ImageFetcher.from_settings(settings))


def encode_missing(store: Store, config: Config, pid: int, tasks: list[dict]) -> dict[int, np.ndarray]:
    """Encode ``tasks`` with the project's current encoder, store and return the vectors by task id.

    Returns ``{}`` when the project has no encoder yet (bulk encoding has not run). Tasks whose image
    cannot be fetched or decoded are left out and logged with the reason; they never fail the others.
    """
    if not tasks:
        return {}
    info = store.current_encoder(pid)
    if info is None:
        return {}
    artifact = load_artifact(store, pid, info.version, config)
    if artifact is None:
        log.warning("project %s: encoder %s has metadata but no weights in the store", pid, info.version)
        return {}
    project = store.project(pid)
    access = label_studio_access(config, project)
    encoder = TaskEncoder(
        artifact,
        fetcher_for(config, access, local_storage_scope(config, access, pid)),
        image_key=project.get("image_key") or None,
        max_pixels=config.max_image_pixels,
        max_decode_bytes=config.max_decode_bytes,
    )
    vectors, errors = encoder.encode_tasks(tasks)
    for tid, reason in errors.items():
        log.warning("project %s: task %s not encoded: %s", pid, tid, reason)
    if vectors:
        store.put_embeddings(pid, info.version, vectors)
    return vectors
