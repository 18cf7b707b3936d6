"""A burst of 1,000 annotation webhooks through gunicorn loses no label and is coalesced."""

from __future__ import annotations

import threading

import requests
from rq import Queue

from tests.conftest import load_fixture, training_settled, wait_for
from tests.reliability.conftest import post_all

BURST = 1000


def test_a_burst_of_1000_webhooks_records_every_label_and_coalesces_training(
    seeded_project, annotation_event, store, procs, redis_server
):
    seeded = seeded_project(n=BURST, dim=8)
    web = procs("gunicorn", redis_server, workers=3)
    procs("worker", redis_server)
    queue = Queue("dalt", connection=store.r)
    expected = dict(zip(seeded["ids"], seeded["y"], strict=True))

    # Structural coalescing check: sample the queue while the burst runs; never more than one job waits.
    peak = {"queued": 0}
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            peak["queued"] = max(peak["queued"], queue.count)
            done.wait(0.02)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        bodies = [annotation_event(10_000 + t, t, expected[t]) for t in seeded["ids"]]
        replies = post_all(web.url + "/webhook", bodies, threads=8)
    finally:
        done.set()
        watcher.join()

    assert [r.status_code for r in replies] == [200] * BURST
    queued = sum(r.json()["training_queued"] for r in replies)
    assert store.labels(1) == expected  # every label recorded, none altered
    wait_for(lambda: training_settled(store, 1), timeout=120, interval=0.2)

    stats = store.stats(1)
    runs = int(stats.get("train_runs", 0))
    assert stats.get("train_failures", 0) == 0
    assert peak["queued"] <= 1  # at most one queued training job at any sampled moment
    assert 1 <= runs == queued < BURST // 10  # one run per queued job, far fewer than webhooks
    head = store.versions(1)[0]
    assert head["labels"] == BURST  # the final model includes every label

    # And it is what Label Studio gets: /setup and /predict agree on that version.
    setup = requests.post(web.url + "/setup", json=load_fixture("setup")["body"], timeout=10).json()
    assert setup["model_version"] == head["version"]
    body = load_fixture("predict_request")["body"]
    tasks = [dict(body["tasks"][0], id=t) for t in seeded["ids"][:50]]
    preds = requests.post(web.url + "/predict", json=dict(body, tasks=tasks), timeout=30).json()["results"]
    assert {p["model_version"] for p in preds} == {head["version"]}
    top = [p["result"][0]["value"]["choices"][0] for p in preds]
    right = sum(label == expected[t] for label, t in zip(top, seeded["ids"][:50], strict=True))
    assert right >= 45
    print(f"\n{BURST} webhooks through gunicorn (3 workers, 8 client threads): {queued} jobs queued, {runs} runs, "
          f"peak queue depth {peak['queued']}")
