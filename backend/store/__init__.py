"""The Redis store: typed access to everything DALT keeps in Redis, one module per concept.

``Store`` is a thin facade: it only combines the parts below, so callers need one object and the public
methods stay where they always were. Key names are spelled in :mod:`backend.store.keys` alone (its
docstring is the Redis layout); the Lua scripts live in ``lua/`` and are loaded by
:mod:`backend.store.scripts`, whose :class:`~backend.store.scripts.Batch` lets the webhook send the
commands of several parts in one round trip.

==============  =====================================================================================
module          concept (each module's ``*Parts`` class is one base of ``Store``)
==============  =====================================================================================
``projects``    projects, their settings, encoder versions
``embeddings``  embeddings by encoder version and task (their byte format: ``codec``)
``labels``      the annotation ledger: task labels and the label generation
``training``    the training pending flag, the training lock, run counters
``graph``       the neighbour graph per encoder version, spread snapshots, the graph lane's flags
``heads``       published heads, versions, rollback; the publish rule
``evaluation``  served suggestions and accepted/corrected outcomes
``reconcile``   annotation ids seen, Label Studio's counters, the reconcile flag
``lifecycle``   forgetting deleted tasks, purging a deleted project
``accept``      bulk-accepted tasks, the last bulk-accept run and its audit sample
``connection``  opening the client: one Redis or a Redis Cluster
==============  =====================================================================================
"""

from __future__ import annotations

from typing import Any

from backend.store.accept import AcceptParts
from backend.store.codec import BUCKET
from backend.store.connection import connect
from backend.store.embeddings import EmbeddingParts
from backend.store.evaluation import EvaluationParts
from backend.store.graph import GraphParts
from backend.store.heads import HeadParts, HeadRecord
from backend.store.labels import LabelParts
from backend.store.lifecycle import Forgotten, LifecycleParts
from backend.store.projects import EncoderInfo, ProjectParts
from backend.store.reconcile import ReconcileParts
from backend.store.training import TrainingParts


class Store(ProjectParts, EmbeddingParts, GraphParts, LabelParts, TrainingParts, HeadParts, EvaluationParts,
            ReconcileParts, LifecycleParts, AcceptParts):
    """Typed access to DALT's data in Redis.

    Args:
        client: a redis-py client (``redis.Redis`` or ``RedisCluster``, see ``connection``) created with
            ``decode_responses=False`` (embeddings are bytes).
        keep_versions: how many head versions stay available for rollback.
    """

    @classmethod
    def from_url(cls, url: str, keep_versions: int = 10, **kwargs: Any) -> Store:
        """Build a store on a new connection pool for ``url`` (``redis+cluster://``: a Redis Cluster, see
        :mod:`backend.store.connection`)."""
        kwargs.setdefault("health_check_interval", 30)
        return cls(connect(url, **kwargs), keep_versions=keep_versions)


__all__ = ["BUCKET", "EncoderInfo", "Forgotten", "HeadRecord", "Store"]
