"""What one request may cost: ids within int64, tasks and JSON values per request, job data per webhook,
per-process caches in bytes, lead times, and a Redis that refuses writes (full, or a read-only replica)."""

from __future__ import annotations

import json
import math
import threading
import tracemalloc
from dataclasses import replace

import pytest
import redis
import torch
from rq import Queue

from backend import encoding, labelconfig, processes
from backend.app import create_app
from backend.config import Config
from backend.predict import HeadCache
from backend.store import Store
from backend.training import train_project
from encoder.artifact import EncoderArtifact
from encoder.model import ConvEncoder
from tests.conftest import CONFIG_XML, load_fixture

WEBHOOK = load_fixture("webhook_annotation_created")["body"]
PREDICT = load_fixture("predict_request")["body"]
TASKS_CREATED = load_fixture("webhook_tasks_created")["body"]
SETUP = load_fixture("setup")["body"]
BIG = 2**63  # one past int64


def snapshot(store: Store) -> dict:
    return {p: (store.labels(p), store.generation(p), store.current_version(p)) for p in store.projects()}


@pytest.fixture
def trained(client, annotation_event, seeded_project, store):
    """Project 1: 20 labels and a head."""
    seeded = seeded_project(n=40)
    for i in range(20):
        assert client.post("/webhook", json=annotation_event(i + 1, i + 1, seeded["y"][i])).status_code == 200
    assert train_project(store, Config(), 1).status == "published"
    return seeded


def test_ids_outside_int64_get_a_400_and_never_reach_redis(client, store, trained, annotation_event, ls_payload):
    before = snapshot(store)
    for body in (annotation_event(100, BIG, "one"), annotation_event(BIG, 5, "one"),
                 dict(ls_payload("webhook_annotation_deleted"), annotations=[{"id": BIG}]),
                 dict(TASKS_CREATED, tasks=[{"id": BIG, "data": {"image": "/data/upload/1/x.png"}}])):
        resp = client.post("/webhook", json=body)
        assert resp.status_code == 400 and "2**63" in resp.json["error"], (body["action"], resp.json)
    resp = client.post("/predict", json=dict(PREDICT, tasks=[{"id": BIG, "data": {}}]))
    assert resp.status_code == 400 and "2**63" in resp.json["error"]
    assert snapshot(store) == before
    assert train_project(store, Config(), 1).status in ("stale", "published")  # training still works


def test_predict_refuses_more_tasks_than_allowed_before_doing_any_work(config, store, trained):
    """A 1 MB list of non-objects (500,000 tasks) costs the parse, never 500,000 results: 413 at once."""
    client = create_app(config, store=store).test_client()
    body = ('{"project": "1.1", "tasks": [' + ",".join(["0"] * 500_000) + "]}").encode()
    tracemalloc.start()
    resp = client.post("/predict", data=body, content_type="application/json")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert resp.status_code == 413 and "DALT_PREDICT_MAX_TASKS" in resp.json["error"]
    assert peak < 40 * 2**20, f"peak {peak / 2**20:.0f} MiB for a {len(body) / 2**20:.1f} MiB body"
    small = create_app(replace(config, predict_max_tasks=3), store=store).test_client()
    tasks = [{"id": i, "data": {}} for i in range(4)]
    assert small.post("/predict", json=dict(PREDICT, tasks=tasks[:3])).status_code == 200
    assert small.post("/predict", json=dict(PREDICT, tasks=tasks)).status_code == 413


def test_json_values_are_counted_on_the_raw_body_before_it_is_parsed(config, store):
    """[{}, {}, ...] costs ~64 bytes of Python objects per 3 bytes of body: refused by count, never parsed."""
    client = create_app(replace(config, max_json_values=100_000), store=store).test_client()
    body = b'{"action": "X", "project": 1, "x": [' + b",".join([b"{}"] * 200_000) + b"]}"
    tracemalloc.start()
    resp = client.post("/webhook", data=body, content_type="application/json")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert resp.status_code == 413 and "DALT_MAX_JSON_VALUES" in resp.json["error"]
    assert peak < 3 * len(body), f"peak {peak} for a body of {len(body)} bytes"


