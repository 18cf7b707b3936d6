"""The Redis store: the ONE module that knows DALT's key names.

Every other module talks to Redis through :class:`Store`, so the layout below can change in one place.
All keys of one project share the hash tag ``{p<ID>}``; that keeps a project on one Redis Cluster slot,
so the Lua scripts below stay valid on a cluster, and lets projects spread over shards.

Layout (``P`` = ``dalt:{p<ID>}``)::

    dalt:projects                 set    project ids seen (reconcile / reports iterate it, no KEYS)
    P:meta                        hash   label_config, classes (JSON), from_name, to_name, image_key,
                                         min_annotations, title
    P:enc:current                 string current encoder version
    P:enc:meta                    hash   encoder version -> JSON meta (dim, objective, image size, ...)
    P:enc:blob:<ver>              string serialized encoder weights (see ``encoder.artifact``)
    P:emb:<ver>:<bucket>          string slots of ``1 + 2*dim`` bytes for task ids ``bucket*256 ..+255``:
                                         a flag byte (1 = present) then float16 little-endian values
    P:emb:<ver>:buckets           set    bucket numbers that exist for that encoder version
    P:labels                      hash   task id -> current label (the label the head trains on)
    P:ann                         hash   annotation id -> task id (deletes arrive with annotation ids)
    P:task_anns                   hash   task id -> JSON [[annotation id, label], ...] (overlap, updates)
    P:gen                         string label generation, bumped on every label change
    P:train_pending               string set while a training job is queued (coalescing flag)
    P:train_lock                  string held by the running training job (redis-py Lock, short TTL)
    P:vseq                        string last head version number handed out
    P:current                     string the version that /setup and /predict serve ("v7")
    P:head:<ver>                  string serialized head (see ``backend.head``)
    P:heads                       hash   version -> JSON meta (generation, labels, classes, times)
    P:history                     list   versions, newest first, capped (older heads are deleted)
    P:stats                       hash   counters: train_runs, train_seconds, train_skipped, ...
    P:served                      hash   task id -> JSON {version, label, score} served by /predict
                                         (+ outcome once an annotation was compared with it)
    P:ann_live / P:ann_skipped    set    annotation ids that exist in Label Studio, not cancelled /
                                         cancelled (compared with its counters: lost webhooks)
    P:ann_gone                    set    annotation ids whose deletion a webhook reported
    P:ls_counters                 hash   the project counters of the latest webhook
    P:reconcile                   string set while a reconcile job is queued (coalescing flag)
    P:reconcile_at                string when the last reconcile job started (rate limit)
    P:eval                        hash   "<version>:<accepted|corrected>" -> count, and
                                         "<version>:<outcome>:lead_sum" / ":lead_n" (annotation lead_time)

Embeddings are packed into fixed slots of 256-task buckets instead of one key or hash field per task:
per-key and per-field overhead in Redis is 50-90 bytes, more than a 32-dim float16 vector itself.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import redis

BUCKET = 256
PROJECTS_KEY = "dalt:projects"


def project_id(value: Any) -> int:
    """Normalize the ways Label Studio names a project to its integer id.

    ``/setup`` and ``/predict`` send ``"ID.CREATED_TIMESTAMP"``; webhooks send ``{"id": ID, ...}``.

    Raises:
        ValueError: when no positive integer id can be read.
    """
    if isinstance(value, Mapping):
        value = value.get("id")
    if isinstance(value, bool) or value is None:
        raise ValueError("project id missing")
    if isinstance(value, int):
        pid = value
    elif isinstance(value, str):
        head = value.split(".", 1)[0].strip()
        if not head.isdigit():
            raise ValueError(f"project id {value!r} is not of the form ID or ID.TIMESTAMP")
        pid = int(head)
    else:
        raise ValueError(f"project id of type {type(value).__name__} is not supported")
    if pid <= 0 or pid > 2**53:
        raise ValueError(f"project id {pid} out of range")
    return pid


@dataclass(frozen=True)
class EncoderInfo:
    """What the store knows about one encoder version of a project."""

    version: str
    dim: int
    meta: dict


@dataclass(frozen=True)
class HeadRecord:
    """A published head: its version, serialized weights and metadata."""

    version: str
    blob: bytes
    meta: dict


# Lua: record (or replace) one annotation's label; returns 1 when the task's label changed.
_RECORD_ANNOTATION = """
local labels, ann, task_anns, gen = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local ann_id, task_id, label = ARGV[1], ARGV[2], ARGV[3]
local function load(t)
  local raw = redis.call('HGET', task_anns, t)
  if raw then return cjson.decode(raw) end
  return {}
