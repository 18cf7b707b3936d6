"""Recover from lost webhooks: resync a project's annotations from Label Studio's API.

Label Studio sends each webhook once, with a 1 s timeout and no retry, so a backend restart, a Redis
outage (503) or a network blip loses annotations for good. Every webhook's ``project`` carries Label
Studio's own counters, computed after the event was saved: ``total_annotations_number`` (annotations
not cancelled, empty ones included) and ``skipped_annotations_number`` (cancelled ones). The ledger
(``backend.ledger``) keeps the set of annotation ids it has seen of each kind and compares per webhook;
on a mismatch it asks ``backend.queueing`` for a reconcile job (never run inside the webhook: it crawls
the project through the API; how such jobs are coalesced and rate limited is written there).
``START_TRAINING`` (Label Studio's Train button) and a reconcile by hand resync regardless of the
counters: those also catch a lost *update*, which leaves the counts unchanged.

The resync (this module) reads every task with its annotations (``backend.labelstudio.fetch_annotations``)
and makes the backend's labels match exactly what Label Studio holds: annotations it lacks are added
(also one a forged ``ANNOTATIONS_DELETED`` removed), changed ones updated, ones it no longer has removed.
Webhooks keep arriving meanwhile, so it only changes annotations that no webhook changed since the crawl
began: each webhook stamps the annotations it changes with a per-project counter (``store.labels``), the
crawl notes the counter first, and every write is conditional on the stamp inside the Lua script. What a
webhook wrote during the crawl is newer than what the crawl read, even when the label went A -> B -> A.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field

from backend.config import Config
from backend.labelconfig import ClassificationConfig, cached_config
from backend.labelstudio import fetch_annotations, label_studio_access
from backend.ledger import counters_disagree
from backend.queueing import enqueue_training, job_queue
from backend.store import Store
from encoder.netguard import RefusedHost

log = logging.getLogger(__name__)


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
        if not counters_disagree(store.ls_counters(pid), len(live), len(skipped)):
            result.status, result.reason = "in_sync", "the counters of the latest webhook match"
            return result
    access = label_studio_access(config, project)
    if not access.usable:
        result.reason = "no Label Studio URL and key (LABEL_STUDIO_URL, LABEL_STUDIO_API_KEY or /setup's)"
        return result
    try:
        access.check_reachable(config)
    except RefusedHost as exc:
        result.reason = f"Label Studio URL from /setup refused: {exc}"
        return result

    seq = store.touch_seq(pid)  # FIRST: webhooks from now on stamp what they change above this
    before = store.annotation_labels(pid)
    live_before, skipped_before = store.seen_annotations(pid)
    remote, result.pages = fetch_annotations(str(access.url), str(access.api_key), pid)
    touched = store.touched_since(pid, seq)  # changed by webhooks while we crawled: newer than the crawl
    live_now, skipped_now = store.seen_annotations(pid)
    result.ls_annotations = len(remote)

    batch = store.batch()
    writes = []
    for ann_id, (task_id, ann) in remote.items():
        label = _label(cfg, ann)
        want = (task_id, label) if label is not None else None
        if ann_id in touched or want == before.get(ann_id):
            continue
        if ann_id in before and want is not None:
            result.updated += 1
        elif want is not None:
            result.added += 1
        elif ann_id in before:
            result.removed += 1
        writes.append(store.record_annotation_in(batch, pid, ann_id, task_id, label, unless_touched_since=seq))
    for ann_id in before.keys() - remote.keys() - touched:  # gone from Label Studio (or never there: forged)
        result.removed += 1
        writes.append(store.record_annotation_in(batch, pid, ann_id, before[ann_id][0], None,
                                                 unless_touched_since=seq))
    batch.execute()
    changed = sum(int(w.value) for w in writes)

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
        result.training_queued = enqueue_training(store, job_queue(config, store), pid, config)
    log.info("project %s: reconciled with Label Studio: %d annotations there, %d added, %d updated, %d removed",
             pid, result.ls_annotations, result.added, result.updated, result.removed)
    return result
