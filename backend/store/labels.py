"""The label ledger: which annotation says what about which task, and the label each task trains with.

A task can have several annotations (overlap, several annotators) and an annotation can be updated,
moved or deleted by id alone, so the ledger keeps every labeled annotation per task and derives the
task's label from it (the latest annotation wins; a delete falls back to the one before). Every change of
a task's label bumps the project's label *generation*: a head records the generation it was trained at,
which is how publishing tells newer heads from older ones (``heads``). Both scripts are atomic, so
concurrent webhooks never lose each other's updates.

Every change a webhook makes to an annotation is stamped with the next value of a per-project counter
(``P:touch_seq`` -> ``P:touched``). A reconcile notes the counter before it crawls Label Studio and writes
what it read only for annotations no webhook stamped since (checked inside the script, so no webhook can
slip in between): a label that went A -> B -> A during the crawl is still newer than what the crawl read.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from backend.store import keys
from backend.store.base import StoreBase
from backend.store.scripts import Batch, Reply


class LabelParts(StoreBase):
    """Annotations, task labels and the label generation."""

    def record_annotation_in(
        self, batch: Batch, pid: int, annotation_id: int, task_id: int, label: str | None,
        unless_touched_since: int | None = None,
    ) -> Reply[bool]:
        """Queue :meth:`record_annotation` on ``batch``."""
        guard = "" if unless_touched_since is None else int(unless_touched_since)
        args = [int(annotation_id), int(task_id), label or "", guard]
        return batch.script("record_annotation", keys.label_keys(pid), args, decode=bool)

    def record_annotation(self, pid: int, annotation_id: int, task_id: int, label: str | None,
                          unless_touched_since: int | None = None) -> bool:
        """Record what an annotation says about its task; ``label=None`` (cancelled/empty) withdraws it.

        Args:
            unless_touched_since: a reconcile's write: skipped when a webhook changed the annotation after
                this :meth:`touch_seq` value, and not stamped itself. None: a webhook's write (stamped).

        Returns:
            True when the task's effective label changed (and the generation was bumped).
        """
        return self._alone(self.record_annotation_in, pid, annotation_id, task_id, label, unless_touched_since)

    def touch_seq(self, pid: int) -> int:
        """How many annotation changes webhooks have made so far (a reconcile's starting point)."""
        return int(self.r.get(keys.touch_seq(pid)) or 0)

    def touched_since(self, pid: int, seq: int) -> set[int]:
        """Annotation ids a webhook changed after :meth:`touch_seq` was ``seq``."""
        return {int(a) for a, s in self.r.hscan_iter(keys.touched(pid), count=1000) if int(s) > seq}

    def delete_annotations_in(self, batch: Batch, pid: int, annotation_ids: Iterable[int]) -> Reply[int]:
        """Queue :meth:`delete_annotations` on ``batch``."""
        return batch.script("delete_annotations", keys.label_keys(pid), [int(a) for a in annotation_ids], decode=int)

    def delete_annotations(self, pid: int, annotation_ids: Iterable[int]) -> int:
        """Forget annotations by id (Label Studio's delete webhook only carries ids); returns how many task
        labels changed."""
        ids = [int(a) for a in annotation_ids]
        if not ids:
            return 0
        return self._alone(self.delete_annotations_in, pid, ids)

    def labels(self, pid: int) -> dict[int, str]:
        """task id -> current label, for every labeled task."""
        return {int(k): v.decode() for k, v in self.r.hgetall(keys.labels(pid)).items()}

    def label_count_in(self, batch: Batch, pid: int) -> Reply[int]:
        """Queue :meth:`label_count` on ``batch``."""
        return batch.command("hlen", keys.labels(pid), decode=int)

    def label_count(self, pid: int) -> int:
        """How many tasks carry a label now."""
        return int(self.r.hlen(keys.labels(pid)))

    def annotation_count(self, pid: int) -> int:
        """How many (not cancelled) annotations the backend has recorded."""
        return int(self.r.hlen(keys.annotations(pid)))

    def annotation_labels(self, pid: int) -> dict[int, tuple[int, str]]:
        """annotation id -> (task id, label) for every recorded labeled annotation."""
        out: dict[int, tuple[int, str]] = {}
        for task, raw in self.r.hgetall(keys.task_annotations(pid)).items():
            for ann_id, label in json.loads(raw):
                out[int(ann_id)] = (int(task), str(label))
        return out

    def generation(self, pid: int) -> int:
        """The label generation: bumped on every change, so a head knows what it was trained on."""
        return int(self.r.get(keys.generation(pid)) or 0)
