"""Everything that talks to Label Studio's API, and which URL and key to talk to it with.

Credentials come from the configuration (``LABEL_STUDIO_URL``, ``LABEL_STUDIO_API_KEY``) first, else from
what Label Studio itself sent with ``/setup`` (``hostname`` and the project creator's ``access_token``),
so a backend connected from the UI works without its own key. The API is used through label-studio-sdk,
which accepts both a legacy key and a personal access token (and refreshes the latter by itself).

label-studio-sdk is imported on first use: the webhook and reconcile paths must stay light (no torch,
no SDK import at startup).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from backend.config import Config

if TYPE_CHECKING:
    from label_studio_sdk import LabelStudio

PAGE_SIZE = 100
TIMEOUT = 60


class LabelStudioAccess(NamedTuple):
    """A Label Studio URL and API key; either may be None when nothing configures it."""

    url: str | None
    api_key: str | None

    @property
    def usable(self) -> bool:
        """Both are known, so the API can be called."""
        return bool(self.url and self.api_key)


def label_studio_access(config: Config, project: Mapping[str, Any]) -> LabelStudioAccess:
    """Label Studio URL and key: the configured ones first, else those ``/setup`` saved for the project."""
    url = config.label_studio_url or project.get("hostname") or None
    key = config.label_studio_api_key or project.get("access_token") or None
    return LabelStudioAccess((str(url) if url else None), (str(key) if key else None))


def client(url: str, api_key: str, timeout: float = TIMEOUT) -> LabelStudio:
    """A label-studio-sdk client (either key kind)."""
    from label_studio_sdk import LabelStudio

    return LabelStudio(base_url=url, api_key=api_key, timeout=timeout)


def iter_tasks(url: str, api_key: str, project: int, *, page_size: int = 500) -> Iterator[dict[str, Any]]:
    """Every task of a project as ``{"id", "data"}``, page by page (bulk encoding's task source)."""
    for task in client(url, api_key).tasks.list(project=project, fields="task_only", page_size=page_size):
        yield {"id": int(task.id), "data": dict(task.data or {})}


def fetch_annotations(
    url: str, api_key: str, pid: int, page_size: int = PAGE_SIZE
) -> tuple[dict[int, tuple[int, dict]], int]:
    """Every annotation of a project: ``({annotation id: (task id, annotation)}, pages read)``.

    The reconcile crawl. Pages are requested one by one: Label Studio answers 404 past the last page,
    which the SDK's own iterator would raise.
    """
    from label_studio_sdk.core.api_error import ApiError

    api = client(url, api_key)
    out: dict[int, tuple[int, dict]] = {}
    page = 0
    while True:
        page += 1
        try:
            items = api.tasks.list(project=pid, fields="all", page=page, page_size=page_size).items or []
        except ApiError as exc:
            if exc.status_code == 404 and page > 1:
                break
            raise
        for task in items:
            tid = _id(getattr(task, "id", None))
            for ann in getattr(task, "annotations", None) or []:
                if tid is not None and isinstance(ann, dict) and (aid := _id(ann.get("id"))) is not None:
                    out[aid] = (tid, ann)
        if len(items) < page_size:
            break
    return out, page


def _id(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None
