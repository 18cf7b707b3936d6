"""Everything that talks to Label Studio's API, and which URL and key to talk to it with.

Credentials, the rule (the ONE place it is applied): a key travels only with the URL it was configured
with.

* ``LABEL_STUDIO_URL`` configured: downloads and crawls go there, with ``LABEL_STUDIO_API_KEY`` (if set).
  What ``/setup`` sends (``hostname``, ``access_token``) is ignored and not even saved (logged once).
  This URL is *trusted*: its host may be on a private network (a Label Studio next to the backend).
* No ``LABEL_STUDIO_URL``: ``/setup``'s ``hostname`` and ``access_token`` are saved as ONE pair (a later
  ``/setup`` replaces both, so a token is never paired with another hostname) and used together. That
  hostname is *not* trusted (``/setup`` needs no credentials unless basic auth is on): its addresses are
  checked like any other host's, so it can never point downloads at loopback, a private network or a
  metadata address unless ``DALT_ALLOW_PRIVATE_NETWORKS`` is on. ``LABEL_STUDIO_API_KEY`` without
  ``LABEL_STUDIO_URL`` is never sent anywhere (logged once).
* Neither (and no ``/setup`` yet): no access; relative image URLs cannot be fetched, reconcile is off.

The API is used through label-studio-sdk, which accepts both a legacy key and a personal access token
(and refreshes the latter by itself). label-studio-sdk is imported on first use: the webhook and reconcile
paths must stay light (no torch, no SDK import at startup).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from backend.cache import ByteLRU
from backend.config import Config
from encoder.netguard import check_public, origin
from encoder.settings import FetchSettings

if TYPE_CHECKING:
    from label_studio_sdk import LabelStudio

log = logging.getLogger(__name__)

PAGE_SIZE = 100
TIMEOUT = 60
SETUP_FIELD = "setup_access"  # the project setting that holds /setup's {hostname, access_token} pair
STORAGE_SCOPE_TTL = 60.0  # seconds a project's local storage paths are trusted before they are read again


@dataclass(frozen=True)
class LabelStudioAccess:
    """A Label Studio URL and the key that goes with it; ``trusted`` when the admin configured the URL."""

    url: str | None
    api_key: str | None = field(default=None, repr=False)
    trusted: bool = False

    @property
    def usable(self) -> bool:
        """Both are known, so the API can be called."""
        return bool(self.url and self.api_key)

    def fetch_settings(self, config: Config, local_files_scope: tuple[str, ...] | None = ()) -> FetchSettings:
        """The image fetcher's settings for this URL and key (with the configured limits)."""
        return config.fetch_settings(self.url, self.api_key, ls_trusted=self.trusted,
                                     local_files_scope=local_files_scope)

    def check_reachable(self, config: Config) -> None:
        """Refuse an untrusted URL whose host is not public (before an API call, as downloads do).

        Raises:
            encoder.netguard.RefusedHost: the host resolves to a loopback, private or reserved address.
        """
        if self.url and not self.trusted and not config.allow_private_networks:
            _, host, port = origin(urlsplit(self.url))
            check_public(host, port)


_logged: set[str] = set()


def _log_once(key: str, message: str, *args: object) -> None:
    if key not in _logged and len(_logged) < 1000:
        _logged.add(key)
        log.warning(message, *args)


def _http_url(value: object) -> str | None:
    if not isinstance(value, str) or len(value) > 2048:
        return None
    parts = urlsplit(value.strip())
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname or parts.username or parts.password:
        return None
    return value.strip().rstrip("/")


def label_studio_access(config: Config, project: Mapping[str, Any]) -> LabelStudioAccess:
    """The URL and key to reach Label Studio for a project, by the rule in the module docstring."""
    if config.label_studio_url:
        return LabelStudioAccess(config.label_studio_url.rstrip("/"), config.label_studio_api_key or None, True)
    if config.label_studio_api_key:
        _log_once("unpaired-key", "LABEL_STUDIO_API_KEY is set without LABEL_STUDIO_URL: it is never sent anywhere "
                  "(a key only travels with the URL it was configured with); set LABEL_STUDIO_URL")
    saved = project.get(SETUP_FIELD)
    if isinstance(saved, Mapping) and (url := _http_url(saved.get("hostname"))):
        token = saved.get("access_token")
        return LabelStudioAccess(url, token if isinstance(token, str) and token else None, False)
    return LabelStudioAccess(None, None, False)


def setup_access(config: Config, hostname: object, access_token: object) -> dict[str, str] | None:
    """What a ``/setup`` request's ``hostname`` and ``access_token`` become in the project's settings.

    Returns:
        The pair to save under :data:`SETUP_FIELD` (both replaced together, empty strings for what is
        missing or invalid), or None when ``LABEL_STUDIO_URL`` is configured: then they are ignored.
    """
    if config.label_studio_url:
        if hostname and _http_url(hostname) != config.label_studio_url.rstrip("/"):
            shown = urlsplit(str(hostname)).hostname if isinstance(hostname, str) else None  # no userinfo, no path
            _log_once("setup-ignored", "/setup sent hostname %r; ignored: LABEL_STUDIO_URL is configured and "
                      "downloads and crawls only go there", (shown or "?")[:200])
        return None
    url = _http_url(hostname)
    token = access_token if isinstance(access_token, str) and url and len(access_token) <= 4096 else ""
    return {"hostname": url or "", "access_token": token}


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


