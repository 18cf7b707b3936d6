"""What every part of the store shares: the Redis client, the Lua scripts and one-round-trip batches.

The parts (one module per concept) are mixins of :class:`backend.store.Store`; each writes a command
once, as a ``*_in(batch, ...)`` method that queues it on a :class:`~backend.store.scripts.Batch`, and its
plain method runs that batch alone. So the webhook can put the commands of several concepts into one
round trip without any of them being written twice.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from backend.store.connection import Client
from backend.store.scripts import Batch, Reply, register

T = TypeVar("T")


class StoreBase:
    """The client, the scripts bound to it, and how many head versions are kept for rollback."""

    def __init__(self, client: Client, keep_versions: int = 10):
        self.r = client
        self.keep_versions = keep_versions
        self._scripts = register(client)

    def batch(self) -> Batch:
        """A new batch on this store's client: queue ``*_in`` calls, then ``execute()`` once."""
        return Batch(self.r, self._scripts)

    def _alone(self, queue: Callable[..., Reply[T]], *args: Any) -> T:
        """Run one ``*_in`` method in a batch of its own and return its value."""
        batch = self.batch()
        reply = queue(batch, *args)
        batch.execute()
        return reply.value