def test_tasks_created_keeps_only_each_tasks_image_reference(client, store, seeded_project):
    """Task data nested 900 deep (RQ could not serialize the job: 500) or padded with megabytes never reaches
    the job: it holds the id and the image reference only."""
    seeded_project(n=10)
    tasks = [{"id": 1, "data": {"image": "/data/upload/1/a.png", "deep": "DEEP"}},
             {"id": 2, "data": {"image": "/data/upload/1/b.png", "padding": "y" * 1_000_000}},
             {"id": 3, "data": {"image": "h" * 5000}}]
    body = json.dumps(dict(TASKS_CREATED, tasks=tasks)).replace('"DEEP"', "[" * 900 + '"x"' + "]" * 900)
    resp = client.post("/webhook", data=body, content_type="application/json")
    assert resp.status_code == 200, resp.json
    (job,) = Queue("dalt", connection=store.r).jobs
    assert job.args[1] == [{"id": 1, "data": {"image": "/data/upload/1/a.png"}},
                           {"id": 2, "data": {"image": "/data/upload/1/b.png"}}, {"id": 3, "data": {}}]
    assert len(job.data) < 2000


def test_a_webhook_naming_too_many_tasks_gets_413_and_queues_nothing(config, store, seeded_project):
    seeded_project(n=10)
    client = create_app(replace(config, webhook_max_tasks=5), store=store).test_client()
    tasks = [{"id": i, "data": {"image": f"/data/upload/1/{i}.png"}} for i in range(6)]
    for action in ("TASKS_CREATED", "TASKS_DELETED"):
        resp = client.post("/webhook", json=dict(TASKS_CREATED, action=action, tasks=tasks))
        assert resp.status_code == 413 and "DALT_WEBHOOK_MAX_TASKS" in resp.json["error"]
    assert Queue("dalt", connection=store.r).count == 0 and len(store.labels(1)) == 0


def test_lead_times_are_clamped_so_their_sums_stay_finite(client, store, seeded_project, annotation_event):
    seeded_project(n=10)
    for i in (1, 2):
        store.record_served(1, {i: {"version": "v1", "label": "one", "score": 0.9}})
        body = annotation_event(i, i, "one")
        body["annotation"]["lead_time"] = 1.7e308
        assert client.post("/webhook", json=body).status_code == 200
    sums = store.evaluation(1)["v1"]
    assert sums["accepted"] == 2 and math.isfinite(sums["accepted:lead_sum"])
    assert sums["accepted:lead_sum"] == 2 * 24 * 3600


@pytest.fixture
def refusing_redis(tmp_path):
    """Two private servers: one full (maxmemory reached, noeviction) and a read-only replica of it."""
    full = processes.start_redis(tmp_path / "full", args=["--maxmemory", "4mb", "--maxmemory-policy", "noeviction"])
    replica = processes.start_redis(tmp_path / "replica", args=["--replicaof", "127.0.0.1", str(full.port)])
    yield full, replica
    replica.stop()
    full.stop()


def test_a_full_or_read_only_redis_answers_503_with_retry_after(config, refusing_redis, annotation_event):
    full, replica = refusing_redis
    r = redis.Redis.from_url(full.url)
    Store(r).save_settings(1, {"label_config": CONFIG_XML}, create=True)
    try:
        for i in range(10_000):
            r.set(f"junk:{i}", b"x" * 4096)
    except redis.exceptions.OutOfMemoryError:
        pass
    processes.wait_for(lambda: redis.Redis.from_url(replica.url).info("replication").get("master_link_status") == "up",
                       30, "replica in sync")
    for server in (full, replica):
        client = create_app(replace(config, redis_url=server.url), store=Store.from_url(server.url)).test_client()
        for path, body in (("/webhook", annotation_event(1, 1, "one")), ("/setup", SETUP)):
            resp = client.post(path, json=body)
            assert resp.status_code == 503 and resp.headers["Retry-After"], (server.url, path, resp.json)
            assert "refuses writes" in resp.json["error"]


