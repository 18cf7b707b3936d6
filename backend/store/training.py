"""Training coordination: the "a run is queued" flag, the lock a running run holds, and run counters.

The flag and the lock are what ``backend.queueing`` and ``backend.jobs`` build coalescing on (the rules
are written out in ``backend.queueing``); here they are only stored. Both expire, so a job that vanished
(Redis flushed by hand, a worker killed) blocks its project for a bounded time only.
"""

from __future__ import annotations

import redis

from backend.store import keys
from backend.store.base import StoreBase


class TrainingParts(StoreBase):
    """The pending flag, the training lock and per-project counters."""

    def mark_train_pending(self, pid: int, ttl: int) -> bool:
        """Set the 'a training job is queued' flag; True if it was not set (so the caller enqueues)."""
        return bool(self.r.set(keys.train_pending(pid), 1, nx=True, ex=max(1, int(ttl))))

    def clear_train_pending(self, pid: int) -> None:
        """Clear the flag (a training job does it first thing when it starts)."""
        self.r.delete(keys.train_pending(pid))

    def train_pending(self, pid: int) -> bool:
        """Whether a training job is queued for the project."""
        return bool(self.r.exists(keys.train_pending(pid)))

    def train_lock(self, pid: int, ttl: float) -> redis.lock.Lock:
        """The lock a training run holds, so runs of one project never overlap on several workers.

        A short ``ttl`` that the holder keeps extending: a killed run frees the project within ``ttl``.
        """
        return self.r.lock(keys.train_lock(pid), timeout=ttl, sleep=0.1, thread_local=False)

    def incr_stat(self, pid: int, field: str, amount: float = 1) -> None:
        """Add to a per-project counter (training runs, seconds, failures...)."""
        if isinstance(amount, float) and not amount.is_integer():
            self.r.hincrbyfloat(keys.stats(pid), field, amount)
        else:
            self.r.hincrby(keys.stats(pid), field, int(amount))

    def stats(self, pid: int) -> dict[str, float]:
        """Per-project counters."""
        return {k.decode(): float(v) for k, v in self.r.hgetall(keys.stats(pid)).items()}
