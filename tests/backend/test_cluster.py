"""Past one Redis: project data on a real 3-master Redis Cluster, RQ's queues on their own plain Redis.

The cluster is started by the ``redis_cluster`` fixture (``backend.processes.start_redis_cluster``); the
suite's plain ``redis_server`` is the queue Redis. Projects are chosen so that each master holds one.
"""

from __future__ import annotations

import signal
from pathlib import Path

import numpy as np
import pytest
import redis
from redis.cluster import RedisCluster
from rq import Queue, SimpleWorker

from backend import processes
from backend.app import create_app
from backend.config import Config
from backend.projects import Projects
from backend.store import Store, keys
from backend.store.connection import connect, is_cluster
from tests.conftest import CONFIG_XML, clustered_embeddings, start_test_worker, wait_for

LS_PROJECT_SUFFIX = ".1795682067"  # what Label Studio appends to the project id in /predict


def one_project_per_shard(client: RedisCluster) -> list[int]:
    """The smallest project ids whose hash tags land on different masters, one per master."""
    chosen: dict[str, int] = {}
    for pid in range(1, 1000):
        chosen.setdefault(client.get_node_from_key(keys.project_prefix(pid)).name, pid)
        if len(chosen) == len(client.get_primaries()):
            return sorted(chosen.values())
    raise AssertionError("no project id for some master")


def seed(store: Store, pid: int, n: int = 60) -> dict:
    """What bulk encoding leaves: the label config, an encoder, an embedding per task (synthetic vectors)."""
    ids, X, y = clustered_embeddings(n, dim=8, seed=pid)
    Projects(store).configure(pid, CONFIG_XML)
    store.put_encoder(pid, "enc-test", b"", {"dim": 8, "objective": "test"})
    assert store.put_embeddings(pid, "enc-test", dict(zip(ids, X, strict=True))) == n
    return {"ids": ids, "y": y}


def label(client, annotation_event, pid: int, seeded: dict, count: int) -> None:
    for i in range(count):
        body = annotation_event(pid * 1000 + i, seeded["ids"][i], seeded["y"][i], pid=pid)
        resp = client.post("/webhook", json=body)
        assert resp.status_code == 200, resp.json


def predicted(client, ls_payload, pid: int, task_ids: list[int]) -> list[dict]:
    body = ls_payload("predict_request_single_task")
    template = dict(body["tasks"][0], project=pid)
    body.update(project=f"{pid}{LS_PROJECT_SUFFIX}", tasks=[dict(template, id=t) for t in task_ids])
    resp = client.post("/predict", json=body)
    assert resp.status_code == 200, resp.json
    return resp.json["results"]


def primaries_keys(client: RedisCluster, pattern: str) -> list[bytes]:
    return list(client.scan_iter(match=pattern, target_nodes=client.PRIMARIES))


