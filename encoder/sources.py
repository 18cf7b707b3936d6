"""Where bulk encoding gets its tasks besides a Label Studio project: a folder of images, or a JSON export.

Every source yields Label Studio-shaped tasks (``{"id": int, "data": {"image": ref}}``) so the rest of
the pipeline is the same for all of them (a project's tasks come from ``backend.labelstudio.iter_tasks``:
the encoder package does not talk to Label Studio's API).

Task ids for a folder (``tasks_from_dir``): when every image's file name without extension is a positive
integer (``17.png``) and no two are equal, that number is the task id, so ids never change as files are
added. Otherwise images are numbered ``1..N`` in the order of their paths relative to the folder, sorted
as strings: stable as long as the folder's contents do not change (adding a file can shift later ids, so
re-encode with ``--retrain`` or use numeric names for folders that grow).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from encoder.fetch import FetchError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff"}


def tasks_from_dir(root: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Tasks for every image file under ``root`` (recursively); ``data.image`` is the relative path."""
    base = Path(root)
    if not base.is_dir():
        raise FileNotFoundError(f"{root} is not a folder")
    rels = sorted(
        p.relative_to(base).as_posix()
        for p in base.rglob("*")
        if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
    )
    stems = [Path(r).stem for r in rels]
    numeric = all(s.isdigit() and int(s) > 0 for s in stems) and len(set(map(int, stems))) == len(stems)
    if numeric:
        return [{"id": int(s), "data": {"image": r}} for s, r in zip(stems, rels, strict=True)]
    return [{"id": i, "data": {"image": r}} for i, r in enumerate(rels, start=1)]


def tasks_from_export(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Tasks from a Label Studio JSON export (a list of tasks with ``id`` and ``data``).

    Raises:
        ValueError: the file is not a JSON list of tasks.
    """
    with open(path, encoding="utf-8") as fh:
        data = json.load(fh)
    if isinstance(data, dict) and isinstance(data.get("tasks"), list):
        data = data["tasks"]
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a JSON list of tasks (Label Studio's JSON export)")
    tasks = []
    for i, t in enumerate(data):
        if not isinstance(t, dict) or not isinstance(t.get("data"), dict) or "id" not in t:
            raise ValueError(f"{path}: item {i} is not a task with 'id' and 'data'")
        tasks.append({"id": int(t["id"]), "data": t["data"]})
    return tasks


class DirectoryFetcher:
    """Reads images of a local folder for tasks made by :func:`tasks_from_dir` (same API as ImageFetcher).

    Paths are confined to ``root`` (no ``..`` or absolute paths out of it).
    """

    def __init__(self, root: str | os.PathLike[str], max_bytes: int = 20 * 2**20):
        self.root = os.path.realpath(root)
        self.max_bytes = max_bytes

    def fetch(self, ref: str) -> bytes:
        path = os.path.realpath(os.path.join(self.root, ref))
        if os.path.commonpath([path, self.root]) != self.root:
            raise FetchError(f"path escapes the folder: {ref}", url=ref, reason="bad_url")
        try:
            size = os.path.getsize(path)
            if size > self.max_bytes:
                raise FetchError(
                    f"too large: {size} bytes exceed the limit of {self.max_bytes} bytes: {ref}",
                    url=ref,
                    reason="too_large",
                )
            with open(path, "rb") as fh:
                return fh.read()
        except FileNotFoundError:
            raise FetchError(f"not found: {ref}", url=ref, reason="not_found") from None
        except OSError as exc:
            raise FetchError(f"cannot read {ref}: {exc.strerror}", url=ref, reason="connection") from None

    def fetch_many(
        self, refs: list[str], on_done: Callable[[int], None] | None = None
    ) -> list[bytes | FetchError]:
        out: list[bytes | FetchError] = []
        for ref in refs:
            try:
                out.append(self.fetch(ref))
            except FetchError as exc:
                out.append(exc)
            if on_done is not None:
                on_done(1)
        return out

    def close(self) -> None:
        """Nothing to release (same API as ImageFetcher)."""
