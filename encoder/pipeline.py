"""Tasks -> vectors: pick the image URL, download, decode, encode; one bad task never spoils the rest."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from encoder.artifact import EncoderArtifact
from encoder.decode import DEFAULT_MAX_DECODE_BYTES, DecodeError, decode_image
from encoder.fetch import FetchError, ImageFetcher


def task_image_url(task: dict[str, Any], image_key: str | None) -> str:
    """The image reference of a task.

    Args:
        task: a Label Studio task (``{"id": ..., "data": {...}}``).
        image_key: the data key the label config's ``<Image value="$key">`` names; without it, the first
            string value in ``task["data"]``.

    Raises:
        ValueError: the task has no usable image reference.
    """
    data = task.get("data")
    if not isinstance(data, dict) or not data:
        raise ValueError("task has no data")
    if image_key:
        value = data.get(image_key)
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"task data has no image URL under {image_key!r}")
        return value
    for value in data.values():
        if isinstance(value, str) and value.strip():
            return value
    raise ValueError("task data holds no image URL")


def fetch_task_images(
    tasks: list[dict[str, Any]], fetcher: ImageFetcher, image_key: str | None, errors: dict[int, str],
    known: dict[int, bytes | FetchError] | None = None,
) -> dict[int, bytes | FetchError]:
    """The tasks' image bytes (or why not) by task id; ``known`` ones are not downloaded again.

    Tasks without a usable image reference go to ``errors`` (``bad_url: ...``) and are left out.
    """
    known = known or {}
    refs, ids = [], []
    for t in tasks:
        tid = int(t["id"])
        if tid in known:
            continue
        try:
            refs.append(task_image_url(t, image_key))
            ids.append(tid)
        except ValueError as exc:
            errors[tid] = f"bad_url: {exc}"
    got = dict(zip(ids, fetcher.fetch_many(refs), strict=True))
    got.update((tid, blob) for tid, blob in known.items() if tid not in got)
    return {int(t["id"]): got[int(t["id"])] for t in tasks if int(t["id"]) in got}


class TaskEncoder:
    """Encode Label Studio tasks with one encoder artifact.

    Args:
        artifact: the encoder (its ``image_size``/``channels`` set the preprocessing).
        fetcher: downloads the images.
        image_key: see :func:`task_image_url`.
        max_pixels: decompression-bomb limit passed to :func:`encoder.decode.decode_image`.
        max_decode_bytes: decode memory limit passed to :func:`encoder.decode.decode_image`.
    """

    def __init__(
        self,
        artifact: EncoderArtifact,
        fetcher: ImageFetcher,
        image_key: str | None = None,
        *,
        max_pixels: int = 40_000_000,
        max_decode_bytes: int = DEFAULT_MAX_DECODE_BYTES,
    ):
        self.artifact = artifact
        self.fetcher = fetcher
        self.image_key = image_key
        self.max_pixels = max_pixels
        self.max_decode_bytes = max_decode_bytes

    def load_images(
        self, tasks: list[dict[str, Any]], on_fetched: Callable[[int], None] | None = None
    ) -> tuple[list[int], np.ndarray, dict[int, str]]:
        """Download and preprocess: ``(task ids, images [n, C, S, S], errors by task id)``."""
        errors: dict[int, str] = {}
        ids: list[int] = []
        urls: list[str] = []
        for task in tasks:
            tid = int(task["id"])
            try:
                urls.append(task_image_url(task, self.image_key))
                ids.append(tid)
            except ValueError as exc:
                errors[tid] = f"bad_url: {exc}"
        blobs = self.fetcher.fetch_many(urls, on_done=on_fetched)
        ok_ids: list[int] = []
        arrays: list[np.ndarray] = []
        a = self.artifact
        for tid, blob in zip(ids, blobs, strict=True):
            if isinstance(blob, FetchError):
                errors[tid] = f"{blob.reason}: {blob}"
                continue
            try:
                arrays.append(
                    decode_image(blob, size=a.image_size, channels=a.channels, max_pixels=self.max_pixels,
                                 max_decode_bytes=self.max_decode_bytes)
                )
                ok_ids.append(tid)
            except DecodeError as exc:
                errors[tid] = f"decode: {exc}"
        shape = (0, a.channels, a.image_size, a.image_size)
        images = np.stack(arrays) if arrays else np.zeros(shape, np.float32)
        return ok_ids, images, errors

    def encode_tasks(self, tasks: list[dict[str, Any]]) -> tuple[dict[int, np.ndarray], dict[int, str]]:
        """Vectors by task id, and the reason for every task that could not be encoded.

        Error reasons start with a category (``not_found:``, ``auth:``, ``decode:``, ``bad_url:``, ...).
        """
        ids, images, errors = self.load_images(tasks)
        if not ids:
            return {}, errors
        vectors = self.artifact.encode(images)
        return {tid: vectors[i] for i, tid in enumerate(ids)}, errors