def test_projects_on_every_shard_are_encoded_labeled_trained_and_predicted(
    redis_cluster: processes.RedisCluster, redis_server: str, redis_client: redis.Redis, annotation_event,
    ls_payload, tmp_path: Path,
):
    config = Config(redis_url=redis_cluster.url, queue_redis_url=redis_server, log_level="WARNING")
    app = create_app(config)
    store: Store = app.extensions["dalt"].store
    assert is_cluster(store.r)
    store.r.flushall(target_nodes=store.r.PRIMARIES)
    client = app.test_client()
    pids = one_project_per_shard(store.r)
    assert len(pids) == 3
    seeded = {pid: seed(store, pid) for pid in pids}
    for pid in pids:
        label(client, annotation_event, pid, seeded[pid], 30)

    # The training jobs wait on the queue Redis; the cluster holds no RQ key, the queue Redis no project key.
    assert Queue(config.queue_name, connection=redis_client).count == len(pids)
    assert primaries_keys(store.r, "rq:*") == []
    assert redis_client.keys("dalt:*") == []

    worker = start_test_worker(redis_cluster.url, tmp_path / "worker.log", DALT_QUEUE_REDIS_URL=redis_server)
    try:
        wait_for(lambda: all(store.current_version(pid) for pid in pids), timeout=180,
                 what="a published head for every project")
    except TimeoutError as exc:
        raise AssertionError(f"{exc}\n{worker.tail()}") from None
    finally:
        processes.stop_all([worker])

    for pid in pids:
        version = store.current_version(pid)
        rest = seeded[pid]["ids"][30:]
        results = predicted(client, ls_payload, pid, rest)
        assert {r["model_version"] for r in results} == {version}
        labels = [r["result"][0]["value"]["choices"][0] for r in results]
        assert np.mean(np.array(labels) == np.array(seeded[pid]["y"][30:])) > 0.9
    assert client.get("/metrics").status_code == 200  # one pipeline over every project and the global keys
    assert sorted(store.projects()) == pids

    # Each project's keys are on the master that owns its slot, and on no other: the shards split the data.
    nodes = {s.port: redis.Redis(port=s.port) for s in redis_cluster.servers}
    owners = set()
    for pid in pids:
        slot = store.r.cluster_keyslot(keys.meta(pid))  # CLUSTER KEYSLOT, asked of the server
        holders = {port for port, node in nodes.items() if node.execute_command("CLUSTER COUNTKEYSINSLOT", slot)}
        assert holders == {store.r.get_node_from_key(keys.meta(pid)).port}
        owner = nodes[holders.pop()]
        in_slot = {k.decode() if isinstance(k, bytes) else k
                   for k in owner.execute_command("CLUSTER GETKEYSINSLOT", slot, 1000)}
        assert {keys.meta(pid), keys.current(pid), keys.labels(pid)} <= in_slot
        owners.add(owner.connection_pool.connection_kwargs["port"])
    assert owners == set(nodes)
    for node in nodes.values():
        node.close()


def test_jobs_are_queued_on_the_queue_redis_and_run_on_the_data_redis(
    redis_server: str, store: Store, seeded_project, annotation_event, tmp_path: Path, monkeypatch
):
    queue_server = processes.start_redis(tmp_path / "queue-redis")
    try:
        config = Config(redis_url=redis_server, queue_redis_url=queue_server.url, log_level="WARNING")
        client = create_app(config, store=store).test_client()
        seeded = seeded_project(n=30)
        label(client, annotation_event, 1, {"ids": seeded["ids"], "y": seeded["y"]}, 10)
        queued = redis.Redis.from_url(queue_server.url)
        assert Queue(config.queue_name, connection=queued).count == 1
        assert store.r.keys("rq:*") == [] and queued.keys("dalt:*") == []

        # The job runs from the queue connection and opens the store from REDIS_URL, as a worker's would.
        monkeypatch.setenv("REDIS_URL", redis_server)
        monkeypatch.setenv("DALT_QUEUE_REDIS_URL", queue_server.url)
        SimpleWorker([Queue(config.queue_name, connection=queued)], connection=queued).work(burst=True)
        assert store.current_version(1) == "v1"
        assert store.r.keys("rq:*") == [] and queued.keys("dalt:*") == []
        queued.close()
    finally:
        queue_server.stop()


def test_scripts_come_back_on_every_shard_after_their_caches_are_flushed(
    cluster_store: Store, redis_cluster: processes.RedisCluster
):
    pids = one_project_per_shard(cluster_store.r)
    for pid in pids:
        assert cluster_store.record_annotation_and_outcome(pid, 1, 1, "a") == (True, None)
    cluster_store.r.script_flush()  # every node, as after a restart of each
    sha = cluster_store._scripts["record_annotation"].sha
    for server in redis_cluster.servers:
        node = redis.Redis(port=server.port)
        assert node.script_exists(sha) == [False]
        node.close()
    batch = cluster_store.batch()  # one batch whose scripts go to three nodes, each answering NOSCRIPT
    replies = [cluster_store.record_annotation_in(batch, pid, 2, 2, "b") for pid in pids]
    batch.execute()
    assert all(r.error is None for r in replies)
    assert all(cluster_store.labels(pid) == {1: "a", 2: "b"} for pid in pids)


