"""A Redis restart with AOF on, under a running gunicorn and RQ worker.

Data (embeddings, labels, heads) survives; requests during the outage get a quick 503 with Retry-After
(never a hang: each is bounded by the client's timeout here); both processes reconnect by themselves.
"""

from __future__ import annotations

import time

import numpy as np
import requests

from backend.projects import Projects
from backend.store import Store
from tests.conftest import CONFIG_XML, clustered_embeddings, load_fixture, training_settled, wait_for
from tests.reliability.conftest import post_all

OUTAGE_CALLS = [
    ("GET", "/health", None),
    ("POST", "/setup", load_fixture("setup")["body"]),
    ("POST", "/predict", load_fixture("predict_request")["body"]),
    ("POST", "/webhook", load_fixture("webhook_annotation_created")["body"]),
    ("GET", "/versions", None),
]


def snapshot(store: Store, pid: int) -> dict:
    ids, vecs = store.all_embeddings(pid, "enc-test")
    version = store.current_version(pid)
    return {
        "labels": store.labels(pid),
        "generation": store.generation(pid),
        "embeddings": (ids.tolist(), vecs.tobytes()),
        "version": version,
        "head": store.head(pid, version).blob if version else None,
        "history": [v["version"] for v in store.versions(pid)],
    }


def test_redis_restart_keeps_data_and_everything_reconnects(aof_redis, procs, annotation_event):
    store = Store.from_url(aof_redis.url)
    ids, X, y = clustered_embeddings(80)
    Projects(store).configure(1, CONFIG_XML)
    store.put_encoder(1, "enc-test", b"", {"dim": X.shape[1], "objective": "test"})
    store.put_embeddings(1, "enc-test", dict(zip(ids, X, strict=True)))
    web = procs("gunicorn", aof_redis.url, workers=2)
    procs("worker", aof_redis.url)
    replies = post_all(web.url + "/webhook", [annotation_event(i, ids[i], y[i]) for i in range(40)], threads=4)
    assert {r.status_code for r in replies} == {200}
    wait_for(lambda: training_settled(store, 1), timeout=90, interval=0.2)
    before = snapshot(store, 1)
    assert len(before["labels"]) == 40 and before["version"]

    aof_redis.stop()
    for method, path, body in OUTAGE_CALLS:
        t0 = time.monotonic()
        r = requests.request(method, web.url + path, json=body, timeout=20)  # a hang fails the test here
        assert r.status_code == 503, (path, r.status_code, r.text)
        assert r.headers.get("Retry-After") and "Redis" in r.json()["error"], path
        print(f"\n  during the outage {method} {path} -> 503 in {time.monotonic() - t0:.2f}s", end="")
    time.sleep(1.5)  # the worker sees the outage too (its reconnect loop backs off)
    aof_redis.start()

    after = snapshot(store, 1)
    assert after == before  # embeddings, labels, generation, served head and history all survived
    wait_for(lambda: requests.get(web.url + "/health", timeout=5).status_code == 200, timeout=30)
    # Every gunicorn worker reconnects: enough calls that both workers serve some.
    setup = [requests.post(web.url + "/setup", json=load_fixture("setup")["body"], timeout=10) for _ in range(10)]
    assert {r.status_code for r in setup} == {200}
    assert {r.json()["model_version"] for r in setup} == {before["version"]}
    # New labels go in, and the RQ worker (reconnected by itself) trains them into a new version.
    replies = post_all(web.url + "/webhook", [annotation_event(i, ids[i], y[i]) for i in range(40, 60)], threads=4)
    assert {r.status_code for r in replies} == {200}
    wait_for(lambda: training_settled(store, 1) and store.versions(1)[0]["labels"] == 60, timeout=120, interval=0.3)
    assert store.current_version(1) != before["version"]
    body = load_fixture("predict_request")["body"]
    preds = requests.post(web.url + "/predict", json=dict(body, tasks=[dict(body["tasks"][0], id=t) for t in ids[60:]]),
                          timeout=30).json()["results"]
    right = np.mean([p["result"][0]["value"]["choices"][0] == c for p, c in zip(preds, y[60:], strict=True)])
    assert right >= 0.9
