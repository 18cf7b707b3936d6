"""Apply one parsed webhook event: the ONE place where a Label Studio event changes what DALT knows.

For every event the project's settings from the payload are saved, compared by content with Redis
(``backend.projects``), in the same batch as the event's own commands. Only a payload whose label config
DALT can serve creates a project; every event about a project without one is acknowledged as
``"ignored"`` and writes nothing. Then, by event:

* annotations saved: their labels (``store.labels``), the live evaluation of the suggestion each one
  answers (``store.evaluation``), and the annotation ids and Label Studio's counters for lost-webhook
  detection (``store.reconcile``) go to Redis in ONE round trip (a :class:`~backend.store.scripts.Batch`
  of the settings script, three Lua scripts and a count); if a task's label changed, training is queued
  (``backend.queueing``) once the project's ``min_annotations_to_start_training`` is reached;
  annotations made from predictions in bulk are marked as such (``store.accept``: no evaluation evidence;
  training on them is ``DALT_TRAIN_ON_BULK``), and a person's label on such a task ends that state (the
  audit verdict when the task was in the last ``dalt accept`` run's audit sample);
* annotations deleted: the same, with the deletion script;
* ``START_TRAINING``: training is queued (coalesced like any other trigger) and a reconcile forced;
* ``TASKS_CREATED``: encoding of the new tasks is queued (once bulk encoding made an encoder);
* ``TASKS_DELETED``: the tasks are forgotten (``Store.forget_tasks``: labels, annotations, served
  suggestions, embeddings), training queued if labels went;
* ``PROJECT_DELETED``: a purge job is queued that first asks the configured Label Studio whether the
  project is really gone (``backend.queueing.enqueue_purge``);
* anything else: acknowledged as ``"ignored"``.

Lost webhooks: Label Studio counts its annotations after each event; when the ids the ledger has seen
add up to other numbers (:func:`counters_disagree`), a webhook went missing and a reconcile job is
queued. Only for projects whose label config DALT serves: for others there is nothing to resync.

The Redis round trips of one annotation webhook: one batch, plus the training flag's ``SET NX`` when a
label changed (plus the enqueue when that set it).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from rq import Queue

from backend.config import Config
from backend.events import (
    Annotation,
    AnnotationsDeleted,
    AnnotationsSaved,
    Event,
    ProjectDeleted,
    ProjectInfo,
    StartTraining,
    TasksCreated,
    TasksDeleted,
)
from backend.labelconfig import ClassificationConfig
from backend.projects import Projects
from backend.queueing import enqueue_encoding, enqueue_purge, enqueue_reconcile, enqueue_training
from backend.store import Store
from backend.store.scripts import Batch, Reply

log = logging.getLogger(__name__)


@dataclass
class WebhookResult:
    """What applying one event did (the webhook's JSON reply)."""

    action: str
    project: int
    status: str = "ok"
    labels_changed: int = 0
    training_queued: bool = False
    detail: dict = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def counters_disagree(counters: Mapping[str, int], live: int, skipped: int) -> bool:
    """Whether Label Studio counts other annotations than the backend has seen (a webhook was lost)."""
    if "total_annotations_number" not in counters:
        return False
    if counters["total_annotations_number"] != live:
        return True
    return "skipped_annotations_number" in counters and counters["skipped_annotations_number"] != skipped


@dataclass
class Ledger:
    """Applies events to the store and asks ``backend.queueing`` for the jobs they call for."""

    store: Store
    projects: Projects
    queue: Queue
    config: Config

    def saved_config(self, pid: int) -> ClassificationConfig | None:
        """The project's saved label config, if DALT can serve it (``events.parse_event``'s lookup)."""
        try:
            return self.projects.config(pid)
        except (LookupError, ValueError):
            return None

    def apply(self, event: Event) -> WebhookResult:
        """Apply one event (see the module docstring); Redis errors propagate (the app answers 503)."""
        batch = self.store.batch()
        self._save_project_in(batch, event.project)
        result = WebhookResult(action=event.action, project=event.project.id)
        if isinstance(event, ProjectDeleted):
            batch.execute()
            result.detail["purge"] = enqueue_purge(self.store, self.queue, self.config, event.project.id)
            return result
        if event.config is None:  # nothing DALT serves: record nothing, create nothing
            batch.execute()
            result.status = "ignored"
            result.detail["reason"] = "no supported label config known for this project"
            return result
        match event:
            case AnnotationsSaved():
                self._annotations_saved(batch, event, result)
            case AnnotationsDeleted():
                self._annotations_deleted(batch, event, result)
            case StartTraining():
                batch.execute()
                self._start_training(event, result)
            case TasksCreated():
                self._tasks_created(batch, event, result)
            case TasksDeleted():
                batch.execute()
                self._tasks_deleted(event, result)
            case _:
                result.status = "ignored"
                self._observe_counters_only(batch, event, result)
        return result

    def _save_project_in(self, batch: Batch, project: ProjectInfo) -> None:
        """Queue the save of what the payload says about the project; a config DALT cannot serve is not an
        error here (and saves nothing).

        Webhooks for such a project are acknowledged (Label Studio would only log a failure), and /setup
        reports the problem to the admin.
        """
        if not project.described:
            return
        try:
            self.projects.configure_in(batch, project.id, project.label_config,
                                       min_annotations=project.min_annotations, title=project.title)
        except ValueError:
            log.info("project %s: label config not supported; webhook acknowledged without labels", project.id)

    # ---- by event --------------------------------------------------------------------------------
    def _annotations_saved(self, batch: Batch, event: AnnotationsSaved, result: WebhookResult) -> None:
        pid, anns = event.project.id, event.annotations
        changes = [self.store.record_annotation_in(batch, pid, a.id, a.task_id, a.label) for a in anns]
        outcomes = [self.store.record_outcome_in(batch, pid, a.task_id, a.label, a.lead_time, a.bulk) if a.label
                    else None for a in anns]
        self.store.mark_bulk_in(batch, pid, {a.task_id: a.label for a in anns if a.bulk and a.label})
        reviews = [self.store.review_bulk_in(batch, pid, a.task_id, a.label) for a in anns if a.label and not a.bulk]
        seen = self._observe_in(batch, event, live=[a.id for a in anns if not a.cancelled],
                                skipped=[a.id for a in anns if a.cancelled])
        enough = self._enough_labels_in(batch, event.project)
        batch.execute()
        result.labels_changed = sum(int(c.value) for c in changes)
        bulk, audited = sum(a.bulk for a in anns), [r.value for r in reviews if r.error is None and r.value]
        if bulk:
            result.detail["bulk_accepted"] = bulk
        if audited:
            result.detail["bulk_reviewed"] = dict(Counter(audited))
        predictions = [self._outcome(pid, a, reply) for a, reply in zip(anns, outcomes, strict=True)]
        if len(anns) == 1:
            result.detail.update(task=anns[0].task_id, label=anns[0].label)
            if predictions[0]:
                result.detail["prediction"] = predictions[0]
        else:
            result.detail["annotations"] = len(anns)
            if any(predictions):
                result.detail["predictions"] = dict(Counter(p for p in predictions if p))
        if result.labels_changed and enough():
            result.training_queued = enqueue_training(self.store, self.queue, pid, self.config)
        result.detail["reconcile"] = self._compare_counters(event, seen)

    def _annotations_deleted(self, batch: Batch, event: AnnotationsDeleted, result: WebhookResult) -> None:
        deleted = self.store.delete_annotations_in(batch, event.project.id, event.annotation_ids)
        seen = self._observe_in(batch, event, gone=event.annotation_ids)
        enough = self._enough_labels_in(batch, event.project)
        batch.execute()
        result.labels_changed = deleted.value
        if result.labels_changed and enough():
            result.training_queued = enqueue_training(self.store, self.queue, event.project.id, self.config)
        result.detail["reconcile"] = self._compare_counters(event, seen)

    def _start_training(self, event: StartTraining, result: WebhookResult) -> None:
        pid = event.project.id
        # Coalesced like every other trigger: a press while a run is queued rides on that run.
        result.training_queued = enqueue_training(self.store, self.queue, pid, self.config)
        # The Train button also resyncs: it catches a lost update the counts miss.
        result.detail["reconcile"] = enqueue_reconcile(
            self.store, self.queue, self.config, pid, reason="START_TRAINING", force=True
        )

    def _tasks_created(self, batch: Batch, event: TasksCreated, result: WebhookResult) -> None:
        tasks = list(event.tasks)
        encoder = self.store.current_encoder(event.project.id) if tasks else None
        if encoder is not None:
            result.detail["encode_job"] = enqueue_encoding(self.queue, event.project.id, tasks, self.config)
        result.detail["tasks"] = len(tasks)
        self._observe_counters_only(batch, event, result)

    def _tasks_deleted(self, event: TasksDeleted, result: WebhookResult) -> None:
        forgotten = self.store.forget_tasks(event.project.id, event.task_ids)
        result.labels_changed = forgotten.labels
        result.detail.update(tasks=forgotten.tasks, embeddings_removed=forgotten.embeddings)
        if forgotten.labels:
            result.training_queued = enqueue_training(self.store, self.queue, event.project.id, self.config)
        batch = self.store.batch()
        self._observe_counters_only(batch, event, result)

    # ---- helpers ---------------------------------------------------------------------------------
    def _observe_in(
        self,
        batch: Batch,
        event: Event,
        live: Sequence[int] = (),
        skipped: Sequence[int] = (),
        gone: Sequence[int] = (),
    ) -> Reply[tuple[int, int]] | None:
        """Queue the lost-webhook bookkeeping (ids seen, Label Studio's counters); None if nothing to note."""
        if not (live or skipped or gone or event.project.counters):
            return None
        return self.store.observe_annotations_in(batch, event.project.id, live, skipped, gone, event.project.counters)

    def _observe_counters_only(self, batch: Batch, event: Event, result: WebhookResult) -> None:
        seen = self._observe_in(batch, event)
        batch.execute()
        result.detail["reconcile"] = self._compare_counters(event, seen)

    def _compare_counters(self, event: Event, seen: Reply[tuple[int, int]] | None) -> str:
        """``"in_sync"``, ``"no_counters"``, or what asking for a reconcile job answered."""
        counters = event.project.counters
        if seen is None or not counters:
            return "no_counters"
        live, skipped = seen.value
        if not counters_disagree(counters, live, skipped):
            return "in_sync"
        reason = (f"{event.action}: Label Studio counts {counters['total_annotations_number']} annotations, "
                  f"backend saw {live}")
        return enqueue_reconcile(self.store, self.queue, self.config, event.project.id, reason=reason)

    def _enough_labels_in(self, batch: Batch, project: ProjectInfo) -> Callable[[], bool]:
        """Queue what deciding on ``min_annotations_to_start_training`` needs; returns the decision.

        The minimum comes with the payload (no read); as saved, for payloads without it.
        """
        saved = self.store.project_in(batch, project.id) if project.min_annotations is None else None
        count = self.store.label_count_in(batch, project.id) if project.min_annotations != 0 else None

        def enough() -> bool:
            minimum = project.min_annotations if saved is None else saved.value.get("min_annotations")
            minimum = int(minimum or 0)
            return not minimum or count is None or count.value >= minimum

        return enough

    @staticmethod
    def _outcome(pid: int, ann: Annotation, reply: Reply[str | None] | None) -> str | None:
        """The live-evaluation outcome; best effort (the label itself is recorded)."""
        if reply is None:
            return None
        if reply.error is not None:
            log.warning("project %s: could not record the live evaluation of task %s: %s", pid, ann.task_id,
                        reply.error)
            return None
        return reply.value
