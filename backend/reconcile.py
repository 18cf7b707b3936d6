"""Recover from lost webhooks: compare Label Studio's counters with ours, resync through its API.

Label Studio sends each webhook once, with a 1 s timeout and no retry, so a backend restart, a Redis
outage (503) or a network blip loses annotations for good. Every webhook's ``project`` carries Label
Studio's own counters, computed after the event was saved: ``total_annotations_number`` (annotations
not cancelled, empty ones included) and ``skipped_annotations_number`` (cancelled ones). The backend
keeps the set of annotation ids it has seen of each kind, so one cheap comparison per webhook tells
whether an event went missing. On a mismatch a reconcile job is queued through ``backend.queueing``
(never run inside the webhook: it crawls the project through the API; how such jobs are coalesced and
rate limited is written there). ``START_TRAINING`` (Label Studio's Train button) and a reconcile by hand
resync regardless of the counters: those also catch a lost *update*, which leaves the counts unchanged.

The resync reads every task with its annotations (``backend.labelstudio.fetch_annotations``) and
makes the backend's labels match. Webhooks keep arriving meanwhile, so it only changes annotations that
no webhook touched since the crawl began (compared with a snapshot taken before it): what a webhook
wrote during the crawl is newer than what the crawl read.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field

from rq import Queue

from backend.config import Config
from backend.labelconfig import ClassificationConfig
from backend.labelstudio import fetch_annotations, label_studio_access
from backend.projects import cached_config
from backend.queueing import enqueue_reconcile, enqueue_training
from backend.store import Store

log = logging.getLogger(__name__)

COUNTERS = ("total_annotations_number", "skipped_annotations_number", "num_tasks_with_annotations", "task_number")


@dataclass
class ReconcileResult:
    """What one reconcile did (the RQ job's result, the script's report)."""

    project: int
    status: str  # "resynced", "in_sync", "skipped"
    reason: str = ""
    ls_annotations: int = 0
    added: int = 0
    updated: int = 0
    removed: int = 0
    labels_changed: int = 0
    training_queued: bool = False
    pages: int = 0
    detail: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def project_counters(project: object) -> dict[str, int]:
    """The counters a webhook's ``project`` carries (only well-formed ones)."""
    if not isinstance(project, dict):
        return {}
    return {k: v for k in COUNTERS if (v := _int(project.get(k))) is not None}


def mismatch(counters: dict[str, int], live: int, skipped: int) -> bool:
    """Whether Label Studio counts other annotations than the backend has seen."""
    if "total_annotations_number" not in counters:
        return False
    if counters["total_annotations_number"] != live:
        return True
    return "skipped_annotations_number" in counters and counters["skipped_annotations_number"] != skipped


def observe_webhook(store: Store, queue: Queue, config: Config, pid: int, payload: dict) -> str:
    """Track the annotation ids a webhook reports and queue a reconcile when the counters disagree.

    One Redis round trip (two when a reconcile is queued); called by the webhook handler after it
    handled the event, for projects whose label config DALT serves.

    Returns:
        ``"in_sync"``, ``"queued"``, ``"pending"`` (a reconcile is queued or ran recently),
        ``"no_access"`` (no Label Studio URL and key to resync with) or ``"no_counters"``.
    """
    live: list[int] = []
    skipped: list[int] = []
    gone: list[int] = []
    action = payload.get("action")
    if action == "ANNOTATIONS_DELETED":
        for ann in payload.get("annotations") or []:
            if isinstance(ann, dict) and (ann_id := _int(ann.get("id"))) is not None:
                gone.append(ann_id)
    else:
        anns = payload.get("annotations") if action == "ANNOTATIONS_CREATED" else [payload.get("annotation")]
        for ann in anns if isinstance(anns, list) else []:
            if isinstance(ann, dict) and (ann_id := _int(ann.get("id"))) is not None:
                (skipped if ann.get("was_cancelled") else live).append(ann_id)
    counters = project_counters(payload.get("project"))
    n_live, n_skipped = store.observe_annotations(pid, live, skipped, gone, counters)
    if not counters:
        return "no_counters"
    if not mismatch(counters, n_live, n_skipped):
        return "in_sync"
    reason = f"{action}: Label Studio counts {counters['total_annotations_number']} annotations, backend saw {n_live}"
    return enqueue_reconcile(store, queue, config, pid, reason=reason)


