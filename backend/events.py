"""Label Studio webhook payloads -> one typed, validated event (one frozen dataclass per action).

Why parse once, at the edge: a rejected webhook must change nothing, so everything that can be wrong
with a payload is found here, before ``backend.ledger`` writes anything; the ledger then works on typed
values and never looks at the payload again. What Label Studio sends (observed on 1.23.2):

* ``ANNOTATION_CREATED`` / ``ANNOTATION_UPDATED``: ``{action, annotation: {...}, task: {...}, project}``;
* ``ANNOTATIONS_CREATED`` (bulk: predictions turned into annotations, imports with annotations): the same,
  but ``annotation`` holds a LIST of annotations (accepted under ``annotations`` too); those the data
  manager action "Create Annotations From Predictions" made carry ``parent_prediction`` (the prediction's
  id): they are *bulk-accepted* (``Annotation.bulk``), no person looked at them. A single annotation with
  ``parent_prediction`` is an annotator who submitted a pre-annotation: human evidence;
* ``ANNOTATIONS_DELETED``: ``{action, annotations: [{id}], project}`` (ids only);
* ``TASKS_DELETED``: ``{action, tasks: [{id}], project}`` (ids only; the data manager's delete action and
  ``DELETE /api/tasks/ID``; deleting ALL tasks of a project sends it to organization webhooks only, without
  ``project``, which is refused here: nothing says which project it was);
* ``PROJECT_DELETED``: ``{action, project: {id}}``, sent to organization webhooks only (a project's own
  webhook, like the one connecting an ML backend, is deleted with it and never receives it);
* ``START_TRAINING`` (the Train button), ``TASKS_CREATED`` (``tasks: [...]``), and others we ignore.

Bounds, checked here so that no hostile payload reaches Redis or a job: ids are integers in
``[0, 2**63)`` (Redis, numpy and Label Studio's database all use int64; a larger id would be stored and
then break every training run); a task list holds at most ``max_tasks`` entries (:class:`TooLarge`,
answered 413); a new task keeps only its id and its image reference (a string of at most
:data:`MAX_IMAGE_REF` characters), never the rest of its data, so a deeply nested or huge ``data`` never
reaches a job; an annotation's ``lead_time`` is clamped to :data:`MAX_LEAD_TIME`.

``project`` carries the label config, ``min_annotations_to_start_training``, the title and counters
(``total_annotations_number``, ...) computed after the event was saved, which reveal lost webhooks.

A chosen label is resolved with the project's label config: the payload's, else the one saved earlier
(``parse_event``'s ``saved_config`` lookup). A choice the config does not list is refused (``BadEvent``):
recording it as "no label" would silently drop the task's label.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from backend.labelconfig import ClassificationConfig, cached_config

ANNOTATION_ACTIONS = ("ANNOTATION_CREATED", "ANNOTATION_UPDATED", "ANNOTATIONS_CREATED")
MAX_ID = 2**63 - 1  # int64: Redis, numpy and Label Studio's database
MAX_LEAD_TIME = 24 * 3600.0  # seconds; longer is an annotator who left the tab open
MAX_IMAGE_REF = 4096  # characters of a new task's image reference kept for its encoding job
# The project counters a webhook carries that reconciling uses.
COUNTERS = ("total_annotations_number", "skipped_annotations_number", "num_tasks_with_annotations", "task_number")

ConfigLookup = Callable[[int], ClassificationConfig | None]


class BadEvent(ValueError):
    """The payload lacks what its action needs, or says something invalid (answered with 400)."""


class TooLarge(BadEvent):
    """The payload names more tasks than one webhook may (answered with 413)."""


def project_id(value: Any) -> int:
    """Normalize the ways Label Studio names a project to its integer id.

    ``/setup`` and ``/predict`` send ``"ID.CREATED_TIMESTAMP"``; webhooks send ``{"id": ID, ...}``.

    Raises:
        ValueError: when no positive integer id can be read.
    """
    if isinstance(value, Mapping):
        value = value.get("id")
    if isinstance(value, bool) or value is None:
        raise ValueError("project id missing")
    if isinstance(value, int):
        pid = value
    elif isinstance(value, str):
        head = value.split(".", 1)[0].strip()
        if not head.isdigit():
            raise ValueError(f"project id {value!r} is not of the form ID or ID.TIMESTAMP")
        pid = int(head)
    else:
        raise ValueError(f"project id of type {type(value).__name__} is not supported")
    if pid <= 0 or pid > 2**53:
        raise ValueError(f"project id {pid} out of range")
    return pid


def finite_lead_time(value: object) -> float | None:
    """An annotation's ``lead_time`` (seconds) when it is a finite number >= 0 (at most
    :data:`MAX_LEAD_TIME`: larger values are clamped, so sums stay finite), else None."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        if value >= 0 and math.isfinite(value):
            return min(float(value), MAX_LEAD_TIME)
    return None