end
local function store_task(t, list)
  local old = redis.call('HGET', labels, t)
  local new = false
  if #list == 0 then
    redis.call('HDEL', task_anns, t)
    redis.call('HDEL', labels, t)
  else
    redis.call('HSET', task_anns, t, cjson.encode(list))
    new = list[#list][2]
    redis.call('HSET', labels, t, new)
  end
  if old ~= new then redis.call('INCR', gen) return 1 end
  return 0
end
local function without(list, a)
  local out = {}
  for _, e in ipairs(list) do if tostring(e[1]) ~= a then table.insert(out, e) end end
  return out
end
local changed = 0
local prev_task = redis.call('HGET', ann, ann_id)
if prev_task and prev_task ~= task_id then
  changed = changed + store_task(prev_task, without(load(prev_task), ann_id))
end
local list = without(load(task_id), ann_id)
if label ~= '' then
  table.insert(list, {ann_id, label})
  redis.call('HSET', ann, ann_id, task_id)
else
  redis.call('HDEL', ann, ann_id)
end
changed = changed + store_task(task_id, list)
return changed
"""

# Lua: forget annotations by id; returns how many task labels changed.
_DELETE_ANNOTATIONS = """
local labels, ann, task_anns, gen = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local changed = 0
for _, ann_id in ipairs(ARGV) do
  local task_id = redis.call('HGET', ann, ann_id)
  if task_id then
    redis.call('HDEL', ann, ann_id)
    local raw = redis.call('HGET', task_anns, task_id)
    local list = {}
    if raw then
      for _, e in ipairs(cjson.decode(raw)) do
        if tostring(e[1]) ~= ann_id then table.insert(list, e) end
      end
    end
    local old = redis.call('HGET', labels, task_id)
    local new = false
    if #list == 0 then
      redis.call('HDEL', task_anns, task_id)
      redis.call('HDEL', labels, task_id)
    else
      redis.call('HSET', task_anns, task_id, cjson.encode(list))
      new = list[#list][2]
      redis.call('HSET', labels, task_id, new)
    end
    if old ~= new then changed = changed + 1 end
  end
end
if changed > 0 then redis.call('INCR', gen) end
return changed
"""

# Lua: publish a head only if it is newer than the head served now: trained on newer labels, or on the
# same labels but with the project's current encoder / another head kind than the served head (a retrained
# encoder or a changed DALT_HEAD must reach /predict even when no label changed). A head made with an
# encoder that is no longer current is never published. Returns the new version string, or false.
_PUBLISH_HEAD = """
local current, heads, history, vseq, enc_current = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local head_prefix, blob, meta_json, gen, keep = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
local meta = cjson.decode(meta_json)
local enc = meta['encoder_version']
local live_enc = redis.call('GET', enc_current)
if enc and live_enc and enc ~= live_enc then return false end
local cur = redis.call('GET', current)
if cur then
  local cur_meta = redis.call('HGET', heads, cur)
  if cur_meta then
    local c = cjson.decode(cur_meta)
    local g = tonumber(c['generation'] or -1)
    if g > gen then return false end
    if g == gen and c['encoder_version'] == enc and c['head'] == meta['head'] then return false end
  end
end
local n = redis.call('INCR', vseq)
local version = 'v' .. n
meta['version'] = version
redis.call('SET', head_prefix .. version, blob)
redis.call('HSET', heads, version, cjson.encode(meta))
redis.call('SET', current, version)
redis.call('LPUSH', history, version)
local old = redis.call('LRANGE', history, keep, -1)
for _, v in ipairs(old) do
  redis.call('DEL', head_prefix .. v)
  redis.call('HDEL', heads, v)
end
redis.call('LTRIM', history, 0, keep - 1)
return version
"""

# Lua: compare an annotation's label with the prediction served for its task, count the outcome per
# version (once per served prediction) and add its lead time. Returns the outcome, or false when nothing
# was served for the task or this served prediction was already evaluated.
_RECORD_OUTCOME = """
local served, evals = KEYS[1], KEYS[2]
local task_id, label, lead = ARGV[1], ARGV[2], ARGV[3]
local raw = redis.call('HGET', served, task_id)
if not raw then return false end
local s = cjson.decode(raw)
if s['outcome'] or not s['version'] then return false end
local outcome = 'corrected'
if s['label'] == label then outcome = 'accepted' end
local f = s['version'] .. ':' .. outcome
redis.call('HINCRBY', evals, f, 1)
if lead ~= '' then
  redis.call('HINCRBYFLOAT', evals, f .. ':lead_sum', lead)
  redis.call('HINCRBY', evals, f .. ':lead_n', 1)
end
s['outcome'] = outcome
redis.call('HSET', served, task_id, cjson.encode(s))
return outcome
"""


class Store:
    """Typed access to DALT's data in Redis.

    Args:
        client: a redis-py client created with ``decode_responses=False`` (embeddings are bytes).
        keep_versions: how many head versions stay available for rollback.
    """

    def __init__(self, client: redis.Redis, keep_versions: int = 10):
        self.r = client
        self.keep_versions = keep_versions
        self._record = client.register_script(_RECORD_ANNOTATION)
        self._delete = client.register_script(_DELETE_ANNOTATIONS)
        self._publish = client.register_script(_PUBLISH_HEAD)
        self._outcome = client.register_script(_RECORD_OUTCOME)

    @classmethod
    def from_url(cls, url: str, keep_versions: int = 10, **kwargs: Any) -> Store:
        """Build a store on a new connection pool for ``url``."""
        kwargs.setdefault("health_check_interval", 30)
        return cls(redis.Redis.from_url(url, **kwargs), keep_versions=keep_versions)

    # ---- key names -------------------------------------------------------------------------------
    @staticmethod
    def _p(pid: int) -> str:
        return f"dalt:{{p{int(pid)}}}"

    def _k(self, pid: int, *parts: Any) -> str:
        return ":".join([self._p(pid), *map(str, parts)])

    # ---- projects --------------------------------------------------------------------------------
    def projects(self) -> list[int]:
        """Every project id the backend has seen."""
        return sorted(int(p) for p in self.r.smembers(PROJECTS_KEY))

    def save_project(self, pid: int, **fields: Any) -> None:
        """Create the project on first use and update its settings (values JSON-encoded)."""
        enc = {k: json.dumps(v) for k, v in fields.items() if v is not None}
        pipe = self.r.pipeline(transaction=False)
        pipe.sadd(PROJECTS_KEY, pid)
        if enc:
            pipe.hset(self._k(pid, "meta"), mapping=enc)
        pipe.execute()

    def project(self, pid: int) -> dict[str, Any]:
        """The project's settings as saved (JSON fields decoded); empty for an unknown project."""
        raw = self.r.hgetall(self._k(pid, "meta"))
        out: dict[str, Any] = {}
        for k, v in raw.items():
            key, val = k.decode(), v.decode()
            try:  # every value is stored JSON-encoded, so a token like "1e5" stays a string
                out[key] = json.loads(val)
            except ValueError:
                out[key] = val
        return out

    # ---- encoders --------------------------------------------------------------------------------
    def put_encoder(self, pid: int, version: str, blob: bytes, meta: Mapping[str, Any]) -> None:
        """Store an encoder version and make it current. ``meta`` must hold ``dim``."""
        if int(meta.get("dim", 0)) <= 0:
            raise ValueError("encoder meta needs a positive 'dim'")
        pipe = self.r.pipeline(transaction=True)
        pipe.sadd(PROJECTS_KEY, pid)
        pipe.set(self._k(pid, "enc", "blob", version), blob)
        pipe.hset(self._k(pid, "enc", "meta"), version, json.dumps(dict(meta)))
        pipe.set(self._k(pid, "enc", "current"), version)
        pipe.execute()

    def current_encoder(self, pid: int) -> EncoderInfo | None:
        """The encoder version that new embeddings must be made with, or None before bulk encoding."""
        ver = self.r.get(self._k(pid, "enc", "current"))
        if ver is None:
            return None
        return self.encoder_info(pid, ver.decode())

    def encoder_info(self, pid: int, version: str) -> EncoderInfo | None:
        """Metadata of one encoder version (None if unknown)."""
        raw = self.r.hget(self._k(pid, "enc", "meta"), version)
        if raw is None:
            return None
        meta = json.loads(raw)
        return EncoderInfo(version=version, dim=int(meta["dim"]), meta=meta)

    def encoder_blob(self, pid: int, version: str) -> bytes | None:
        """Serialized weights of an encoder version (None if unknown)."""
        return self.r.get(self._k(pid, "enc", "blob", version))

    def encoder_versions(self, pid: int) -> list[str]:
        """All encoder versions whose metadata is stored."""
        return sorted(v.decode() for v in self.r.hkeys(self._k(pid, "enc", "meta")))

    def drop_encoder(self, pid: int, version: str) -> None:
        """Delete an encoder version and all embeddings made with it."""
        self.drop_embeddings(pid, version)
        pipe = self.r.pipeline(transaction=False)
        pipe.delete(self._k(pid, "enc", "blob", version))
        pipe.hdel(self._k(pid, "enc", "meta"), version)
        pipe.execute()

    # ---- embeddings ------------------------------------------------------------------------------
    def _bucket_key(self, pid: int, version: str, bucket: int) -> str:
        return self._k(pid, "emb", version, bucket)

    def put_embeddings(self, pid: int, version: str, vectors: Mapping[int, np.ndarray]) -> int:
        """Write task embeddings made by encoder ``version`` in one pipeline; returns how many."""
        if not vectors:
            return 0
        info = self.encoder_info(pid, version)
        if info is None:
            raise KeyError(f"encoder {version!r} of project {pid} is unknown; put_encoder first")
        dim = info.dim
        slot = 1 + 2 * dim
        pipe = self.r.pipeline(transaction=False)
        buckets: set[int] = set()
        for task_id, vec in vectors.items():
            arr = np.asarray(vec, dtype=np.float32).reshape(-1)
            if arr.shape[0] != dim:
                raise ValueError(f"task {task_id}: embedding has {arr.shape[0]} values, encoder dim is {dim}")
            if not np.isfinite(arr).all() or np.abs(arr).max(initial=0) > 65000:
                raise ValueError(f"task {task_id}: embedding values must be finite and fit float16")
            arr = arr.astype("<f2")
            b, i = divmod(int(task_id), BUCKET)
            buckets.add(b)
            pipe.setrange(self._bucket_key(pid, version, b), i * slot, b"\x01" + arr.tobytes())
        pipe.sadd(self._k(pid, "emb", version, "buckets"), *buckets)
        pipe.execute()
        return len(vectors)

    def get_embeddings(
        self, pid: int, version: str, task_ids: Iterable[int], dim: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Fetch embeddings in one round trip.

        Returns:
            ``(vectors, found)``: a ``float32`` array ``[n, dim]`` in the order of ``task_ids`` (zeros where
            missing) and a boolean mask of which tasks had an embedding.
        """
        ids = [int(t) for t in task_ids]
        if dim is None:
            info = self.encoder_info(pid, version)
            if info is None:
                return np.zeros((len(ids), 0), np.float32), np.zeros(len(ids), bool)
            dim = info.dim
        pipe = self.r.pipeline(transaction=False)
        finish = self._queue_embedding_reads(pipe, pid, version, ids, dim)
        return finish(pipe.execute())

    def current_version_and_embeddings(
        self, pid: int, encoder_version: str, task_ids: Iterable[int], dim: int
    ) -> tuple[str | None, np.ndarray, np.ndarray]:
        """The served head version and embeddings in ONE round trip (the /predict hot path).

        The caller guesses the encoder version from the head it served last; when the current head turns
        out to use another encoder, it reads again with :meth:`get_embeddings`.
        """
        ids = [int(t) for t in task_ids]
        pipe = self.r.pipeline(transaction=False)
        pipe.get(self._k(pid, "current"))
        finish = self._queue_embedding_reads(pipe, pid, encoder_version, ids, dim)
        replies = pipe.execute()
        version = replies[0].decode() if replies[0] else None
        X, found = finish(replies[1:])
        return version, X, found

    def _queue_embedding_reads(
        self, pipe: redis.client.Pipeline, pid: int, version: str, ids: list[int], dim: int
    ) -> Callable[[list], tuple[np.ndarray, np.ndarray]]:
        """Queue the reads for ``ids`` on ``pipe``; returns the function that decodes their replies.

        Buckets with many requested tasks are read whole (one GET) and decoded with numpy; a few tasks of
        a bucket are read with GETRANGE of their slots only.
        """
        slot = 1 + 2 * dim
        out = np.zeros((len(ids), dim), np.float32)
        found = np.zeros(len(ids), bool)
        if not ids:
            return lambda replies: (out, found)
        id_arr = np.asarray(ids, np.int64)
        by_bucket: dict[int, list[int]] = {}
        for pos, t in enumerate(ids):
            by_bucket.setdefault(t // BUCKET, []).append(pos)
        plan: list[tuple[np.ndarray | int, bool]] = []
        for b, positions in by_bucket.items():
            key = self._bucket_key(pid, version, b)
            if len(positions) > 8:  # cheaper to read the whole bucket than many ranges
                pipe.get(key)
                plan.append((np.asarray(positions), True))
            else:
                for pos in positions:
                    i = ids[pos] % BUCKET
                    pipe.getrange(key, i * slot, (i + 1) * slot - 1)
                    plan.append((pos, False))

        def finish(replies: list) -> tuple[np.ndarray, np.ndarray]:
            for (positions, whole), data in zip(plan, replies, strict=True):
                if not data:
                    continue
                if whole:
                    raw = np.zeros(BUCKET * slot, np.uint8)
                    raw[: len(data)] = np.frombuffer(data, np.uint8)[: BUCKET * slot]
                    rows = raw.reshape(BUCKET, slot)[id_arr[positions] % BUCKET]
                    ok = rows[:, 0] == 1
                    out[positions[ok]] = rows[ok, 1:].copy().view("<f2").astype(np.float32)
                    found[positions[ok]] = True
                elif len(data) == slot and data[0] == 1:
                    out[positions] = np.frombuffer(data, dtype="<f2", offset=1).astype(np.float32)
                    found[positions] = True
            return out, found

        return finish

    def all_embeddings(self, pid: int, version: str) -> tuple[np.ndarray, np.ndarray]:
        """Every cached embedding of an encoder version: ``(task_ids int64 [n], vectors float32 [n, dim])``.

        Used by training heads that learn from unlabeled tasks too, and by incremental bulk encoding.
        """
        info = self.encoder_info(pid, version)
        if info is None:
            return np.zeros(0, np.int64), np.zeros((0, 0), np.float32)
        dim, slot = info.dim, 1 + 2 * info.dim
        buckets = sorted(int(b) for b in self.r.smembers(self._k(pid, "emb", version, "buckets")))
        ids: list[np.ndarray] = []
        vecs: list[np.ndarray] = []
        for start in range(0, len(buckets), 512):
            chunk = buckets[start : start + 512]
            datas = self.r.mget([self._bucket_key(pid, version, b) for b in chunk])
            for b, data in zip(chunk, datas, strict=True):
                if not data:
                    continue
                n = len(data) // slot
                raw = np.frombuffer(data[: n * slot], dtype=np.uint8).reshape(n, slot)
                present = raw[:, 0] == 1
                if not present.any():
                    continue
                vals = raw[present, 1:].copy().view("<f2").astype(np.float32)
                ids.append(b * BUCKET + np.nonzero(present)[0].astype(np.int64))
                vecs.append(vals.reshape(-1, dim))
        if not ids:
            return np.zeros(0, np.int64), np.zeros((0, dim), np.float32)
        return np.concatenate(ids), np.concatenate(vecs)

    def encoded_task_ids(self, pid: int, version: str) -> set[int]:
        """Task ids that already have an embedding from ``version`` (for incremental encoding)."""
        ids, _ = self.all_embeddings(pid, version)
        return set(ids.tolist())

    def drop_embeddings(self, pid: int, version: str) -> None:
        """Delete every embedding of one encoder version (after a new encoder replaced it)."""
        set_key = self._k(pid, "emb", version, "buckets")
        buckets = list(self.r.smembers(set_key))
        for start in range(0, len(buckets), 1000):
            self.r.delete(*[self._bucket_key(pid, version, int(b)) for b in buckets[start : start + 1000]])
        self.r.delete(set_key)

    # ---- labels ----------------------------------------------------------------------------------
    def _label_keys(self, pid: int) -> list[str]:
        return [self._k(pid, "labels"), self._k(pid, "ann"), self._k(pid, "task_anns"), self._k(pid, "gen")]

    def record_annotation(self, pid: int, annotation_id: int, task_id: int, label: str | None) -> bool:
        """Record what an annotation says about its task; ``label=None`` (cancelled/empty) withdraws it.

        Returns:
            True when the task's effective label changed (and the generation was bumped).
        """
        changed = self._record(
            keys=self._label_keys(pid), args=[int(annotation_id), int(task_id), label or ""]
        )
        return bool(changed)

    def delete_annotations(self, pid: int, annotation_ids: Iterable[int]) -> int:
        """Forget annotations by id (Label Studio's delete webhook only carries ids)."""
        ids = [int(a) for a in annotation_ids]
        if not ids:
            return 0
        return int(self._delete(keys=self._label_keys(pid), args=ids))

    def labels(self, pid: int) -> dict[int, str]:
        """task id -> current label, for every labeled task."""
        return {int(k): v.decode() for k, v in self.r.hgetall(self._k(pid, "labels")).items()}

    def label_count(self, pid: int) -> int:
        """How many tasks carry a label now."""
        return int(self.r.hlen(self._k(pid, "labels")))

    def annotation_count(self, pid: int) -> int:
        """How many (not cancelled) annotations the backend has recorded."""
        return int(self.r.hlen(self._k(pid, "ann")))

    def generation(self, pid: int) -> int:
        """The label generation: bumped on every change, so a head knows what it was trained on."""
        return int(self.r.get(self._k(pid, "gen")) or 0)

    # ---- training coordination -------------------------------------------------------------------
    def mark_train_pending(self, pid: int, ttl: int) -> bool:
        """Set the 'a training job is queued' flag; True if it was not set (so the caller enqueues).

        The TTL frees a project whose queued job vanished (e.g. Redis flushed by hand).
        """
        return bool(self.r.set(self._k(pid, "train_pending"), 1, nx=True, ex=max(1, int(ttl))))

    def clear_train_pending(self, pid: int) -> None:
        """Called first by a starting training job, so labels arriving meanwhile queue one more run."""
        self.r.delete(self._k(pid, "train_pending"))

    def train_pending(self, pid: int) -> bool:
        """Whether a training job is queued for the project."""
        return bool(self.r.exists(self._k(pid, "train_pending")))

    def train_lock(self, pid: int, ttl: float) -> redis.lock.Lock:
        """The lock a training run holds, so runs of one project never overlap on several workers.

        A short ``ttl`` that the holder keeps extending: a killed run frees the project within ``ttl``.
        """
        return self.r.lock(self._k(pid, "train_lock"), timeout=ttl, sleep=0.1, thread_local=False)

    # ---- reconcile (lost webhooks, see backend.reconcile) ----------------------------------------
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
            gone: deleted annotation ids (remembered: Label Studio never reuses an id, and a crawl that
                began before the delete still lists them).
            counters: the webhook's project counters, kept for the reconcile job.

        Returns:
            ``(live, skipped)`` counts after the update.
        """
        live_key, skip_key = self._k(pid, "ann_live"), self._k(pid, "ann_skipped")
        live, skipped, gone = [int(a) for a in live], [int(a) for a in skipped], [int(a) for a in gone]
        pipe = self.r.pipeline(transaction=True)
        if live:
            pipe.sadd(live_key, *live)
            pipe.srem(skip_key, *live)
        if skipped:
            pipe.sadd(skip_key, *skipped)
            pipe.srem(live_key, *skipped)
        if gone:
            pipe.srem(live_key, *gone)
            pipe.srem(skip_key, *gone)
            pipe.sadd(self._k(pid, "ann_gone"), *gone)
        if counters:
            pipe.hset(self._k(pid, "ls_counters"), mapping={k: int(v) for k, v in counters.items()})
        pipe.scard(live_key)
        pipe.scard(skip_key)
        res = pipe.execute()
        return int(res[-2]), int(res[-1])

    def seen_annotations(self, pid: int) -> tuple[set[int], set[int]]:
        """``(live, skipped)`` annotation ids the backend knows of."""
        pipe = self.r.pipeline(transaction=False)
        pipe.smembers(self._k(pid, "ann_live"))
        pipe.smembers(self._k(pid, "ann_skipped"))
        live, skipped = pipe.execute()
        return {int(a) for a in live}, {int(a) for a in skipped}

    def deleted_annotation_ids(self, pid: int) -> set[int]:
        """Annotation ids whose deletion a webhook reported."""
        return {int(a) for a in self.r.smembers(self._k(pid, "ann_gone"))}

    def replace_seen_annotations(self, pid: int, live: Iterable[int], skipped: Iterable[int]) -> None:
        """Set the known annotation ids to what a full resync found (atomically)."""
        live_key, skip_key = self._k(pid, "ann_live"), self._k(pid, "ann_skipped")
        live, skipped = [int(a) for a in live], [int(a) for a in skipped]
        pipe = self.r.pipeline(transaction=True)
        pipe.delete(live_key, skip_key)
        for key, ids in ((live_key, live), (skip_key, skipped)):
            for start in range(0, len(ids), 10_000):
                pipe.sadd(key, *ids[start : start + 10_000])
        pipe.execute()

    def ls_counters(self, pid: int) -> dict[str, int]:
        """The project counters of the latest webhook (``total_annotations_number``, ...)."""
        return {k.decode(): int(v) for k, v in self.r.hgetall(self._k(pid, "ls_counters")).items()}

    def annotation_labels(self, pid: int) -> dict[int, tuple[int, str]]:
        """annotation id -> (task id, label) for every recorded labeled annotation."""
        out: dict[int, tuple[int, str]] = {}
        for task, raw in self.r.hgetall(self._k(pid, "task_anns")).items():
            for ann_id, label in json.loads(raw):
                out[int(ann_id)] = (int(task), str(label))
        return out

    def mark_reconcile(self, pid: int, ttl: int) -> bool:
        """Set the 'a reconcile job is queued' flag; True if it was not set (so the caller enqueues)."""
        return bool(self.r.set(self._k(pid, "reconcile"), 1, nx=True, ex=max(1, int(ttl))))

    def clear_reconcile(self, pid: int, started_at: float | None = None) -> None:
        """Clear the flag; a starting reconcile job passes its start time (the rate limit counts from it)."""
        pipe = self.r.pipeline(transaction=True)
        pipe.delete(self._k(pid, "reconcile"))
        if started_at is not None:
            pipe.set(self._k(pid, "reconcile_at"), repr(float(started_at)))
        pipe.execute()

    def last_reconcile(self, pid: int) -> float | None:
        """When the project's last reconcile job started (epoch seconds), or None."""
        raw = self.r.get(self._k(pid, "reconcile_at"))
        return float(raw) if raw else None

    # ---- heads -----------------------------------------------------------------------------------
    def publish_head(self, pid: int, blob: bytes, meta: Mapping[str, Any], generation: int) -> str | None:
        """Atomically publish a head trained at ``generation``.

        ``meta`` carries ``encoder_version`` and ``head`` (the head kind) when known.

        Returns:
            The new version, or None when the served head is at least as new: trained on newer labels, or
            on the same labels with the same encoder and head kind; or when this head's encoder has been
            replaced meanwhile (a slow, older run must never replace a newer model).
        """
        meta = dict(meta, generation=int(generation), published_at=time.time())
        res = self._publish(
            keys=[self._k(pid, "current"), self._k(pid, "heads"), self._k(pid, "history"), self._k(pid, "vseq"),
                  self._k(pid, "enc", "current")],
            args=[self._k(pid, "head") + ":", blob, json.dumps(meta), int(generation), self.keep_versions],
        )
        return res.decode() if res else None

    def current_version(self, pid: int) -> str | None:
        """The head version served now (None before the first training)."""
        v = self.r.get(self._k(pid, "current"))
        return v.decode() if v else None

    def head(self, pid: int, version: str) -> HeadRecord | None:
        """A head's weights and metadata (None if unknown or trimmed from history)."""
        pipe = self.r.pipeline(transaction=False)
        pipe.get(self._k(pid, "head", version))
        pipe.hget(self._k(pid, "heads"), version)
        blob, meta = pipe.execute()
        if blob is None or meta is None:
            return None
        return HeadRecord(version=version, blob=blob, meta=json.loads(meta))

    def versions(self, pid: int) -> list[dict]:
        """Metadata of the kept versions, newest first."""
        pipe = self.r.pipeline(transaction=False)
        pipe.lrange(self._k(pid, "history"), 0, -1)
        pipe.hgetall(self._k(pid, "heads"))
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
        if not self.r.hexists(self._k(pid, "heads"), version):
            raise KeyError(f"version {version!r} of project {pid} is not kept")
        self.r.set(self._k(pid, "current"), version)

    # ---- statistics ------------------------------------------------------------------------------
    def incr_stat(self, pid: int, field: str, amount: float = 1) -> None:
        """Add to a per-project counter (training runs, seconds, failures...)."""
        if isinstance(amount, float) and not amount.is_integer():
            self.r.hincrbyfloat(self._k(pid, "stats"), field, amount)
        else:
            self.r.hincrby(self._k(pid, "stats"), field, int(amount))

    def stats(self, pid: int) -> dict[str, float]:
        """Per-project counters."""
        return {k.decode(): float(v) for k, v in self.r.hgetall(self._k(pid, "stats")).items()}

    # ---- served predictions (live evaluation) ----------------------------------------------------
    def record_served(self, pid: int, served: Mapping[int, Mapping[str, Any]]) -> None:
        """Remember what was suggested for each task, to compare with the annotation that follows."""
        if served:
            self.r.hset(self._k(pid, "served"), mapping={int(t): json.dumps(dict(v)) for t, v in served.items()})

    def served(self, pid: int, task_id: int) -> dict | None:
        """What /predict last suggested for a task (None if nothing)."""
        raw = self.r.hget(self._k(pid, "served"), int(task_id))
        return json.loads(raw) if raw else None

    def record_outcome(self, pid: int, task_id: int, label: str, lead_time: float | None = None) -> str | None:
        """Compare a submitted label with what /predict served for the task, in one round trip.

        Returns:
            ``"accepted"`` or ``"corrected"`` (counted for the served version), or None when nothing was
            served for the task or that suggestion was already evaluated (an update of the annotation).
        """
        lead = "" if lead_time is None else repr(float(lead_time))
        res = self._outcome(keys=[self._k(pid, "served"), self._k(pid, "eval")], args=[int(task_id), label, lead])
        return res.decode() if res else None

    def _evalsha_pipeline(self, calls: list[tuple[Any, list, list]]) -> list:
        """Run registered scripts in one pipeline, in ONE round trip.

        redis-py's pipelines ask ``SCRIPT EXISTS`` before every execute when scripts are queued through
        them (a second round trip); sending EVALSHA directly and loading the scripts only after a
        NOSCRIPT reply (Redis restarted or flushed its script cache) keeps it at one.
        """
        pipe = self.r.pipeline(transaction=False)
        for script, keys, args in calls:
            pipe.evalsha(script.sha, len(keys), *keys, *args)
        replies = pipe.execute(raise_on_error=False)
        for i, (script, keys, args) in enumerate(calls):
            if isinstance(replies[i], redis.exceptions.NoScriptError):  # only this one did not run
                try:
                    replies[i] = script(keys=keys, args=args)  # loads the script and runs it
                except redis.exceptions.ResponseError as exc:
                    replies[i] = exc
        return replies

    def record_annotation_and_outcome(
        self, pid: int, annotation_id: int, task_id: int, label: str | None, lead_time: float | None = None
    ) -> tuple[bool, str | None | Exception]:
        """:meth:`record_annotation` and, for a label, :meth:`record_outcome` in ONE round trip.

        The webhook's hot path. The outcome is best effort: a failure comes back as the exception (the
        label itself is recorded or its error raised).

        Returns:
            ``(label changed, outcome or None or the exception the outcome raised)``.
        """
        calls = [(self._record, self._label_keys(pid), [int(annotation_id), int(task_id), label or ""])]
        if label:
            lead = "" if lead_time is None else repr(float(lead_time))
            calls.append((self._outcome, [self._k(pid, "served"), self._k(pid, "eval")], [int(task_id), label, lead]))
        replies = self._evalsha_pipeline(calls)
        if isinstance(replies[0], Exception):
            raise replies[0]
        outcome = replies[1] if len(replies) > 1 else None
        if isinstance(outcome, bytes):
            outcome = outcome.decode()
        return bool(replies[0]), outcome or None

    def evaluation(self, pid: int) -> dict[str, dict[str, float]]:
        """Live-evaluation counters by model version: ``{version: {"accepted": n, "accepted:lead_sum": s, ...}}``."""
        out: dict[str, dict[str, float]] = {}
        for k, v in self.r.hgetall(self._k(pid, "eval")).items():
            version, _, rest = k.decode().partition(":")
            out.setdefault(version, {})[rest] = float(v)
        return out

    def ping(self) -> bool:
        """True when Redis answers."""
        return bool(self.r.ping())
