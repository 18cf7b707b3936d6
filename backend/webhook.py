"""Label Studio webhook events: record labels, queue training and encoding, answer in milliseconds.

Label Studio sends webhooks synchronously inside the annotator's save request (1 s timeout, no retry),
so nothing slow happens here: no training, no image download; those are RQ jobs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from rq import Queue

from backend.config import Config
from backend.evaluation import record_label_and_outcome
from backend.events import project_id
from backend.labelconfig import ClassificationConfig
from backend.projects import Projects, cached_config
from backend.queueing import enqueue_encoding, enqueue_reconcile, enqueue_training
from backend.reconcile import observe_webhook
from backend.store import Store

log = logging.getLogger(__name__)

ANNOTATION_ACTIONS = ("ANNOTATION_CREATED", "ANNOTATION_UPDATED", "ANNOTATIONS_CREATED")


class BadWebhook(ValueError):
    """The payload lacks what its action needs (answered with 400)."""


@dataclass
class WebhookResult:
    """What handling one event did (the webhook's JSON reply)."""

    action: str
    project: int
    status: str = "ok"
    labels_changed: int = 0
    training_queued: bool = False
    detail: dict = field(default_factory=dict)


@dataclass
class WebhookHandler:
    """Dispatches webhook events by action."""

    store: Store
    projects: Projects
    queue: Queue
    config: Config

    def handle(self, payload: object) -> WebhookResult:
        """Handle one webhook payload.

        Raises:
            BadWebhook: not a JSON object, no action, no project id, or malformed action fields.
        """
        if not isinstance(payload, dict):
            raise BadWebhook("webhook body must be a JSON object")
        action = payload.get("action")
        if not isinstance(action, str) or not action:
            raise BadWebhook("webhook body needs an 'action' string")
        project = payload.get("project")
        try:
            pid = project_id(project)
        except ValueError as exc:
            raise BadWebhook(f"webhook body needs 'project' with an id: {exc}") from None
        self._check(pid, action, payload)  # a rejected webhook must change nothing, not even the project
        cfg = self._learn_project(pid, project)
        result = WebhookResult(action=action, project=pid)
        minimum = project.get("min_annotations_to_start_training") if isinstance(project, dict) else None
        if action in ANNOTATION_ACTIONS:
            self._annotation(pid, cfg, payload, result, minimum)
        elif action == "ANNOTATIONS_DELETED":
            self._deleted(pid, payload, result, minimum)
        elif action == "START_TRAINING":
            result.training_queued = enqueue_training(self.store, self.queue, pid, self.config, force=True)
        elif action == "TASKS_CREATED":
            self._tasks_created(pid, payload, result)
        else:
            result.status = "ignored"
        if self._config(pid, cfg) is not None:  # lost webhooks: compare counters, resync in a job
            if action == "START_TRAINING":
                result.detail["reconcile"] = enqueue_reconcile(
                    self.store, self.queue, self.config, pid, reason="START_TRAINING", force=True
                )
            else:
                result.detail["reconcile"] = observe_webhook(self.store, self.queue, self.config, pid, payload)
        return result

    def _learn_project(self, pid: int, project: object) -> ClassificationConfig | None:
        """Save what the payload says about the project; a config DALT cannot serve is not an error here.

        Webhooks for such a project are acknowledged (Label Studio would only log a failure), and /setup
        reports the problem to the admin.
        """
        if not isinstance(project, dict):
            return None
        label_config = project.get("label_config")
        min_ann = project.get("min_annotations_to_start_training")
        title = project.get("title")
        try:
            return self.projects.configure(
                pid,
                label_config if isinstance(label_config, str) else None,
                min_annotations=min_ann if isinstance(min_ann, int) and not isinstance(min_ann, bool) else None,
                title=title if isinstance(title, str) else None,
            )
        except ValueError:
            log.info("project %s: label config not supported; webhook acknowledged without labels", pid)
            return None

    def _config(self, pid: int, cfg: ClassificationConfig | None) -> ClassificationConfig | None:
        if cfg is not None:
            return cfg
        try:
            return self.projects.config(pid)
        except (LookupError, ValueError):
            return None

    def _check(self, pid: int, action: str, payload: dict) -> None:
        """Validate the action's fields before anything is written (raises BadWebhook)."""
        if action in ANNOTATION_ACTIONS:
            ann, _ann_id, _task, items = _annotation_fields(payload, action)
            project = payload.get("project")
            cfg = None
            label_config = project.get("label_config") if isinstance(project, dict) else None
            if isinstance(label_config, str) and label_config:
                try:
                    cfg = cached_config(label_config)
                except ValueError:
                    cfg = None
            cfg = self._config(pid, cfg)
            unknown = None if cfg is None or ann.get("was_cancelled") else _unknown_choice(cfg, items)
            if unknown is not None:  # recording it as "no label" would silently drop the task's label
                raise BadWebhook(f"label {unknown!r} is not one of the project's classes: {', '.join(cfg.classes)}")
        elif action == "ANNOTATIONS_DELETED":
            _deleted_ids(payload)
        elif action == "TASKS_CREATED" and not isinstance(payload.get("tasks"), list):
            raise BadWebhook("TASKS_CREATED needs a 'tasks' list")

    def _annotation(
        self, pid: int, cfg: ClassificationConfig | None, payload: dict, result: WebhookResult, minimum: object
    ) -> None:
        ann, ann_id, task, result_items = _annotation_fields(payload, result.action)
        cfg = self._config(pid, cfg)
        if cfg is None:
            result.status = "ignored"
            result.detail["reason"] = "no supported label config known for this project"
            return
        label = None if ann.get("was_cancelled") else cfg.label_of(result_items)
        changed, outcome = record_label_and_outcome(self.store, pid, ann_id, task, label, ann.get("lead_time"))
        result.labels_changed = int(changed)
        result.detail.update(task=task, label=label)
        if outcome:
            result.detail["prediction"] = outcome
        if changed:
            result.training_queued = self._maybe_train(pid, minimum)

    def _deleted(self, pid: int, payload: dict, result: WebhookResult, minimum: object) -> None:
        ids = _deleted_ids(payload)
        result.labels_changed = self.store.delete_annotations(pid, ids)
        if result.labels_changed:
            result.training_queued = self._maybe_train(pid, minimum)

    def _tasks_created(self, pid: int, payload: dict, result: WebhookResult) -> None:
        tasks = payload.get("tasks")
        if not isinstance(tasks, list):
            raise BadWebhook("TASKS_CREATED needs a 'tasks' list")
        slim = [
            {"id": t["id"], "data": t.get("data") or {}}
            for t in tasks
            if isinstance(t, dict) and _is_id(t.get("id"))
        ]
        if slim and self.store.current_encoder(pid) is not None:
            result.detail["encode_job"] = enqueue_encoding(self.queue, pid, slim, self.config)
        result.detail["tasks"] = len(slim)

    def _maybe_train(self, pid: int, minimum: object) -> bool:
        """Queue training unless the project's ``min_annotations_to_start_training`` is not reached yet.

        The minimum comes with the webhook's project payload (no Redis read); as saved, for payloads
        without it.
        """
        if not _is_id(minimum):
            minimum = self.store.project(pid).get("min_annotations")
        minimum = int(minimum or 0)
        if minimum and self.store.label_count(pid) < minimum:
            return False
        return enqueue_training(self.store, self.queue, pid, self.config)


def _annotation_fields(payload: dict, action: str) -> tuple[dict, int, int, list | None]:
    """``(annotation, annotation id, task id, result)`` of an annotation event (raises BadWebhook)."""
    ann = payload.get("annotation")
    if not isinstance(ann, dict):
        raise BadWebhook(f"{action} needs an 'annotation' object")
    ann_id = ann.get("id")
    task = ann.get("task")
    if isinstance(task, dict):
        task = task.get("id")
    if task is None and isinstance(payload.get("task"), dict):
        task = payload["task"].get("id")
    if not _is_id(ann_id) or not _is_id(task):
        raise BadWebhook(f"{action} needs integer 'annotation.id' and 'annotation.task'")
    items = ann.get("result")
    if items is not None and not isinstance(items, list):
        raise BadWebhook("'annotation.result' must be a list")
    return ann, ann_id, task, items


def _deleted_ids(payload: dict) -> list[int]:
    """The annotation ids of an ANNOTATIONS_DELETED event (raises BadWebhook)."""
    anns = payload.get("annotations")
    if not isinstance(anns, list):
        raise BadWebhook("ANNOTATIONS_DELETED needs an 'annotations' list")
    ids = [a.get("id") for a in anns if isinstance(a, dict)]
    if not ids or not all(_is_id(i) for i in ids):
        raise BadWebhook("ANNOTATIONS_DELETED needs annotations with integer ids")
    return ids


def _unknown_choice(cfg: ClassificationConfig, items: list | None) -> str | None:
    """The first choice of this project's control that its label config does not list (None if none)."""
    for item in items or []:
        if isinstance(item, dict) and item.get("from_name") == cfg.from_name:
            value = item.get("value")
            choices = value.get("choices") if isinstance(value, dict) else None
            for c in choices if isinstance(choices, list) else []:
                if not isinstance(c, str) or c not in cfg.classes:
                    return str(c)
    return None


def _is_id(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
