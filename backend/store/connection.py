"""Opening the project-data Redis: one server (``redis://``) or a Redis Cluster (``redis+cluster://``).

The only place that creates a store's client. A cluster is named by its URL scheme rather than by a
second setting: the URL alone then says what it points at, so every tool that takes a Redis URL
(``REDIS_URL``, ``--redis-url``) reaches a cluster the same way, and no flag can disagree with the URL it
goes with. ``redis+cluster://host:port`` (``rediss+cluster://`` for TLS) names any node of the cluster;
the client discovers the others. A path (``/0``) is refused: a cluster has database 0 only.

What the store does is cluster-safe because every key of a project shares the hash tag ``{p<ID>}`` (see
:mod:`backend.store.keys`): its scripts and transactions touch one slot. Pipelines may mix projects and
the global lists; a cluster client splits those per node (still one round trip per node).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis
from redis.cluster import RedisCluster

CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}

Client = redis.Redis | RedisCluster


def is_cluster_url(url: str) -> bool:
    """Whether ``url`` names a Redis Cluster (``redis+cluster://`` or ``rediss+cluster://``)."""
    return urlsplit(url).scheme.lower() in CLUSTER_SCHEMES


def connect(url: str, **kwargs: Any) -> Client:
    """A client for ``url`` (``decode_responses`` stays False: embeddings are bytes).

    Raises:
        ValueError: a cluster URL names a database other than 0.
    """
    parts = urlsplit(url)
    scheme = CLUSTER_SCHEMES.get(parts.scheme.lower())
    if scheme is None:
        return redis.Redis.from_url(url, **kwargs)
    if parts.path.strip("/") not in ("", "0"):
        raise ValueError(f"a Redis Cluster has database 0 only, not {parts.path!r} ({url.split('@')[-1]})")
    kwargs.pop("health_check_interval", None)  # per node connection pools; a cluster client reconnects itself
    return RedisCluster.from_url(urlunsplit((scheme, parts.netloc, "", parts.query, "")), **kwargs)


def is_cluster(client: object) -> bool:
    """Whether ``client`` talks to a Redis Cluster."""
    return isinstance(client, RedisCluster)
