"""Data lifecycle: forgetting deleted tasks, and purging a deleted project entirely.

Label Studio deletes tasks (``TASKS_DELETED``) and projects; DALT must then stop training on them and
stop keeping their data. :meth:`LifecycleParts.forget_tasks` is the ONE way to forget tasks: every part
of the store that keeps something per task adds its share here (labels, annotations, served suggestions,
embeddings, graph rows and spread snapshot rows of every encoder version).
:meth:`LifecycleParts.purge_project` deletes every key under the project's prefix by ``SCAN`` (so keys that
later versions add are purged too, without a list to keep in sync) and removes the project from the project
lists.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from backend.store import codec, keys
from backend.store.base import StoreBase
from backend.store.connection import is_cluster
from backend.store.graph import graph_slot_size

SCAN_COUNT = 1000


@dataclass(frozen=True)
class Forgotten:
    """What :meth:`LifecycleParts.forget_tasks` removed."""

    tasks: int
    labels: int
    embeddings: int


class LifecycleParts(StoreBase):
    """Forget tasks; purge projects."""

    def forget_tasks(self, pid: int, task_ids: Iterable[int]) -> Forgotten:
        """Forget deleted tasks: labels (the generation is bumped when one goes), their annotations (also from
        the seen-annotations set), served suggestions, their embeddings (each version's embedding count
        follows) and graph rows of every encoder version, and their rows of the kept spread snapshots.
        Neighbour lists that name them keep the id: the graph lane skips neighbours no longer in the graph.

        Two round trips: the encoder versions, their dims and the snapshots, then everything else in one batch.
        """
        ids = sorted({int(t) for t in task_ids})
        if not ids:
            return Forgotten(0, 0, 0)
        pipe = self.r.pipeline(transaction=False)
        pipe.hgetall(keys.encoder_meta(pid))
        pipe.hgetall(keys.spreads(pid))
        metas, snaps = pipe.execute()
        batch = self.batch()
        slots = [codec.locate(t) for t in ids]
        graph_size = graph_slot_size()
        for version in metas:
            version = version.decode()
            batch.script("clear_slots", [keys.graph_bucket(pid, version, b) for b, _ in slots],
                         [s * graph_size for _, s in slots])
        for snap, raw in snaps.items():
            size = codec.slot_size(len(json.loads(raw).get("classes", [])))
            batch.script("clear_slots", [keys.spread_bucket(pid, int(snap), b) for b, _ in slots],
                         [s * size for _, s in slots])
        label_keys = [*keys.label_keys(pid), keys.served(pid), keys.annotations_live(pid)]
        labels = batch.script("forget_tasks", label_keys, ids, decode=int)
        cleared = []
        for version, raw in metas.items():
            version = version.decode()
            dim = int(json.loads(raw).get("dim") or 0)
            if dim <= 0:
                continue
            bucket_keys = [keys.embedding_bucket(pid, version, b) for b, _ in slots]
            offsets = [s * codec.slot_size(dim) for _, s in slots]
            cleared.append(batch.script("clear_embeddings", [keys.embedding_count(pid, version), *bucket_keys],
                                        offsets, decode=int))
        batch.execute()
        return Forgotten(len(ids), labels.value, sum(c.value for c in cleared))

    def project_keys(self, pid: int) -> list[str]:
        """Every key under the project's prefix (a ``SCAN``: for purging and reporting, never a request path)."""
        pattern = keys.project_prefix(pid) + ":*"
        # On a cluster only the node that holds the project's slot (its hash tag) can have its keys.
        where = {"target_nodes": self.r.get_node_from_key(pattern)} if is_cluster(self.r) else {}
        return sorted(k.decode() for k in self.r.scan_iter(match=pattern, count=SCAN_COUNT, **where))

    def purge_project(self, pid: int) -> int:
        """Delete every key of the project and remove it from the project lists; returns how many keys went."""
        found = self.project_keys(pid)
        for start in range(0, len(found), SCAN_COUNT):
            self.r.unlink(*found[start : start + SCAN_COUNT])
        pipe = self.r.pipeline(transaction=False)
        pipe.srem(keys.PROJECTS, int(pid))
        pipe.zrem(keys.ACTIVE, int(pid))
        pipe.execute()
        return len(found)
