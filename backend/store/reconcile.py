"""Reconcile state: which annotation ids Label Studio has, as the backend saw them, and its counters.

Label Studio sends each webhook once; the counters in every webhook's ``project`` tell whether one went
missing (see ``backend.reconcile``). For that the store keeps the ids of the live and the cancelled
annotations it has seen, the counters of the latest webhook, and the reconcile job's flag and start time.
Which annotations webhooks changed while a crawl ran is told by the label ledger's change stamps
(``labels``: ``P:touched``), not by remembering deletions: a forged delete must not outlive a resync.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from backend.store import keys
from backend.store.base import StoreBase
from backend.store.scripts import Batch, Reply


def _counts(raw: list) -> tuple[int, int]:
    return int(raw[0]), int(raw[1])


class ReconcileParts(StoreBase):
    """Seen annotation ids, Label Studio's counters, and the reconcile job's flag and rate limit."""

    def observe_annotations_in(
        self,
        batch: Batch,
        pid: int,
        live: Iterable[int] = (),
        skipped: Iterable[int] = (),
        gone: Iterable[int] = (),
        counters: Mapping[str, int] | None = None,
    ) -> Reply[tuple[int, int]]:
        """Queue :meth:`observe_annotations` on ``batch`` (one atomic script)."""
        live, skipped, gone = [int(a) for a in live], [int(a) for a in skipped], [int(a) for a in gone]
        args: list = [len(live), len(skipped), len(gone), *live, *skipped, *gone]
        for name, value in (counters or {}).items():
            args += [name, int(value)]
        script_keys = [keys.annotations_live(pid), keys.annotations_skipped(pid), keys.ls_counters(pid)]
        return batch.script("observe_annotations", script_keys, args, decode=_counts)

    def observe_annotations(
        self,
        pid: int,
        live: Iterable[int] = (),
        skipped: Iterable[int] = (),
        gone: Iterable[int] = (),
        counters: Mapping[str, int] | None = None,
    ) -> tuple[int, int]:
        """Note which annotations exist (as Label Studio counts them) and its latest counters, in one trip.

        Args:
            live: annotation ids that exist and are not cancelled (counted in ``total_annotations_number``).
            skipped: cancelled annotation ids (``skipped_annotations_number``).
            gone: deleted annotation ids.
            counters: the webhook's project counters, kept for the reconcile job.

        Returns:
            ``(live, skipped)`` counts after the update.
        """
        return self._alone(self.observe_annotations_in, pid, live, skipped, gone, counters)

    def seen_annotations(self, pid: int) -> tuple[set[int], set[int]]:
        """``(live, skipped)`` annotation ids the backend knows of."""
        pipe = self.r.pipeline(transaction=False)
        pipe.smembers(keys.annotations_live(pid))
        pipe.smembers(keys.annotations_skipped(pid))
        live, skipped = pipe.execute()
        return {int(a) for a in live}, {int(a) for a in skipped}

    def replace_seen_annotations(self, pid: int, live: Iterable[int], skipped: Iterable[int]) -> None:
        """Set the known annotation ids to what a full resync found (atomically)."""
        live_key, skip_key = keys.annotations_live(pid), keys.annotations_skipped(pid)
        live, skipped = [int(a) for a in live], [int(a) for a in skipped]
        pipe = self.r.pipeline(transaction=True)
        pipe.delete(live_key, skip_key)
        for key, ids in ((live_key, live), (skip_key, skipped)):
            for start in range(0, len(ids), 10_000):
                pipe.sadd(key, *ids[start : start + 10_000])
        pipe.execute()

    def ls_counters(self, pid: int) -> dict[str, int]:
        """The project counters of the latest webhook (``total_annotations_number``, ...)."""
        return {k.decode(): int(v) for k, v in self.r.hgetall(keys.ls_counters(pid)).items()}

    def mark_reconcile(self, pid: int, ttl: int) -> bool:
        """Set the 'a reconcile job is queued' flag; True if it was not set (so the caller enqueues)."""
        return bool(self.r.set(keys.reconcile_pending(pid), 1, nx=True, ex=max(1, int(ttl))))

    def clear_reconcile(self, pid: int, started_at: float | None = None) -> None:
        """Clear the flag; a starting reconcile job passes its start time (the rate limit counts from it)."""
        pipe = self.r.pipeline(transaction=True)
        pipe.delete(keys.reconcile_pending(pid))
        if started_at is not None:
            pipe.set(keys.reconcile_at(pid), repr(float(started_at)))
        pipe.execute()

    def last_reconcile(self, pid: int) -> float | None:
        """When the project's last reconcile job started (epoch seconds), or None."""
        raw = self.r.get(keys.reconcile_at(pid))
        return float(raw) if raw else None
