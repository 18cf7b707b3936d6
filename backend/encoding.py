"""Glue between the backend and the ``encoder`` package: encode cache misses with the project's encoder.

Used by ``/predict`` for tasks without a cached embedding and by the job that ``TASKS_CREATED`` queues.
Per call it costs one Redis read for the current encoder version and one for the project's settings:
the encoder itself is loaded from Redis once per ``(project, version)`` and kept in-process (a bounded
LRU), and one :class:`~encoder.fetch.ImageFetcher` (connection pool, download threads, cached access
token) is kept per distinct :class:`~encoder.settings.FetchSettings` (Label Studio URL, key, limits).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict

import numpy as np

from backend.config import Config
from backend.labelstudio import label_studio_access
from backend.store import Store
from encoder.artifact import EncoderArtifact
from encoder.fetch import ImageFetcher
from encoder.pipeline import TaskEncoder
from encoder.settings import FetchSettings

log = logging.getLogger(__name__)

_MAX_ARTIFACTS = 16
_lock = threading.Lock()
_artifacts: OrderedDict[tuple[int, str], EncoderArtifact] = OrderedDict()
_fetchers: dict[FetchSettings, ImageFetcher] = {}


def load_artifact(store: Store, pid: int, version: str) -> EncoderArtifact | None:
    """The encoder ``version`` of project ``pid``, from the in-process cache or Redis (None if unknown)."""
    key = (int(pid), version)
    with _lock:
        art = _artifacts.get(key)
        if art is not None:
            _artifacts.move_to_end(key)
            return art
    blob = store.encoder_blob(pid, version)
    if blob is None:
        return None
    art = EncoderArtifact.from_bytes(blob)
    with _lock:
        _artifacts[key] = art
        while len(_artifacts) > _MAX_ARTIFACTS:
            _artifacts.popitem(last=False)
    return art


def fetcher_for(config: Config, ls_url: str | None, api_key: str | None) -> ImageFetcher:
    """A shared fetcher for this Label Studio URL, key and the configured limits."""
    settings = config.fetch_settings(ls_url, api_key)
    with _lock:
        fetcher = _fetchers.get(settings)
        if fetcher is None:
            fetcher = _fetchers[settings] = ImageFetcher.from_settings(settings)
        return fetcher


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
    artifact = load_artifact(store, pid, info.version)
    if artifact is None:
        log.warning("project %s: encoder %s has metadata but no weights in the store", pid, info.version)
        return {}
    project = store.project(pid)
    ls_url, api_key = label_studio_access(config, project)
    encoder = TaskEncoder(
        artifact,
        fetcher_for(config, ls_url, api_key),
        image_key=project.get("image_key") or None,
        max_pixels=config.max_image_pixels,
    )
    vectors, errors = encoder.encode_tasks(tasks)
    for tid, reason in errors.items():
        log.warning("project %s: task %s not encoded: %s", pid, tid, reason)
    if vectors:
        store.put_embeddings(pid, info.version, vectors)
    return vectors
