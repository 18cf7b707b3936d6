"""Redis key names: the ONE place that spells them, and the Redis layout of DALT.

Every key of a project starts with ``dalt:{p<ID>}``; the braces are a Redis Cluster *hash tag*, so all of
a project's keys live on one cluster slot (the Lua scripts in ``lua/`` touch several of them at once,
which a cluster only allows within one slot) while different projects spread over shards. Nothing is
found by scanning on a request path (no ``KEYS``): ``dalt:projects`` lists the projects, ``dalt:active``
ranks them by when Label Studio last talked about them. Only ``dalt purge`` scans, one project's prefix.

Layout (``P`` = ``dalt:{p<ID>}``; values JSON-encoded unless said otherwise):

=============================  ======  ==============================================================
key                            type    what it holds (who writes it)
=============================  ======  ==============================================================
``dalt:projects``              set     project ids with a label config (reports and reconcile iterate it)
``dalt:active``                zset    project id -> when a /setup or webhook last carried its config
                                       (``/``, ``/versions`` and ``/metrics`` list the newest few)
``P:meta``                     hash    project settings, each value JSON: ``label_config``, ``classes``,
                                       ``from_name``, ``to_name``, ``image_key`` (parsed label config),
                                       ``min_annotations``, ``title`` (webhooks), ``setup_access``
                                       (``/setup``'s ``{hostname, access_token}``, only without
                                       ``LABEL_STUDIO_URL``)
``P:enc:current``              string  the encoder version new embeddings must be made with
``P:enc:meta``                 hash    encoder version -> JSON meta (``dim``, objective, image size, ...)
``P:enc:blob:<ver>``           string  serialized encoder weights (``encoder.artifact``)
``P:emb:<ver>:<bucket>``       string  embeddings of task ids ``bucket*256 .. bucket*256+255`` made by
                                       encoder ``<ver>``: 256 slots of ``1 + 2*dim`` bytes, a flag byte
                                       (1 = present) then float16 little-endian values (``codec``)
``P:emb:<ver>:buckets``        set     bucket numbers that exist for encoder ``<ver>``
``P:emb:<ver>:count``          string  how many tasks have an embedding from ``<ver>``, kept by the
                                       scripts that write and clear slots (the regrow check reads it)
``P:knn:<ver>:<bucket>``       string  the neighbour graph of encoder ``<ver>`` (``backend.graph``): 256 slots
                                       of ``1 + 6*K`` bytes (K = 10): a flag byte, K neighbour task ids
                                       (int32 LE, -1: none), K squared distances (float16), nearest first
``P:knn:<ver>:buckets``        set     graph bucket numbers that exist for encoder ``<ver>``
``P:knn:<ver>:meta``           string  JSON: ``k``, the standardizer (``mean``, ``scale``), ``tasks``,
                                       build and last-add times
``P:spread:<snap>:<bucket>``   string  spread snapshot ``<snap>``: every graph task's label-spreading
                                       distribution, slots like embeddings (flag byte, then one float16
                                       per class); written once per snapshot, not per head version
``P:spreads``                  hash    snapshot id -> JSON meta (encoder version, classes, label
                                       generation, labels, buckets, sweeps); the newest two are kept
``P:spread:seq``               string  the last snapshot id handed out
``P:graph_pending``            string  set while a graph update job is queued (coalescing flag, TTL)
``P:spread_pending``           string  set while a graph-lane (propagation) job is queued (flag, TTL)
``P:graph_lock``               string  held by the running graph update or propagation (redis-py lock)
``P:labels``                   hash    task id -> the label the head trains on (latest annotation wins)
``P:ann``                      hash    annotation id -> task id (deletes arrive with annotation ids only)
``P:task_anns``                hash    task id -> JSON ``[[annotation id, label], ...]``, oldest first
                                       (several annotators, updates, fallback after a delete)
``P:gen``                      string  label generation, bumped on every change of ``P:labels``
``P:touch_seq``                string  counter of annotation changes made by webhooks
``P:touched``                  hash    annotation id -> ``P:touch_seq`` value of the last webhook that
                                       changed it (a reconcile never overwrites a newer change)
``P:train_pending``            string  set while a training job is queued (coalescing flag, TTL)
``P:train_lock``               string  held by the running training job (redis-py lock, short TTL)
``P:vseq``                     string  the last head version number handed out
``P:current``                  string  the head version ``/setup`` and ``/predict`` serve (``"v7"``)
``P:head:<ver>``               string  serialized head (``.npz``, ``backend.heads``)
``P:heads``                    hash    head version -> JSON meta (generation, labels, classes, head
                                       kind, encoder version, times)
``P:history``                  list    kept head versions, newest first, capped (older heads deleted)
``P:stats``                    hash    counters: ``train_runs``, ``train_seconds``, ``train_failures``,
                                       ``train_published``, ``train_stale``, ``train_skipped``
``P:served``                   hash    task id -> JSON ``{version, label, score, bin}`` last suggested by
                                       ``/predict`` (+ ``outcome`` once an annotation was compared)
``P:eval``                     hash    ``<ver>:<accepted|corrected>`` -> count, and
                                       ``<ver>:<outcome>:lead_sum`` / ``:lead_n`` (annotation lead times),
                                       ``<ver>:bin:<edge>:<outcome>`` / ``:score_sum`` (per served-score
                                       bin), ``<ver>:bulk`` (bulk-accepted, not evidence)
``P:bulk``                     hash    task id -> label bulk-accepted from a prediction ("Create
                                       Annotations From Predictions"), until a person labels the task
``P:audit``                    hash    task id -> ``pending|confirmed|corrected``: the audit sample of the
                                       last ``dalt accept`` run and what a person's label said
``P:accept``                   string  JSON of the last ``dalt accept`` run (target, threshold, version,
                                       tasks, expected wrong labels)
``P:ann_live``                 set     annotation ids that exist in Label Studio, not cancelled
``P:ann_skipped``              set     annotation ids that exist in Label Studio, cancelled
``P:ls_counters``              hash    Label Studio's project counters from the latest webhook (ints)
``P:reconcile``                string  set while a reconcile job is queued (coalescing flag, TTL)
``P:reconcile_at``             string  when the last reconcile job started (epoch seconds)
=============================  ======  ==============================================================

Embeddings are packed into fixed slots of 256-task buckets instead of one key or hash field per task:
Redis spends 50-90 bytes per key or field, more than a 32-dim float16 vector itself.
"""