def test_store_transactions_locks_and_purge_stay_within_a_project_on_a_cluster(cluster_store: Store):
    a, b, _ = one_project_per_shard(cluster_store.r)
    for pid in (a, b):
        seed(cluster_store, pid, n=20)
        cluster_store.record_annotation_and_outcome(pid, 7, 3, "one")
    assert cluster_store.current_encoder(a).dim == 8 and sorted(cluster_store.projects()) == [a, b]
    cluster_store.replace_seen_annotations(a, live=[1, 2, 3], skipped=[4])
    assert cluster_store.seen_annotations(a) == ({1, 2, 3}, {4})
    assert cluster_store.mark_reconcile(a, ttl=60)
    cluster_store.clear_reconcile(a, started_at=123.0)
    assert cluster_store.last_reconcile(a) == 123.0
    lock = cluster_store.train_lock(a, ttl=5)
    assert lock.acquire(blocking=False) and not cluster_store.train_lock(a, ttl=5).acquire(blocking=False)
    lock.release()
    assert cluster_store.forget_tasks(a, [3]).labels == 1
    assert cluster_store.encoded_count(a, "enc-test", 8) == 19  # the embedding count follows, in the slot
    cluster_store.r.delete(keys.embedding_count(a, "enc-test"))  # counted once, building undeclared bucket keys
    assert cluster_store.encoded_count(a, "enc-test", 8) == 19
    capped = Store(cluster_store.r, keep_versions=1)  # the publish script writes and trims undeclared head keys
    meta = {"encoder_version": "enc-test", "head": "logreg"}
    assert [capped.publish_head(a, b"w%d" % g, meta, generation=g) for g in (1, 2)] == ["v1", "v2"]
    assert capped.head(a, "v1") is None and capped.head(a, "v2").blob == b"w2"

    found = cluster_store.project_keys(a)
    assert found and all(k.startswith(keys.project_prefix(a) + ":") for k in found)
    assert cluster_store.purge_project(a) == len(found)
    assert cluster_store.project_keys(a) == [] and cluster_store.projects() == [b]
    assert cluster_store.labels(b) == {3: "one"} and cluster_store.current_encoder(b) is not None


def test_a_cluster_url_opens_a_cluster_client_and_a_plain_url_a_plain_one(redis_cluster, redis_server: str):
    cluster = connect(redis_cluster.url)
    assert isinstance(cluster, RedisCluster) and cluster.ping()
    cluster.close()
    plain = connect(redis_server)
    assert type(plain) is redis.Redis and not is_cluster(plain)
    plain.close()
    with pytest.raises(ValueError, match="database 0 only"):
        connect("redis+cluster://127.0.0.1:7000/2")


def test_the_queue_redis_defaults_to_redis_url_and_is_never_a_cluster():
    assert Config(redis_url="redis://h:1/0").queue_url == "redis://h:1/0"
    env = {"REDIS_URL": "redis+cluster://h:7000", "DALT_QUEUE_REDIS_URL": "redis://q:6380/0"}
    assert Config.from_env(env).queue_url == "redis://q:6380/0"
    with pytest.raises(ValueError, match="DALT_QUEUE_REDIS_URL"):
        _ = Config.from_env({"REDIS_URL": "redis+cluster://h:7000"}).queue_url
    with pytest.raises(ValueError, match="DALT_QUEUE_REDIS_URL names a Redis Cluster"):
        _ = Config(queue_redis_url="redis+cluster://h:7000").queue_url


def test_dalt_run_refuses_a_cluster_without_a_queue_redis_before_starting_anything(tmp_path: Path, monkeypatch, capsys):
    monkeypatch.delenv("DALT_QUEUE_REDIS_URL", raising=False)
    monkeypatch.setattr(signal, "signal", lambda *args: None)  # keep pytest's own Ctrl-C and SIGTERM handlers
    started = []
    monkeypatch.setattr(processes, "start_gunicorn", lambda *a, **k: started.append("gunicorn"))
    assert processes.run_backend(redis_url="redis+cluster://127.0.0.1:7000", var_dir=tmp_path) == 1
    assert started == [] and "set DALT_QUEUE_REDIS_URL" in capsys.readouterr().err


def test_processes_never_inherit_a_queue_redis_they_were_not_given(monkeypatch):
    monkeypatch.setenv("DALT_QUEUE_REDIS_URL", "redis://127.0.0.1:6379/0")  # e.g. a developer's shell
    assert "DALT_QUEUE_REDIS_URL" not in processes.service_env("redis://127.0.0.1:7000/0")
    env = processes.service_env("redis://127.0.0.1:7000/0", DALT_QUEUE_REDIS_URL="redis://127.0.0.1:7001/0")
    assert Config.from_env(env).queue_url == "redis://127.0.0.1:7001/0"
