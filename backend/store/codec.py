"""The embedding bucket codec: task vectors <-> 256-task bucket strings. Pure numpy, no Redis.

Why buckets: Redis spends 50-90 bytes on every key or hash field, more than a 32-dim float16 vector. So
the embeddings of task ids ``bucket*256 .. bucket*256+255`` (one encoder version) share one string value.

Format: slot ``i`` (task id ``bucket*256 + i``) starts at byte ``i * (1 + 2*dim)``: a flag byte (1 =
present) then ``dim`` float16 little-endian values. ``SETRANGE`` writes one slot and pads any gap before it
with zero bytes, so a slot never written reads as absent; a bucket string ends after its highest written
slot, so it may be shorter than 256 slots.

Reads: a few tasks of a bucket are cheapest with ``GETRANGE`` of their slots; many are cheapest with one
``GET`` of the whole bucket. :func:`plan_reads` decides, :func:`assemble` decodes the replies.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

BUCKET = 256
PRESENT = 1
FLOAT16_MAX = 65000  # a little under float16's largest finite value (65504)
# Above this many requested tasks in one bucket, one GET of the bucket beats one GETRANGE per task.
WHOLE_BUCKET_ABOVE = 8


def slot_size(dim: int) -> int:
    """Bytes per task: the flag byte and ``dim`` float16 values."""
    return 1 + 2 * int(dim)


def locate(task_id: int) -> tuple[int, int]:
    """``(bucket, slot)`` of a task id."""
    return divmod(int(task_id), BUCKET)


def slot_range(slot: int, dim: int) -> tuple[int, int]:
    """First and last byte (inclusive, as ``GETRANGE`` takes them) of ``slot`` in a bucket."""
    size = slot_size(dim)
    return slot * size, (slot + 1) * size - 1


def encode_slot(task_id: int, vector: np.ndarray, dim: int) -> tuple[int, int, bytes]:
    """``(bucket, byte offset, slot bytes)`` that store ``vector`` for ``task_id`` (a ``SETRANGE``).

    Raises:
        ValueError: the vector has another length than ``dim``, or values that are not finite or do not
            fit float16 (they would read back as inf).
    """
    arr = np.asarray(vector, dtype=np.float32).reshape(-1)
    if arr.shape[0] != dim:
        raise ValueError(f"task {task_id}: embedding has {arr.shape[0]} values, encoder dim is {dim}")
    if not np.isfinite(arr).all() or np.abs(arr).max(initial=0) > FLOAT16_MAX:
        raise ValueError(f"task {task_id}: embedding values must be finite and fit float16")
    bucket, slot = locate(task_id)
    return bucket, slot * slot_size(dim), bytes([PRESENT]) + arr.astype("<f2").tobytes()


def encode_bucket(vectors: Mapping[int, np.ndarray], dim: int) -> dict[int, bytes]:
    """Whole bucket strings for ``{task id: vector}`` (what a series of ``SETRANGE`` would leave)."""
    out: dict[int, bytearray] = {}
    for task_id, vec in vectors.items():
        bucket, offset, data = encode_slot(task_id, vec, dim)
        buf = out.setdefault(bucket, bytearray())
        if len(buf) < offset + len(data):
            buf.extend(b"\x00" * (offset + len(data) - len(buf)))
        buf[offset : offset + len(data)] = data
    return {b: bytes(v) for b, v in out.items()}


def decode_slot(data: bytes | None, dim: int) -> np.ndarray | None:
    """The vector in one slot's bytes (a ``GETRANGE`` reply), or None when the slot is absent."""
    if not data or len(data) != slot_size(dim) or data[0] != PRESENT:
        return None
    return np.frombuffer(data, dtype="<f2", offset=1).astype(np.float32)