from __future__ import annotations

PROJECTS = "dalt:projects"
ACTIVE = "dalt:active"


def project_prefix(pid: int) -> str:
    """``dalt:{p<ID>}``: the prefix (and cluster hash tag) of every key of project ``pid``."""
    return f"dalt:{{p{int(pid)}}}"


def _k(pid: int, *parts: object) -> str:
    return ":".join([project_prefix(pid), *map(str, parts)])


# ---- projects and encoders ----------------------------------------------------------------------
def meta(pid: int) -> str:
    return _k(pid, "meta")


def encoder_current(pid: int) -> str:
    return _k(pid, "enc", "current")


def encoder_meta(pid: int) -> str:
    return _k(pid, "enc", "meta")


def encoder_blob(pid: int, version: str) -> str:
    return _k(pid, "enc", "blob", version)


# ---- embeddings ----------------------------------------------------------------------------------
def embedding_bucket_prefix(pid: int, version: str) -> str:
    """``P:emb:<ver>:``; a bucket number completes it (the counting script builds bucket keys with it)."""
    return _k(pid, "emb", version) + ":"


def embedding_bucket(pid: int, version: str, bucket: int) -> str:
    return embedding_bucket_prefix(pid, version) + str(int(bucket))


def embedding_buckets(pid: int, version: str) -> str:
    return _k(pid, "emb", version, "buckets")


def embedding_count(pid: int, version: str) -> str:
    return _k(pid, "emb", version, "count")


# ---- the neighbour graph and spread snapshots (backend.graph, backend.graphlane) -----------------
def graph_bucket(pid: int, version: str, bucket: int) -> str:
    return _k(pid, "knn", version, int(bucket))


def graph_buckets(pid: int, version: str) -> str:
    return _k(pid, "knn", version, "buckets")


def graph_meta(pid: int, version: str) -> str:
    return _k(pid, "knn", version, "meta")


def spread_bucket(pid: int, snapshot: int, bucket: int) -> str:
    return _k(pid, "spread", int(snapshot), int(bucket))


def spreads(pid: int) -> str:
    return _k(pid, "spreads")


def spread_seq(pid: int) -> str:
    return _k(pid, "spread", "seq")


def graph_pending(pid: int) -> str:
    return _k(pid, "graph_pending")


def spread_pending(pid: int) -> str:
    return _k(pid, "spread_pending")


def graph_lock(pid: int) -> str:
    return _k(pid, "graph_lock")


# ---- labels (the annotation ledger) --------------------------------------------------------------
def labels(pid: int) -> str:
    return _k(pid, "labels")


def annotations(pid: int) -> str:
    return _k(pid, "ann")


def task_annotations(pid: int) -> str:
    return _k(pid, "task_anns")


def generation(pid: int) -> str:
    return _k(pid, "gen")


def touch_seq(pid: int) -> str:
    return _k(pid, "touch_seq")


def touched(pid: int) -> str:
    return _k(pid, "touched")


# ---- training coordination -----------------------------------------------------------------------
def train_pending(pid: int) -> str:
    return _k(pid, "train_pending")


def train_lock(pid: int) -> str:
    return _k(pid, "train_lock")


def stats(pid: int) -> str:
    return _k(pid, "stats")


# ---- heads and versions --------------------------------------------------------------------------
def version_seq(pid: int) -> str:
    return _k(pid, "vseq")


def current(pid: int) -> str:
    return _k(pid, "current")


def head_prefix(pid: int) -> str:
    """``P:head:``; the publish script appends the version it hands out."""
    return _k(pid, "head") + ":"


def head(pid: int, version: str) -> str:
    return head_prefix(pid) + version


def heads(pid: int) -> str:
    return _k(pid, "heads")


def history(pid: int) -> str:
    return _k(pid, "history")


# ---- live evaluation -----------------------------------------------------------------------------
def served(pid: int) -> str:
    return _k(pid, "served")


def evaluation(pid: int) -> str:
    return _k(pid, "eval")


# ---- bulk accept --------------------------------------------------------------------------------
def bulk_tasks(pid: int) -> str:
    return _k(pid, "bulk")


def audit(pid: int) -> str:
    return _k(pid, "audit")


def accept_run(pid: int) -> str:
    return _k(pid, "accept")


# ---- reconcile (lost webhooks) -------------------------------------------------------------------
def annotations_live(pid: int) -> str:
    return _k(pid, "ann_live")


def annotations_skipped(pid: int) -> str:
    return _k(pid, "ann_skipped")


def ls_counters(pid: int) -> str:
    return _k(pid, "ls_counters")


def reconcile_pending(pid: int) -> str:
    return _k(pid, "reconcile")


def reconcile_at(pid: int) -> str:
    return _k(pid, "reconcile_at")


def label_keys(pid: int) -> list[str]:
    """The keys the label scripts (record / delete annotations) take, in their ``KEYS`` order."""
    return [labels(pid), annotations(pid), task_annotations(pid), generation(pid), touch_seq(pid), touched(pid)]
