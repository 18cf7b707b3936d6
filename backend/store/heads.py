"""Published heads and their versions: what ``/setup`` and ``/predict`` serve, and the rollback history.

The publish rule (enforced atomically by ``lua/publish_head.lua``): a head trained at label generation
``g`` with encoder ``e`` and head kind ``k`` becomes the served version only when

1. ``e`` is the project's current encoder (a head made with an encoder that bulk encoding has since
   replaced is never published: its embeddings are gone), and
2. the served head is older: trained at a generation below ``g``, or at ``g`` itself but with another
   encoder or another head kind (a retrained encoder or a changed ``DALT_HEAD`` must reach ``/predict``
   even when no label changed), or with the same ones but an older spread snapshot (meta ``snapshot``:
   the graph lane's new snapshot must reach ``/predict`` even when no label changed since).

Otherwise nothing changes and the caller learns the head was stale. So a slow run that started before
newer labels arrived can never replace the head those labels produced, whatever order runs finish in.
A published head gets the next version number (``v1``, ``v2``, ...; never reused), becomes current, and
goes to the front of the history; versions beyond ``keep_versions`` are deleted with their weights.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from backend.store import keys
from backend.store.base import StoreBase


@dataclass(frozen=True)
class HeadRecord:
    """A published head: its version, serialized weights and metadata."""

    version: str
    blob: bytes
    meta: dict


class HeadParts(StoreBase):
    """Publishing heads, reading them, listing and moving the served version."""

    def publish_head(self, pid: int, blob: bytes, meta: Mapping[str, Any], generation: int) -> str | None:
        """Atomically publish a head trained at ``generation`` if the rule above allows it.

        ``meta`` carries ``encoder_version`` and ``head`` (the head kind) when known.

        Returns:
            The new version, or None when the served head is at least as new or this head's encoder has
            been replaced meanwhile.
        """
        meta = dict(meta, generation=int(generation), published_at=time.time())
        batch = self.batch()
        reply = batch.script(
            "publish_head",
            [keys.current(pid), keys.heads(pid), keys.history(pid), keys.version_seq(pid), keys.encoder_current(pid)],
            [keys.head_prefix(pid), blob, json.dumps(meta), int(generation), self.keep_versions],
        )
        batch.execute()
        return reply.value.decode() if reply.value else None

    def current_version(self, pid: int) -> str | None:
        """The head version served now (None before the first training)."""
        v = self.r.get(keys.current(pid))
        return v.decode() if v else None

    def head(self, pid: int, version: str) -> HeadRecord | None:
        """A head's weights and metadata (None if unknown or trimmed from history)."""
        pipe = self.r.pipeline(transaction=False)
        pipe.get(keys.head(pid, version))
        pipe.hget(keys.heads(pid), version)
        blob, meta = pipe.execute()
        if blob is None or meta is None:
            return None
        return HeadRecord(version=version, blob=blob, meta=json.loads(meta))

    def versions(self, pid: int) -> list[dict]:
        """Metadata of the kept versions, newest first."""
        pipe = self.r.pipeline(transaction=False)
        pipe.lrange(keys.history(pid), 0, -1)
        pipe.hgetall(keys.heads(pid))
        order, metas = pipe.execute()
        out = []
        for v in order:
            raw = metas.get(v)
            if raw is not None:
                out.append(json.loads(raw))
        return out

    def set_current_version(self, pid: int, version: str) -> None:
        """Roll back (or forward) to a kept version.

        Raises:
            KeyError: if the version is not kept.
        """
        if not self.r.hexists(keys.heads(pid), version):
            raise KeyError(f"version {version!r} of project {pid} is not kept")
        self.r.set(keys.current(pid), version)