def project_exists(access: LabelStudioAccess, pid: int) -> bool:
    """Whether Label Studio has the project (False only on a 404; other errors raise, so a job retries)."""
    from label_studio_sdk.core.api_error import ApiError

    try:
        client(str(access.url), str(access.api_key), timeout=30).projects.get(id=pid)
    except ApiError as exc:
        if exc.status_code == 404:
            return False
        raise
    return True


def _id(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


_scopes: ByteLRU[tuple[str, int], tuple[float, tuple[str, ...]]] = ByteLRU(
    1 << 20, lambda entry: 64 + sum(len(p) for p in entry[1]), name="local storage scopes")


def local_storage_scope(config: Config, access: LabelStudioAccess, pid: int) -> tuple[str, ...]:
    """The project's local storage paths (as Label Studio names them): the files DALT may read from disk.

    Label Studio serves ``/data/local-files/?d=...`` only when a local storage of a project the user can
    see contains the file; DALT applies it per task: a task reads from disk only inside its own project's
    storages. Read through the trusted API only (an untrusted ``/setup`` host could claim any path), and
    cached for :data:`STORAGE_SCOPE_TTL` seconds. Empty when unknown: then every local file is downloaded
    through Label Studio, which checks permissions itself.
    """
    if not config.local_files_root or not access.trusted or not access.usable:
        return ()
    key = (str(access.url), int(pid))
    hit = _scopes.get(key)
    if hit is not None and time.monotonic() - hit[0] < STORAGE_SCOPE_TTL:
        return hit[1]
    try:
        storages = client(str(access.url), str(access.api_key), timeout=10).import_storage.local.list(project=pid)
        paths = tuple(sorted({str(s.path) for s in storages or [] if getattr(s, "path", None)}))
    except Exception as exc:  # noqa: BLE001 - Label Studio unreachable: download through it instead
        log.warning("project %s: local storages unavailable (%s); local files are downloaded through Label "
                    "Studio", pid, type(exc).__name__)
        paths = ()
    _scopes.put(key, (time.monotonic(), paths))
    return paths


# ---- bulk accept: predictions for every task, data manager tabs and actions (``backend.accept``) -------
def prediction_versions(url: str, api_key: str, pid: int) -> dict[int, set[str]]:
    """Task id -> model versions of its stored predictions (one listing: what ``dalt predict`` skips)."""
    out: dict[int, set[str]] = {}
    for p in client(url, api_key).predictions.list(project=pid):
        tid = _id(getattr(p, "task", None))
        if tid is not None:
            out.setdefault(tid, set()).add(str(getattr(p, "model_version", "") or ""))
    return out


def import_predictions(url: str, api_key: str, pid: int, predictions: list[dict[str, Any]]) -> int:
    """Store many predictions in ONE request (``POST /api/projects/ID/import/predictions``); returns how many."""
    from label_studio_sdk import PredictionRequest

    client(url, api_key).projects.import_predictions(id=pid, request=[PredictionRequest(**p) for p in predictions])
    return len(predictions)


def create_prediction(url: str, api_key: str, prediction: dict[str, Any]) -> None:
    """Store one prediction (``POST /api/predictions/``): the per-task call ``dalt predict`` is measured against."""
    client(url, api_key).predictions.create(**prediction)


def score_tab_filters(threshold: float, version: str) -> dict[str, Any]:
    """Data manager filters: unlabeled tasks with a prediction of ``version`` scoring at least ``threshold``.

    The score is that of the project's model version (:func:`set_model_version`); Label Studio matches
    the version filter by substring (``v1`` also matches ``v12``), the score filter makes it exact.
    """
    return {"conjunction": "and", "items": [
        {"filter": "filter:tasks:predictions_score", "operator": "greater_or_equal", "type": "Number",
         "value": threshold},
        {"filter": "filter:tasks:predictions_model_versions", "operator": "contains", "type": "List",
         "value": [version]},
        {"filter": "filter:tasks:total_annotations", "operator": "equal", "type": "Number", "value": 0},
    ]}


def id_tab_filters(task_ids: list[int]) -> dict[str, Any]:
    """Data manager filters matching exactly ``task_ids`` (an audit sample)."""
    return {"conjunction": "or", "items": [
        {"filter": "filter:tasks:id", "operator": "equal", "type": "Number", "value": int(t)} for t in task_ids]}


def set_model_version(url: str, api_key: str, pid: int, version: str) -> str:
    """Set the project's model version; returns the one it had.

    Why: the data manager's prediction score (its column and filter) averages only the predictions of the
    project's model version, and "Create Annotations From Predictions" offers it first. With the ML
    backend's title there (what connecting sets) no stored prediction counts and a score tab is empty.
    """
    api = client(url, api_key)
    previous = str(api.projects.get(id=pid).model_version or "")
    api.projects.update(id=pid, model_version=version)
    return previous


def create_tab(url: str, api_key: str, pid: int, title: str, filters: dict[str, Any]) -> int:
    """Create a data manager tab (view) with ``filters``; returns its id."""
    view = client(url, api_key).views.create(project=pid, data={"title": title, "filters": filters,
                                                                 "ordering": ["-tasks:predictions_score"]})
    return int(view.id)


def predictions_to_annotations(url: str, api_key: str, pid: int, task_ids: list[int], version: str) -> None:
    """Run the data manager action "Create Annotations From Predictions" on ``task_ids`` (``version`` only)."""
    client(url, api_key).actions.create(
        id="predictions_to_annotations", project=pid, selected_items={"all": False, "included": list(task_ids)},
        request_options={"additional_body_parameters": {"model_version": version}})