@dataclass(frozen=True)
class ProjectInfo:
    """What a webhook's ``project`` says. ``described`` is False when it was a bare id."""

    id: int
    label_config: str | None = None
    min_annotations: int | None = None
    title: str | None = None
    counters: Mapping[str, int] = field(default_factory=dict)
    described: bool = False


@dataclass(frozen=True)
class Annotation:
    """One annotation as the ledger needs it; ``label`` is None for a cancelled or empty annotation."""

    id: int
    task_id: int
    label: str | None
    cancelled: bool
    lead_time: float | None
    bulk: bool = False  # made from a prediction in bulk (see the module docstring): not human evidence


@dataclass(frozen=True)
class Event:
    """Fields every event has. ``config`` is the label config labels were resolved with (None when the
    project has none DALT can serve)."""

    action: str
    project: ProjectInfo
    config: ClassificationConfig | None


@dataclass(frozen=True)
class AnnotationsSaved(Event):
    """``ANNOTATION_CREATED``, ``ANNOTATION_UPDATED``, ``ANNOTATIONS_CREATED``."""

    annotations: tuple[Annotation, ...]


@dataclass(frozen=True)
class AnnotationsDeleted(Event):
    """``ANNOTATIONS_DELETED``: only ids."""

    annotation_ids: tuple[int, ...]


@dataclass(frozen=True)
class StartTraining(Event):
    """``START_TRAINING``: Label Studio's Train button."""


@dataclass(frozen=True)
class TasksCreated(Event):
    """``TASKS_CREATED``: the new tasks to encode ahead of their first /predict, each slimmed to
    ``{"id", "data": {image key: reference}}`` (``data`` empty when the reference is missing or too long)."""

    tasks: tuple[dict, ...]


@dataclass(frozen=True)
class TasksDeleted(Event):
    """``TASKS_DELETED``: ids of tasks Label Studio deleted."""

    task_ids: tuple[int, ...]


@dataclass(frozen=True)
class ProjectDeleted(Event):
    """``PROJECT_DELETED`` (organization webhooks only)."""


@dataclass(frozen=True)
class OtherEvent(Event):
    """Any other action: acknowledged, nothing recorded but the project's settings and counters."""


def parse_event(payload: object, saved_config: ConfigLookup | None = None, *, max_tasks: int = 10_000) -> Event:
    """Parse and validate one webhook payload.

    Args:
        saved_config: ``pid -> config or None``, asked only when the payload carries no label config that
            DALT can serve.
        max_tasks: most tasks a ``TASKS_CREATED`` / ``TASKS_DELETED`` may name.

    Raises:
        TooLarge: more than ``max_tasks`` tasks.
        BadEvent: not an object, no action, no project id, malformed action fields, an id outside int64,
            or a chosen label that is not one of the project's classes.
    """
    if not isinstance(payload, dict):
        raise BadEvent("webhook body must be a JSON object")
    action = payload.get("action")
    if not isinstance(action, str) or not action:
        raise BadEvent("webhook body needs an 'action' string")
    project = _project(payload.get("project"))
    if action in ANNOTATION_ACTIONS:
        raw, single = _annotation_objects(payload, action)
        task = payload.get("task") if single else None  # a single annotation's task may be named beside it
        config = _config(project, saved_config)
        anns = tuple(_annotation(a, action, config, task, bulk_form=not single) for a in raw)
        return AnnotationsSaved(action, project, config, anns)
    if action == "ANNOTATIONS_DELETED":
        ids = _deleted_ids(payload)
        return AnnotationsDeleted(action, project, _config(project, saved_config), ids)
    if action in ("TASKS_CREATED", "TASKS_DELETED"):
        tasks = _task_list(payload, action, max_tasks)
        config = _config(project, saved_config)
        if action == "TASKS_DELETED":
            return TasksDeleted(action, project, config, tuple(t["id"] for t in tasks))
        return TasksCreated(action, project, config, tuple(_slim(t, config) for t in tasks))
    if action == "PROJECT_DELETED":
        return ProjectDeleted(action, project, _config(project, saved_config))
    if action == "START_TRAINING":
        return StartTraining(action, project, _config(project, saved_config))
    return OtherEvent(action, project, _config(project, saved_config))


