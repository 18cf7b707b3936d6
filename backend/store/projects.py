"""Projects and their encoders: which projects exist, their settings, and the encoder versions.

A project's settings are written by ``backend.projects`` from what Label Studio sends (``/setup``,
webhooks), compared by content with what Redis holds (``lua/save_settings.lua``: several gunicorn workers
write the same project, so no process may trust its own memory of what it wrote); every value is stored
JSON-encoded so that a token like ``"1e5"`` reads back as the string it was. A project exists once a label
config was saved for it; only a payload that carries one may create it. An encoder version is what bulk
encoding trained; making one current tells ``/predict`` and the training job which embeddings to use
(older ones are never mixed in).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from backend.store import keys
from backend.store.base import StoreBase
from backend.store.scripts import Batch, Reply


@dataclass(frozen=True)
class EncoderInfo:
    """What the store knows about one encoder version of a project."""

    version: str
    dim: int
    meta: dict


def _settings(raw: dict[bytes, bytes]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in raw.items():
        key, val = k.decode(), v.decode()
        try:  # every value is stored JSON-encoded, so a token like "1e5" stays a string
            out[key] = json.loads(val)
        except ValueError:
            out[key] = val
    return out


class ProjectParts(StoreBase):
    """Projects, their settings and their encoders."""

    def projects(self) -> list[int]:
        """Every project id the backend has seen."""
        return sorted(int(p) for p in self.r.smembers(keys.PROJECTS))

    def save_settings_in(self, batch: Batch, pid: int, fields: Mapping[str, Any], *, create: bool,
                         now: float | None = None) -> Reply[int]:
        """Queue a compare-by-content save of ``fields`` on ``batch``.

        Args:
            create: the fields carry a label config: the project may be created (and is marked active).
            now: the time to mark the project active with (default: now).

        Returns:
            A reply with how many fields changed, or -1 when the project is unknown and not created.
        """
        args: list[Any] = ["1" if create else "0"]
        for k, v in sorted(fields.items()):
            if v is not None:
                args += [k, json.dumps(v)]
        reply = batch.script("save_settings", [keys.meta(pid)], args, decode=int)
        if create:
            batch.command("sadd", keys.PROJECTS, int(pid))
            batch.command("zadd", keys.ACTIVE, {str(int(pid)): time.time() if now is None else now})
        return reply

    def save_settings(self, pid: int, fields: Mapping[str, Any], *, create: bool) -> int:
        """:meth:`save_settings_in` in a batch of its own."""
        return self._alone(lambda batch: self.save_settings_in(batch, pid, fields, create=create))

    def listed_projects(self, limit: int) -> tuple[list[int], int]:
        """The ``limit`` most recently active projects (newest first) and how many projects there are.

        One round trip whatever the number of projects: what ``/``, ``/versions`` and ``/metrics`` list.
        """
        pipe = self.r.pipeline(transaction=False)
        pipe.zrevrange(keys.ACTIVE, 0, max(0, int(limit)) - 1)
        pipe.scard(keys.PROJECTS)
        active, total = pipe.execute()
        return [int(p) for p in active][: max(0, int(limit))], int(total)

    def overview(self, pids: list[int]) -> dict[int, dict[str, Any]]:
        """Per project: ``labels`` (count), ``current`` version, ``stats`` and raw ``evaluation`` counters, in
        ONE round trip for all of them (the metrics scrape)."""
        pipe = self.r.pipeline(transaction=False)
        for pid in pids:
            pipe.hlen(keys.labels(pid))
            pipe.get(keys.current(pid))
            pipe.hgetall(keys.stats(pid))
            pipe.hgetall(keys.evaluation(pid))
        raw = pipe.execute() if pids else []
        out: dict[int, dict[str, Any]] = {}
        for i, pid in enumerate(pids):
            n, current, stats, evals = raw[4 * i : 4 * i + 4]
            evaluation: dict[str, dict[str, float]] = {}
            for k, v in evals.items():
                version, _, rest = k.decode().partition(":")
                evaluation.setdefault(version, {})[rest] = float(v)
            out[pid] = {
                "labels": int(n),
                "current": current.decode() if current else None,
                "stats": {k.decode(): float(v) for k, v in stats.items()},
                "evaluation": evaluation,
            }
        return out

    def current_versions(self, pids: list[int]) -> dict[int, str | None]:
        """The served version of each project, in one round trip."""
        pipe = self.r.pipeline(transaction=False)
        for pid in pids:
            pipe.get(keys.current(pid))
        return {pid: (v.decode() if v else None) for pid, v in zip(pids, pipe.execute() if pids else [],
                                                                    strict=True)}

    def save_project(self, pid: int, **fields: Any) -> None:
        """Create the project on first use and update its settings (values JSON-encoded)."""
        enc = {k: json.dumps(v) for k, v in fields.items() if v is not None}
        pipe = self.r.pipeline(transaction=False)
        pipe.sadd(keys.PROJECTS, pid)
        if enc:
            pipe.hset(keys.meta(pid), mapping=enc)
        pipe.execute()

    def project_in(self, batch: Batch, pid: int) -> Reply[dict[str, Any]]:
        """Queue :meth:`project` on ``batch``."""
        return batch.command("hgetall", keys.meta(pid), decode=_settings)

    def project(self, pid: int) -> dict[str, Any]:
        """The project's settings as saved (JSON fields decoded); empty for an unknown project."""
        return self._alone(self.project_in, pid)

    # ---- encoders --------------------------------------------------------------------------------
    def put_encoder(self, pid: int, version: str, blob: bytes, meta: Mapping[str, Any], current: bool = True) -> None:
        """Store an encoder version and (unless ``current=False``: a candidate) make it current.

        ``meta`` must hold ``dim``. The project's keys change in one transaction (one slot, so a cluster allows
        it); the global project list is another slot, so it is written after, on its own.
        """
        if int(meta.get("dim", 0)) <= 0:
            raise ValueError("encoder meta needs a positive 'dim'")
        pipe = self.r.pipeline(transaction=True)
        pipe.set(keys.encoder_blob(pid, version), blob)
        pipe.hset(keys.encoder_meta(pid), version, json.dumps(dict(meta)))
        if current:
            pipe.set(keys.encoder_current(pid), version)
        pipe.execute()
        self.r.sadd(keys.PROJECTS, pid)

    def make_encoder_current(self, pid: int, version: str) -> None:
        """Switch the project to a stored encoder version (a candidate that proved better).

        Raises:
            ValueError: the version is not stored.
        """
        if self.r.hget(keys.encoder_meta(pid), version) is None:
            raise ValueError(f"project {pid} has no encoder {version}")
        self.r.set(keys.encoder_current(pid), version)

    def current_encoder(self, pid: int) -> EncoderInfo | None:
        """The encoder version that new embeddings must be made with, or None before bulk encoding."""
        ver = self.r.get(keys.encoder_current(pid))
        if ver is None:
            return None
        return self.encoder_info(pid, ver.decode())

    def encoder_info(self, pid: int, version: str) -> EncoderInfo | None:
        """Metadata of one encoder version (None if unknown)."""
        raw = self.r.hget(keys.encoder_meta(pid), version)
        if raw is None:
            return None
        meta = json.loads(raw)
        return EncoderInfo(version=version, dim=int(meta["dim"]), meta=meta)

    def encoder_blob(self, pid: int, version: str) -> bytes | None:
        """Serialized weights of an encoder version (None if unknown)."""
        return self.r.get(keys.encoder_blob(pid, version))

    def encoder_versions(self, pid: int) -> list[str]:
        """All encoder versions whose metadata is stored."""
        return sorted(v.decode() for v in self.r.hkeys(keys.encoder_meta(pid)))

    def drop_encoder(self, pid: int, version: str) -> None:
        """Delete an encoder version, all embeddings made with it and its neighbour graph."""
        self.drop_embeddings(pid, version)  # type: ignore[attr-defined]
        self.drop_graph(pid, version)  # type: ignore[attr-defined]
        pipe = self.r.pipeline(transaction=False)
        pipe.delete(keys.encoder_blob(pid, version))
        pipe.hdel(keys.encoder_meta(pid), version)
        pipe.execute()

    def ping(self) -> bool:
        """True when Redis answers."""
        return bool(self.r.ping())