def test_label_configs_are_cached_within_a_byte_budget(config, store):
    """Ten distinct 3 MB configs: the cache keeps what fits its budget, not ten times 3 MB."""
    client = create_app(replace(config, config_cache_bytes=8 * 2**20), store=store).test_client()
    labelconfig.config_cache.clear()
    for n in range(10):
        xml = CONFIG_XML.replace("<View>", f"<View><!-- {n} {'x' * 3_000_000} -->")
        assert len(xml) > 3_000_000
        assert client.post("/setup", json=dict(SETUP, project=f"{n + 1}.1", schema=xml)).status_code == 200
    assert labelconfig.config_cache.total_bytes <= 8 * 2**20 and len(labelconfig.config_cache) <= 2
    labelconfig.config_cache.clear()


def test_download_clients_are_bounded_and_evicted_ones_closed(config, store, monkeypatch):
    """25 projects with 25 different /setup hostnames: at most budget / cost fetchers live; the others were
    closed (their connection pools and download threads released)."""
    monkeypatch.setattr(encoding, "_fetchers", None)
    monkeypatch.setattr(encoding, "_artifacts", None)
    cfg = replace(config, allow_private_networks=True, fetcher_cache_bytes=4 * encoding.FETCHER_COST)
    client = create_app(cfg, store=store).test_client()
    torch.manual_seed(0)
    art = EncoderArtifact(ConvEncoder(1, 28, 8), objective="autoencoder")
    threads_before = threading.active_count()
    closed = []
    real_close = encoding.ImageFetcher.close
    monkeypatch.setattr(encoding.ImageFetcher, "close", lambda self: closed.append(self) or real_close(self))
    for pid in range(1, 26):
        body = dict(SETUP, project=f"{pid}.1", hostname=f"http://127.0.0.1:9/{pid}", access_token=f"t{pid}")
        assert client.post("/setup", json=body).status_code == 200
        store.put_encoder(pid, art.version, art.to_bytes(), art.meta())
        tasks = [{"id": i, "data": {"image": f"/data/upload/{pid}/{i}.png"}} for i in range(2)]
        encoding.encode_missing(store, cfg, pid, tasks)  # both downloads fail (nothing listens on port 9)
    _, fetchers = encoding._caches(cfg)
    assert len(fetchers) == 4 and len(closed) == 21
    assert all(f._pool is None for f in closed)
    assert threading.active_count() - threads_before <= 4 * 16 + 2


def test_encoders_are_cached_within_a_byte_budget(config, store, monkeypatch):
    monkeypatch.setattr(encoding, "_fetchers", None)
    monkeypatch.setattr(encoding, "_artifacts", None)
    arts = []
    for seed in range(4):  # four versions of one size
        torch.manual_seed(seed)
        arts.append(EncoderArtifact(ConvEncoder(1, 28, 8), objective="autoencoder"))
    budget = 2 * len(arts[0].to_bytes()) * 2 + 1000  # two encoders, as the cache counts them (2x the blob)
    cfg = replace(config, encoder_cache_bytes=budget)
    for pid, art in enumerate(arts, start=1):
        store.put_encoder(pid, art.version, art.to_bytes(), art.meta())
        assert encoding.load_artifact(store, pid, art.version, cfg) is not None
    artifacts, _ = encoding._caches(cfg)
    assert artifacts.total_bytes <= budget and len(artifacts) == 2


def test_heads_are_cached_within_a_byte_budget(store, seeded_project, annotation_event, client):
    seeded_project(n=30)
    for i in range(12):
        client.post("/webhook", json=annotation_event(i + 1, i + 1, ["zero", "one", "two"][i % 3]))
        train_project(store, Config(head="logreg"), 1)
    versions = [v["version"] for v in store.versions(1)]
    one = HeadCache()
    one.get(store, 1, versions[0])
    budget = int(one.total_bytes * 3.5)
    cache = HeadCache(budget)
    for v in versions:
        assert cache.get(store, 1, v) is not None  # served even when it does not stay cached
    assert cache.total_bytes <= budget and len(cache._heads) == 3
    assert json.dumps(cache.encoder_hint(1))  # the per-project hints are bounded too (a small LRU)