def _label(cfg: ClassificationConfig, ann: dict) -> str | None:
    return None if ann.get("was_cancelled") else cfg.label_of(ann.get("result"))


def reconcile_project(store: Store, config: Config, pid: int, *, force: bool = False) -> ReconcileResult:
    """Make the backend's annotations of ``pid`` match Label Studio's (see the module docstring).

    Args:
        force: crawl even if Label Studio's latest counters match what the backend has seen.
    """
    result = ReconcileResult(project=pid, status="skipped")
    project = store.project(pid)
    if not project.get("label_config"):
        result.reason = "no label config known for the project"
        return result
    try:
        cfg = cached_config(project["label_config"])
    except ValueError as exc:
        result.reason = f"label config not supported: {exc}"
        return result
    if not force:
        live, skipped = store.seen_annotations(pid)
        if not mismatch(store.ls_counters(pid), len(live), len(skipped)):
            result.status, result.reason = "in_sync", "the counters of the latest webhook match"
            return result
    ls_url, api_key = label_studio_access(config, project)
    if not ls_url or not api_key:
        result.reason = "no Label Studio URL and key (LABEL_STUDIO_URL, LABEL_STUDIO_API_KEY or /setup's)"
        return result

    before = store.annotation_labels(pid)
    live_before, skipped_before = store.seen_annotations(pid)
    remote, result.pages = fetch_annotations(ls_url, api_key, pid)
    for ann_id in store.deleted_annotation_ids(pid) & set(remote):  # deleted while the crawl ran
        del remote[ann_id]
    now = store.annotation_labels(pid)
    live_now, skipped_now = store.seen_annotations(pid)
    result.ls_annotations = len(remote)

    def untouched(ann_id: int) -> bool:  # no webhook changed it while we crawled
        return now.get(ann_id) == before.get(ann_id)

    changed = 0
    for ann_id, (task_id, ann) in remote.items():
        label = _label(cfg, ann)
        want = (task_id, label) if label is not None else None
        if want == before.get(ann_id) or not untouched(ann_id):
            continue
        if ann_id in before and want is not None:
            result.updated += 1
        elif want is not None:
            result.added += 1
        elif ann_id in before:
            result.removed += 1
        changed += int(store.record_annotation(pid, ann_id, task_id, label))
    stale = [a for a in before if a not in remote and untouched(a)]
    if stale:
        result.removed += len(stale)
        changed += store.delete_annotations(pid, stale)

    # The seen sets become Label Studio's, plus what webhooks added and minus what they deleted meanwhile.
    remote_live = {a for a, (_, ann) in remote.items() if not ann.get("was_cancelled")}
    remote_skipped = set(remote) - remote_live
    seen_before, seen_now = live_before | skipped_before, live_now | skipped_now
    added_meanwhile, deleted_meanwhile = seen_now - seen_before, seen_before - seen_now
    store.replace_seen_annotations(
        pid,
        (remote_live - deleted_meanwhile - skipped_now) | (live_now & added_meanwhile),
        (remote_skipped - deleted_meanwhile - live_now) | (skipped_now & added_meanwhile),
    )
    result.labels_changed = changed
    result.status = "resynced"
    if changed:
        queue = Queue(config.queue_name, connection=store.r)
        result.training_queued = enqueue_training(store, queue, pid, config)
    log.info("project %s: reconciled with Label Studio: %d annotations there, %d added, %d updated, %d removed",
             pid, result.ls_annotations, result.added, result.updated, result.removed)
    return result