def _task_list(payload: dict, action: str, max_tasks: int) -> list[dict]:
    tasks = payload.get("tasks")
    if not isinstance(tasks, list):
        raise BadEvent(f"{action} needs a 'tasks' list")
    if len(tasks) > max_tasks:
        raise TooLarge(f"{action} names {len(tasks)} tasks; at most {max_tasks} per webhook (DALT_WEBHOOK_MAX_TASKS)")
    if not all(isinstance(t, dict) and _is_id(t.get("id")) for t in tasks):
        raise BadEvent(f"{action} needs task objects with integer ids in [0, 2**63)")
    return tasks


def _slim(task: dict, config: ClassificationConfig | None) -> dict:
    """What encoding a new task needs: its id and its image reference (nothing nested, nothing large)."""
    data = task.get("data")
    ref = data.get(config.image_key) if config is not None and isinstance(data, dict) else None
    if isinstance(ref, str) and len(ref) <= MAX_IMAGE_REF:
        return {"id": task["id"], "data": {config.image_key: ref}}
    return {"id": task["id"], "data": {}}


def _project(value: object) -> ProjectInfo:
    try:
        pid = project_id(value)
    except ValueError as exc:
        raise BadEvent(f"webhook body needs 'project' with an id: {exc}") from None
    if not isinstance(value, dict):
        return ProjectInfo(pid)
    label_config, title = value.get("label_config"), value.get("title")
    min_ann = value.get("min_annotations_to_start_training")
    return ProjectInfo(
        pid,
        label_config=label_config if isinstance(label_config, str) and label_config else None,
        min_annotations=min_ann if isinstance(min_ann, int) and not isinstance(min_ann, bool) else None,
        title=title if isinstance(title, str) else None,
        counters={k: v for k in COUNTERS if _is_id(v := value.get(k))},
        described=True,
    )


def _config(project: ProjectInfo, saved_config: ConfigLookup | None) -> ClassificationConfig | None:
    """The payload's label config when DALT can serve it, else the saved one (or None)."""
    if project.label_config:
        try:
            return cached_config(project.label_config)
        except ValueError:
            pass
    return saved_config(project.id) if saved_config is not None else None


def _annotation_objects(payload: dict, action: str) -> tuple[list, bool]:
    """The raw annotations of an annotation event, and whether it was the single-object form."""
    ann = payload.get("annotation")
    if isinstance(ann, dict):
        return [ann], True
    if action == "ANNOTATIONS_CREATED":  # the bulk form: a list under 'annotation' (as sent) or 'annotations'
        many = ann if isinstance(ann, list) else payload.get("annotations")
        if isinstance(many, list):
            return many, False
        raise BadEvent(f"{action} needs an 'annotation' object or a list of them")
    raise BadEvent(f"{action} needs an 'annotation' object")


def _annotation(
    ann: object, action: str, config: ClassificationConfig | None, task: object, bulk_form: bool = False
) -> Annotation:
    if not isinstance(ann, dict):
        raise BadEvent(f"{action} needs annotation objects, got {type(ann).__name__}")
    ann_id, task_id = ann.get("id"), ann.get("task")
    if isinstance(task_id, dict):
        task_id = task_id.get("id")
    if task_id is None and isinstance(task, dict):
        task_id = task.get("id")
    if not _is_id(ann_id) or not _is_id(task_id):
        raise BadEvent(f"{action} needs integer 'annotation.id' and 'annotation.task' in [0, 2**63)")
    result = ann.get("result")
    if result is not None and not isinstance(result, list):
        raise BadEvent("'annotation.result' must be a list")
    cancelled = bool(ann.get("was_cancelled"))
    label = None
    if config is not None and not cancelled:
        unknown = _unknown_choice(config, result)
        if unknown is not None:
            raise BadEvent(f"label {unknown!r} is not one of the project's classes: {', '.join(config.classes)}")
        label = config.label_of(result)
    parent = ann.get("parent_prediction")
    if isinstance(parent, dict):
        parent = parent.get("id")
    bulk = bulk_form and _is_id(parent)
    return Annotation(ann_id, task_id, label, cancelled, finite_lead_time(ann.get("lead_time")), bulk)


def _deleted_ids(payload: dict) -> tuple[int, ...]:
    anns = payload.get("annotations")
    if not isinstance(anns, list):
        raise BadEvent("ANNOTATIONS_DELETED needs an 'annotations' list")
    ids = [a.get("id") for a in anns if isinstance(a, dict)]
    if not ids or not all(_is_id(i) for i in ids):
        raise BadEvent("ANNOTATIONS_DELETED needs annotations with integer ids in [0, 2**63)")
    return tuple(ids)


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
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_ID
