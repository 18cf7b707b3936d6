"""The Lua scripts of ``lua/`` and :class:`Batch`, which sends scripts and commands in ONE round trip.

Scripts are read from the package once per process and registered per client (redis-py computes their
SHA1 locally, nothing is sent). A batch sends ``EVALSHA`` directly in a plain pipeline: redis-py's own
script support asks ``SCRIPT EXISTS`` before every pipeline that queues a script (a second round trip).
When Redis answers ``NOSCRIPT`` (it restarted or flushed its script cache), only the calls that got it
run again, as ``EVAL`` with the script's text, together in one more round trip; every other command of
the batch has already run exactly once. ``EVAL`` (not ``SCRIPT LOAD``) because it goes where the call's
keys live: on a Redis Cluster each node has its own script cache, ``SCRIPT LOAD`` names no key, and
redis-py's cluster pipeline refuses ``SCRIPT LOAD`` and its ``evalsha`` method (the generic
``execute_command`` routes ``EVALSHA`` by its keys); Redis caches what ``EVAL`` ran, so the next
``EVALSHA`` on that node finds the script.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cache
from importlib.resources import files
from typing import Any, Generic, TypeVar

import redis
from redis.commands.core import Script

from backend.store.connection import Client

NAMES = ("record_annotation", "delete_annotations", "record_outcome", "observe_annotations", "publish_head",
         "save_settings", "forget_tasks", "clear_slots", "review_bulk", "put_embeddings", "clear_embeddings",
         "count_embeddings")
# Lua files of shared functions, put in front of the scripts that call them (a script is one chunk).
PRELUDES: dict[str, tuple[str, ...]] = {
    "record_annotation": ("task_labels",),
    "delete_annotations": ("task_labels",),
    "clear_slots": ("slots",),
    "put_embeddings": ("slots",),
    "clear_embeddings": ("slots",),
}

T = TypeVar("T")
# Errors that mean Redis takes no writes at all (maxmemory with noeviction, a read-only replica): a batch
# raises them even for commands whose own errors are tolerated (the app answers 503 with Retry-After).
REFUSED_WRITES = (redis.exceptions.OutOfMemoryError, redis.exceptions.ReadOnlyError)


def _read(name: str) -> str:
    return files("backend.store").joinpath("lua", f"{name}.lua").read_text(encoding="utf-8")


@cache
def source(name: str) -> str:
    """The Lua text of script ``name``: its :data:`PRELUDES`, then ``lua/<name>.lua`` (read once per process)."""
    return "".join(_read(part) + "\n" for part in (*PRELUDES.get(name, ()), name))


def register(client: Client) -> dict[str, Script]:
    """Every script, bound to ``client`` (no round trip)."""
    return {name: client.register_script(source(name)) for name in NAMES}


def _same(raw: Any) -> Any:
    return raw


class Reply(Generic[T]):
    """The answer to one command of a :class:`Batch` (or, from :func:`gather`, to several), readable after
    :meth:`Batch.execute`."""

    __slots__ = ("_raw", "_decode", "_set", "_parts")

    def __init__(self, decode: Callable[[Any], T], parts: Sequence[Reply] | None = None):
        self._decode = decode
        self._raw: Any = None
        self._set = False
        self._parts = parts

    @property
    def error(self) -> Exception | None:
        """The error Redis answered for this command (None when it succeeded)."""
        if self._parts is not None:
            return next((p.error for p in self._parts if p.error is not None), None)
        return self._raw if isinstance(self._raw, Exception) else None

    @property
    def value(self) -> T:
        """The decoded answer.

        Raises:
            Exception: the error Redis answered for this command.
        """
        if self._parts is not None:
            return self._decode([p.value for p in self._parts])
        if not self._set:
            raise RuntimeError("the batch has not been executed")
        if isinstance(self._raw, Exception):
            raise self._raw
        return self._decode(self._raw)


def gather(parts: Sequence[Reply], decode: Callable[[list], T]) -> Reply[T]:
    """One reply made of several: its value is ``decode([part values])``."""
    return Reply(decode, list(parts))


class Batch:
    """Commands and Lua scripts for one pipeline (not a transaction), sent in one round trip.

    Each script is atomic on its own; nothing else runs between commands only if they are in one script.
    """

    def __init__(self, client: Client, scripts: dict[str, Script]):
        self._client = client
        self._pipe = client.pipeline(transaction=False)
        self._scripts = scripts
        self._entries: list[tuple[Reply, Script | None, list, list]] = []

    def __len__(self) -> int:
        return len(self._entries)

    def script(
        self, name: str, keys: Sequence[Any], args: Sequence[Any], decode: Callable[[Any], T] = _same
    ) -> Reply[T]:
        """Queue the Lua script ``name`` (see ``lua/``)."""
        script = self._scripts[name]
        self._pipe.execute_command("EVALSHA", script.sha, len(keys), *keys, *args)
        reply: Reply[T] = Reply(decode)
        self._entries.append((reply, script, list(keys), list(args)))
        return reply

    def command(self, name: str, *args: Any, decode: Callable[[Any], T] = _same, **kwargs: Any) -> Reply[T]:
        """Queue a plain command by its redis-py method name, e.g. ``command("hlen", key, decode=int)``."""
        getattr(self._pipe, name)(*args, **kwargs)
        reply: Reply[T] = Reply(decode)
        self._entries.append((reply, None, [], []))
        return reply

    def execute(self) -> None:
        """Send everything in one round trip; each reply then holds its answer or its error.

        Raises:
            redis.exceptions.ConnectionError, redis.exceptions.TimeoutError: Redis is unreachable.
            redis.exceptions.OutOfMemoryError, redis.exceptions.ReadOnlyError: Redis refused a write.
        """
        if not self._entries:
            return
        replies = self._pipe.execute(raise_on_error=False)
        missing = [i for i, raw in enumerate(replies) if isinstance(raw, redis.exceptions.NoScriptError)]
        if missing:  # run those calls again with the script's text, in one more round trip
            retry = self._client.pipeline(transaction=False)
            for i in missing:
                _, script, keys, args = self._entries[i]
                retry.execute_command("EVAL", script.script, len(keys), *keys, *args)
            for i, raw in zip(missing, retry.execute(raise_on_error=False), strict=True):
                replies[i] = raw
        for (reply, _, _, _), raw in zip(self._entries, replies, strict=True):
            reply._raw, reply._set = raw, True
        refused = next((r for r in replies if isinstance(r, REFUSED_WRITES)), None)
        if refused is not None:  # Redis is full or read-only: no command of the batch is "best effort" then
            raise refused
