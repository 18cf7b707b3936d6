"""One bounded, thread-safe LRU cache, sized in bytes: every per-process cache of DALT is one of these.

Why bytes and not entries: the values come from unauthenticated input of very different sizes (a label
config of 3 MB, a head of 28 MB, a fetcher with a connection pool and threads), so a count bound lets a
handful of large values take the process's memory. Each cache says what one value costs
(``size_of``), gets a budget from ``backend.config`` (``DALT_*_CACHE_BYTES``), and may close what it
evicts (``on_evict``: a fetcher's connection pool and download threads). A value larger than the whole
budget is not cached at all (the caller still gets it).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

log = logging.getLogger(__name__)


class ByteLRU(Generic[K, V]):
    """Least-recently-used cache whose total cost stays at or below ``max_bytes``.

    Args:
        max_bytes: the budget; 0 disables caching.
        size_of: cost of one value in bytes (called once, when the value is stored).
        on_evict: called with each value that leaves the cache (evicted, replaced or cleared), outside the
            cache's lock; errors are logged, never raised.
        name: for log messages.
    """

    def __init__(self, max_bytes: int, size_of: Callable[[V], int], *,
                 on_evict: Callable[[V], None] | None = None, name: str = "cache"):
        self.max_bytes = max(0, int(max_bytes))
        self._size_of = size_of
        self._on_evict = on_evict
        self.name = name
        self._items: OrderedDict[K, tuple[V, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    @property
    def total_bytes(self) -> int:
        """Cost of everything cached now."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def keys(self) -> Iterator[K]:
        """A snapshot of the keys, least recently used first."""
        with self._lock:
            return iter(list(self._items))

    def resize(self, max_bytes: int) -> None:
        """Change the budget (from the configuration), evicting what no longer fits."""
        gone: list[V] = []
        with self._lock:
            self.max_bytes = max(0, int(max_bytes))
            while self._bytes > self.max_bytes and self._items:
                _, (evicted, evicted_size) = self._items.popitem(last=False)
                self._bytes -= evicted_size
                gone.append(evicted)
        self._evicted(gone)

    def get(self, key: K) -> V | None:
        """The cached value (marked as recently used), or None."""
        with self._lock:
            hit = self._items.get(key)
            if hit is None:
                return None
            self._items.move_to_end(key)
            return hit[0]

    def put(self, key: K, value: V) -> V:
        """Cache ``value`` under ``key`` (evicting the least recently used beyond the budget); returns it."""
        size = max(0, int(self._size_of(value)))
        with self._lock:
            gone = self._insert(key, value, size)
        self._evicted(gone)
        return value

    def get_or_create(self, key: K, create: Callable[[], V]) -> V:
        """The cached value, else ``create()`` stored under ``key``.

        ``create`` runs outside the lock (it may read Redis); when two threads race, the value stored first
        wins, every caller gets it, and the other one is handed to ``on_evict`` (never one in use).
        """
        hit = self.get(key)
        if hit is not None:
            return hit
        value = create()
        size = max(0, int(self._size_of(value)))
        with self._lock:
            raced = self._items.get(key)
            gone = [value] if raced is not None else self._insert(key, value, size)
        self._evicted(gone)
        return raced[0] if raced is not None else value

    def _insert(self, key: K, value: V, size: int) -> list[V]:
        """Store under the lock; returns what left the cache (to hand to ``on_evict`` outside it)."""
        gone: list[V] = []
        old = self._items.pop(key, None)
        if old is not None:
            self._bytes -= old[1]
            if old[0] is not value:
                gone.append(old[0])
        if size <= self.max_bytes:
            self._items[key] = (value, size)
            self._bytes += size
        while self._bytes > self.max_bytes and self._items:
            _, (evicted, evicted_size) = self._items.popitem(last=False)
            self._bytes -= evicted_size
            gone.append(evicted)
        return gone

    def pop(self, key: K) -> V | None:
        """Remove one entry (handed to ``on_evict``); returns its value or None."""
        with self._lock:
            hit = self._items.pop(key, None)
            if hit is not None:
                self._bytes -= hit[1]
        if hit is None:
            return None
        self._evicted([hit[0]])
        return hit[0]

    def clear(self) -> None:
        """Drop everything (each value handed to ``on_evict``)."""
        with self._lock:
            gone = [v for v, _ in self._items.values()]
            self._items.clear()
            self._bytes = 0
        self._evicted(gone)

    def _evicted(self, values: list[V]) -> None:
        if self._on_evict is None:
            return
        for value in values:
            try:
                self._on_evict(value)
            except Exception:  # noqa: BLE001 - closing an evicted value must not fail the caller
                log.warning("%s: closing an evicted entry failed", self.name, exc_info=True)
