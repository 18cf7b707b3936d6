"""One watchdog thread that runs a callback when a deadline passes: total deadlines for blocking reads.

Why: a socket timeout bounds each ``recv``, not a whole download, so a server that sends one byte every
0.4 s keeps a ``timeout=1`` download alive for as long as it likes. Checking the clock between chunks
does not help either (a chunk is 64 KiB). The fetcher arms this watchdog with the download's deadline and
a callback that shuts the socket down, which makes the blocked read return at once. One thread serves
every armed deadline of the process (a heap), so concurrent downloads cost no thread each.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)


class Watchdog:
    """Runs callbacks at their deadlines (``time.monotonic()`` seconds) on one daemon thread."""

    def __init__(self, name: str = "watchdog"):
        self.name = name
        self._heap: list[tuple[float, int]] = []
        self._armed: dict[int, tuple[Callable[[], None], threading.Event]] = {}
        self._ids = itertools.count()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    @contextmanager
    def guard(self, deadline: float, callback: Callable[[], None]) -> Iterator[threading.Event]:
        """Run ``callback`` if the body is still running at ``deadline``; yields an event set when it ran."""
        fired = threading.Event()
        with self._cond:
            key = next(self._ids)
            self._armed[key] = (callback, fired)
            heapq.heappush(self._heap, (deadline, key))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()
            self._cond.notify()
        try:
            yield fired
        finally:
            with self._cond:
                self._armed.pop(key, None)

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._heap and self._heap[0][1] not in self._armed:
                    heapq.heappop(self._heap)  # disarmed: finished in time
                if not self._heap:
                    self._cond.wait(30.0)
                    if not self._heap:
                        self._thread = None  # idle: the next guard starts a new thread
                        return
                    continue
                deadline, key = self._heap[0]
                delay = deadline - time.monotonic()
                if delay > 0:
                    self._cond.wait(delay)
                    continue
                heapq.heappop(self._heap)
                entry = self._armed.pop(key, None)
            if entry is not None:
                callback, fired = entry
                fired.set()
                try:
                    callback()
                except Exception:  # noqa: BLE001 - the watchdog must keep serving other deadlines
                    log.warning("%s: deadline callback failed", self.name, exc_info=True)


def shutdown_socket(resp: object) -> None:
    """Shut down the socket under a streamed ``requests`` response (from the watchdog thread): a read blocked on
    it returns at once. Best effort: a response whose connection was already released has nothing to cut."""
    import socket

    raw = getattr(resp, "raw", None)
    conn = getattr(raw, "_connection", None) or getattr(raw, "connection", None)
    sock = getattr(conn, "sock", None)
    if sock is None:  # urllib3 released the connection; reach the socket through the file object
        fp = getattr(getattr(raw, "_fp", None), "fp", None)
        sock = getattr(getattr(fp, "raw", None), "_sock", None)
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