def decode_rows(data: bytes | None, slots: np.ndarray, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Vectors of ``slots`` in a whole bucket string: ``(float32 [len(slots), dim], present mask)``."""
    slots = np.asarray(slots, dtype=np.int64)
    out = np.zeros((len(slots), dim), np.float32)
    size = slot_size(dim)
    if not data:
        return out, np.zeros(len(slots), bool)
    raw = np.zeros(BUCKET * size, np.uint8)
    raw[: min(len(data), BUCKET * size)] = np.frombuffer(data, np.uint8)[: BUCKET * size]
    rows = raw.reshape(BUCKET, size)[slots]
    present = rows[:, 0] == PRESENT
    out[present] = rows[present, 1:].copy().view("<f2").astype(np.float32)
    return out, present


def decode_bucket(data: bytes | None, bucket: int, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Every present vector of a bucket string: ``(task ids int64 [n], vectors float32 [n, dim])``."""
    size = slot_size(dim)
    n = len(data) // size if data else 0
    if n == 0:
        return np.zeros(0, np.int64), np.zeros((0, dim), np.float32)
    raw = np.frombuffer(data[: n * size], dtype=np.uint8).reshape(n, size)
    present = raw[:, 0] == PRESENT
    vals = raw[present, 1:].copy().view("<f2").astype(np.float32).reshape(-1, dim)
    return bucket * BUCKET + np.nonzero(present)[0].astype(np.int64), vals


@dataclass(frozen=True)
class Read:
    """One read command: the whole bucket (``slot`` None) or one slot of it.

    ``positions`` are the places in the caller's task list that the reply answers.
    """

    bucket: int
    positions: tuple[int, ...]
    slot: int | None = None


def plan_reads(task_ids: Sequence[int], whole_bucket_above: int = WHOLE_BUCKET_ABOVE) -> list[Read]:
    """The reads that fetch ``task_ids``: one ``GET`` per crowded bucket, one ``GETRANGE`` per other task."""
    by_bucket: dict[int, list[int]] = {}
    for pos, t in enumerate(task_ids):
        by_bucket.setdefault(int(t) // BUCKET, []).append(pos)
    reads: list[Read] = []
    for bucket, positions in by_bucket.items():
        if len(positions) > whole_bucket_above:
            reads.append(Read(bucket, tuple(positions)))
        else:
            reads.extend(Read(bucket, (pos,), int(task_ids[pos]) % BUCKET) for pos in positions)
    return reads


def assemble(
    reads: Sequence[Read], replies: Sequence[bytes | None], task_ids: Sequence[int], dim: int
) -> tuple[np.ndarray, np.ndarray]:
    """Decode the replies of :func:`plan_reads`' reads: ``(float32 [n, dim] in task order, found mask)``."""
    out = np.zeros((len(task_ids), dim), np.float32)
    found = np.zeros(len(task_ids), bool)
    ids = np.asarray(task_ids, np.int64)
    for read, data in zip(reads, replies, strict=True):
        positions = np.asarray(read.positions, np.int64)
        if read.slot is None:
            vecs, present = decode_rows(data, ids[positions] % BUCKET, dim)
            out[positions[present]] = vecs[present]
            found[positions[present]] = True
        else:
            vec = decode_slot(data, dim)
            if vec is not None:
                out[positions[0]] = vec
                found[positions[0]] = True
    return out, found


def pack_buckets(task_ids: np.ndarray, rows: np.ndarray) -> dict[int, bytes]:
    """Whole bucket strings for fixed-size slots (vectorized; graph rows and spread snapshots).

    Args:
        task_ids: int64 [n], distinct.
        rows: uint8 [n, size]: each task's slot bytes, the flag byte (``PRESENT``) first.

    Returns:
        ``{bucket: bytes}``; a bucket string ends after its highest slot, gaps are zero (absent) slots.
    """
    ids = np.asarray(task_ids, np.int64)
    rows = np.ascontiguousarray(rows, np.uint8)
    size = rows.shape[1] if rows.ndim == 2 else 0
    out: dict[int, bytes] = {}
    if len(ids) == 0:
        return out
    order = np.argsort(ids, kind="stable")
    ids, rows = ids[order], rows[order]
    buckets = ids // BUCKET
    starts = np.flatnonzero(np.r_[True, buckets[1:] != buckets[:-1]])
    ends = np.r_[starts[1:], len(ids)]
    for s, e in zip(starts, ends, strict=True):
        slots = ids[s:e] % BUCKET
        buf = np.zeros((int(slots[-1]) + 1, size), np.uint8)
        buf[slots] = rows[s:e]
        out[int(buckets[s])] = buf.tobytes()
    return out


def unpack_bucket(data: bytes | None, bucket: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The present slots of a bucket string: ``(task ids int64 [n], slot bytes uint8 [n, size])``."""
    n = len(data) // size if data else 0
    if n == 0:
        return np.zeros(0, np.int64), np.zeros((0, size), np.uint8)
    raw = np.frombuffer(data[: n * size], dtype=np.uint8).reshape(n, size)
    present = raw[:, 0] == PRESENT
    return bucket * BUCKET + np.flatnonzero(present).astype(np.int64), raw[present]
