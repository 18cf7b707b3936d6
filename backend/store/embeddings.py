"""Task embeddings, tagged by the encoder version that made them, packed in 256-task buckets (``codec``).

Writes are ``SETRANGE`` of one slot per task, so encoding can add tasks to a bucket in any order and
from several processes without reading it first. Reads come in one round trip for any number of tasks.

Each version keeps a count of its embeddings (``P:emb:<ver>:count``), so "how many tasks has this encoder
encoded" costs one command, not a read of every bucket (the regrow check asks it after every new-task job).
The count is exact under concurrency because it changes in the same Lua step as the slot flags
(``lua/put_embeddings.lua``, ``lua/clear_embeddings.lua``): a task counts when its slot goes from absent to
present and uncounts when it goes back, so two jobs writing one task count it once, a rewritten task never
counts again, and a forgotten task (``LifecycleParts.forget_tasks``) leaves the count. A version stored
before counts were kept has none; :meth:`EmbeddingParts.encoded_count` counts its slots once, in one Lua
step (O(project) inside Redis, once per such version), and keeps the count.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

import numpy as np

from backend.store import codec, keys
from backend.store.base import StoreBase
from backend.store.scripts import Batch, Reply, gather

PUT_CHUNK = 1024  # slots per put_embeddings script call: each call is atomic, so it must stay short


def read_slots_in(batch: Batch, key_of: Callable[[int], str], task_ids: Iterable[int], width: int
                  ) -> Reply[tuple[np.ndarray, np.ndarray]]:
    """Queue the reads of ``task_ids``' slots in 256-task buckets named by ``key_of(bucket)``: ``(float32 [n,
    width], found)``. Embeddings and the graph lane's snapshots share this layout (``codec``)."""
    ids = [int(t) for t in task_ids]
    reads = codec.plan_reads(ids)
    parts = []
    for read in reads:
        key = key_of(read.bucket)
        if read.slot is None:
            parts.append(batch.command("get", key))
        else:
            parts.append(batch.command("getrange", key, *codec.slot_range(read.slot, width)))
    return gather(parts, lambda replies: codec.assemble(reads, replies, ids, width))


