"""The embedding bucket codec on its own: no Redis, bucket strings built as SETRANGE would leave them."""

import numpy as np
import pytest

from backend.store import codec
from backend.store.codec import BUCKET


def read_back(buckets: dict[int, bytes], task_ids: list[int], dim: int, whole_bucket_above: int = 8):
    """What the store's reads answer: plan, fetch each read from ``buckets`` like GET/GETRANGE, assemble."""
    reads = codec.plan_reads(task_ids, whole_bucket_above)
    replies = []
    for read in reads:
        data = buckets.get(read.bucket)
        if read.slot is None:
            replies.append(data)
        else:
            start, end = codec.slot_range(read.slot, dim)
            replies.append(None if data is None else data[start : end + 1])  # GETRANGE may return less or b""
    return codec.assemble(reads, replies, task_ids, dim)


def test_round_trip_in_request_order_through_both_read_paths():
    dim = 5
    rng = np.random.default_rng(0)
    ids = [0, 1, 7, BUCKET - 1, BUCKET, 3 * BUCKET + 17, 40 * BUCKET + 255]
    vecs = {t: rng.normal(size=dim).astype(np.float32) for t in ids}
    buckets = codec.encode_bucket(vecs, dim)
    assert sorted(buckets) == [0, 1, 3, 40]
    ask = list(reversed(ids))
    for whole_above in (0, 100):  # every bucket read whole / every task read by its slot
        X, found = read_back(buckets, ask, dim, whole_above)
        assert found.all()
        for row, t in zip(X, ask, strict=True):
            np.testing.assert_allclose(row, vecs[t].astype(np.float16).astype(np.float32))


def test_missing_slots_read_as_absent_zeros():
    dim = 3
    buckets = codec.encode_bucket({2: np.ones(dim), 9: np.full(dim, 2.0)}, dim)
    # 0, 1, 3..8: slots before/between written ones (zero padding); 10: past the end; 2*BUCKET: no bucket.
    ask = [0, 1, 2, 3, 8, 9, 10, 2 * BUCKET]
    for whole_above in (0, 100):
        X, found = read_back(buckets, ask, dim, whole_above)
        assert found.tolist() == [False, False, True, False, False, True, False, False]
        assert not X[~found].any()
        np.testing.assert_array_equal(X[found], [np.ones(dim), np.full(dim, 2.0)])


def test_partial_buckets_end_after_their_highest_slot():
    dim = 4
    size = codec.slot_size(dim)
    buckets = codec.encode_bucket({BUCKET + 5: np.arange(dim)}, dim)
    assert len(buckets[1]) == 6 * size  # slots 0..5 of bucket 1, not 256 of them
    ids, X = codec.decode_bucket(buckets[1], 1, dim)
    assert ids.tolist() == [BUCKET + 5]
    np.testing.assert_array_equal(X, [np.arange(dim)])
    truncated = buckets[1][: 3 * size + 2]  # a torn bucket: slot 3 incomplete, nothing present
    ids, X = codec.decode_bucket(truncated, 1, dim)
    assert ids.tolist() == [] and X.shape == (0, dim)
    vecs, present = codec.decode_rows(truncated, np.array([3, 5, 200]), dim)
    assert not present.any() and not vecs.any()


def test_decode_bucket_lists_every_present_slot():
    dim = 2
    vecs = {BUCKET * 2 + i: np.array([i, -i], np.float32) for i in (0, 3, 255)}
    data = codec.encode_bucket(vecs, dim)[2]
    ids, X = codec.decode_bucket(data, 2, dim)
    assert ids.tolist() == sorted(vecs)
    np.testing.assert_array_equal(X, [vecs[t] for t in ids])
    assert codec.decode_bucket(None, 2, dim)[0].size == 0


def test_plan_reads_groups_crowded_buckets():
    ids = list(range(20)) + [BUCKET + 1, BUCKET + 2]
    reads = codec.plan_reads(ids, whole_bucket_above=8)
    whole = [r for r in reads if r.slot is None]
    ranged = [r for r in reads if r.slot is not None]
    assert [(r.bucket, r.positions) for r in whole] == [(0, tuple(range(20)))]
    assert [(r.bucket, r.slot, r.positions) for r in ranged] == [(1, 1, (20,)), (1, 2, (21,))]
    assert codec.plan_reads([]) == []


@pytest.mark.parametrize(
    ("vector", "message"),
    [(np.ones(3), "dim is 2"), (np.array([np.nan, 1]), "finite"), (np.array([7e4, 0]), "float16")],
)
def test_bad_vectors_are_refused(vector, message):
    with pytest.raises(ValueError, match=message):
        codec.encode_slot(5, vector, 2)


def test_slot_layout():
    bucket, offset, data = codec.encode_slot(BUCKET * 3 + 2, np.array([1.0, -2.0]), 2)
    assert (bucket, offset) == (3, 2 * 5)
    assert data == b"\x01" + np.array([1.0, -2.0], "<f2").tobytes()
    assert codec.slot_range(2, 2) == (10, 14)
    assert codec.decode_slot(data, 2).tolist() == [1.0, -2.0]
    assert codec.decode_slot(b"\x00" * 5, 2) is None and codec.decode_slot(b"", 2) is None