class EmbeddingParts(StoreBase):
    """Embeddings by task id and encoder version."""

    def put_embeddings(self, pid: int, version: str, vectors: Mapping[int, np.ndarray]) -> int:
        """Write task embeddings made by encoder ``version`` in one round trip; returns how many.

        The version's embedding count follows in the same Lua steps (see the module docstring).

        Raises:
            KeyError: the encoder version is unknown (``put_encoder`` first).
            ValueError: a vector of the wrong length, or not finite / not fitting float16.
        """
        if not vectors:
            return 0
        info = self.encoder_info(pid, version)  # type: ignore[attr-defined]
        if info is None:
            raise KeyError(f"encoder {version!r} of project {pid} is unknown; put_encoder first")
        batch = self.batch()
        items = list(vectors.items())
        replies = []
        for start in range(0, len(items), PUT_CHUNK):
            positions: dict[int, int] = {}  # bucket -> its key's position among the call's bucket keys
            slots: list = []
            for task_id, vec in items[start : start + PUT_CHUNK]:
                bucket, offset, data = codec.encode_slot(task_id, vec, info.dim)
                slots += [positions.setdefault(bucket, len(positions) + 1), offset, data]
            bucket_keys = [keys.embedding_bucket(pid, version, b) for b in positions]
            replies.append(batch.script(
                "put_embeddings", [keys.embedding_count(pid, version), keys.embedding_buckets(pid, version),
                                   *bucket_keys], [*positions, *slots]))
        batch.execute()
        failed = next((r.error for r in replies if r.error is not None), None)
        if failed is not None:
            raise failed
        return len(vectors)

    def encoded_count(self, pid: int, version: str, dim: int) -> int:
        """How many tasks have an embedding from encoder ``version`` (``dim`` its vector length): one command.

        Counted once, then kept, for a version stored before counts were (see the module docstring).
        """
        reply = self._alone(lambda batch: batch.script(
            "count_embeddings", [keys.embedding_count(pid, version), keys.embedding_buckets(pid, version)],
            [keys.embedding_bucket_prefix(pid, version), codec.slot_size(dim)], decode=int))
        return int(reply)

    def embeddings_in(
        self, batch: Batch, pid: int, version: str, task_ids: Iterable[int], dim: int
    ) -> Reply[tuple[np.ndarray, np.ndarray]]:
        """Queue the reads of ``task_ids``' embeddings; the reply is ``(vectors, found)``, see
        :meth:`get_embeddings`."""
        return read_slots_in(batch, lambda bucket: keys.embedding_bucket(pid, version, bucket), task_ids, dim)

    def get_embeddings(
        self, pid: int, version: str, task_ids: Iterable[int], dim: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Fetch embeddings in one round trip.

        Returns:
            ``(vectors, found)``: a ``float32`` array ``[n, dim]`` in the order of ``task_ids`` (zeros where
            missing) and a boolean mask of which tasks had an embedding.
        """
        ids = [int(t) for t in task_ids]
        if dim is None:
            info = self.encoder_info(pid, version)  # type: ignore[attr-defined]
            if info is None:
                return np.zeros((len(ids), 0), np.float32), np.zeros(len(ids), bool)
            dim = info.dim
        return self._alone(self.embeddings_in, pid, version, ids, dim)

    def current_version_and_embeddings(
        self, pid: int, encoder_version: str, task_ids: Iterable[int], dim: int,
        snapshot: tuple[int, int] | None = None,
    ) -> tuple[str | None, np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray] | None]:
        """The served head version, embeddings and spread snapshot rows in ONE round trip (the /predict path).

        The caller guesses the encoder version (and ``snapshot``: ``(id, classes)``) from the head it served
        last; when the current head turns out to use others, it reads again.

        Returns:
            ``(version, vectors, found, spread)``; ``spread`` is ``(rows, found)`` or None when not asked.
        """
        ids = [int(t) for t in task_ids]
        batch = self.batch()
        version = batch.command("get", keys.current(pid), decode=lambda v: v.decode() if v else None)
        vectors = self.embeddings_in(batch, pid, encoder_version, ids, dim)
        rows = self.snapshot_rows_in(batch, pid, snapshot[0], ids, snapshot[1]) if snapshot else None  # type: ignore[attr-defined]
        batch.execute()
        X, found = vectors.value
        return version.value, X, found, (rows.value if rows is not None else None)

    def all_embeddings(self, pid: int, version: str) -> tuple[np.ndarray, np.ndarray]:
        """Every cached embedding of an encoder version: ``(task_ids int64 [n], vectors float32 [n, dim])``.

        Used by training heads that learn from unlabeled tasks too, and by incremental bulk encoding.
        """
        info = self.encoder_info(pid, version)  # type: ignore[attr-defined]
        if info is None:
            return np.zeros(0, np.int64), np.zeros((0, 0), np.float32)
        buckets = sorted(int(b) for b in self.r.smembers(keys.embedding_buckets(pid, version)))
        ids: list[np.ndarray] = []
        vecs: list[np.ndarray] = []
        for start in range(0, len(buckets), 512):
            chunk = buckets[start : start + 512]
            datas = self.r.mget([keys.embedding_bucket(pid, version, b) for b in chunk])
            for b, data in zip(chunk, datas, strict=True):
                got_ids, got = codec.decode_bucket(data, b, info.dim)
                if len(got_ids):
                    ids.append(got_ids)
                    vecs.append(got)
        if not ids:
            return np.zeros(0, np.int64), np.zeros((0, info.dim), np.float32)
        return np.concatenate(ids), np.concatenate(vecs)

    def encoded_task_ids(self, pid: int, version: str) -> set[int]:
        """Task ids that already have an embedding from ``version`` (for incremental encoding)."""
        ids, _ = self.all_embeddings(pid, version)
        return set(ids.tolist())

    def drop_embeddings(self, pid: int, version: str) -> None:
        """Delete every embedding of one encoder version (after a new encoder replaced it)."""
        set_key = keys.embedding_buckets(pid, version)
        buckets = list(self.r.smembers(set_key))
        for start in range(0, len(buckets), 1000):
            self.r.delete(*[keys.embedding_bucket(pid, version, int(b)) for b in buckets[start : start + 1000]])
        self.r.delete(set_key, keys.embedding_count(pid, version))
