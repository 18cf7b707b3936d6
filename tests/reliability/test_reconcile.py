"""Lost webhooks are found from Label Studio's counters and resynced through its API.

Label Studio is played by the tests' fake on loopback (tests/fake_label_studio.py) that answers the
calls label-studio-sdk 2.1.2 makes; the reconcile job runs in a real RQ worker.
"""

from __future__ import annotations

import logging
from dataclasses import replace

import pytest

from backend.app import create_app
from backend.cli import main as dalt
from backend.reconcile import reconcile_project
from tests.conftest import run_jobs, training_settled, wait_for


@pytest.fixture
def ls_config(config, fake_ls):
    return replace(config, label_studio_url=fake_ls.url, label_studio_api_key=fake_ls.legacy_key,
                   reconcile_delay=0.3, reconcile_interval=1.0)


def test_lost_webhooks_are_detected_and_resynced_by_a_worker(seeded_project, store, fake_ls, ls_config, procs,
                                                            redis_server):
    seeded = seeded_project(n=60)
    client = create_app(ls_config, store=store).test_client()
    y = dict(zip(seeded["ids"], seeded["y"], strict=True))
    lost = []

    def send(event: dict, deliver: bool = True) -> None:
        if deliver:
            r = client.post("/webhook", json=event)
            assert r.status_code == 200, r.json
        else:
            lost.append(event["action"])

    anns = {}
    for t in range(1, 31):
        event = fake_ls.annotate(1, t, y[t])
        anns[t] = event["annotation"]["id"]
        send(event, deliver=t not in (5, 12, 13))  # three creations lost
    send(fake_ls.update(1, anns[3], "two" if y[3] != "two" else "one"), deliver=False)  # an update lost
    send(fake_ls.delete(1, anns[7]), deliver=False)  # a deletion lost
    send(fake_ls.annotate(1, 40, None, cancelled=True), deliver=False)  # a skip lost
    for t in range(31, 41):  # later webhooks are delivered; their counters reveal the losses
        event = fake_ls.annotate(1, t, y[t])
        send(event)
    # The first webhook after a loss queued one reconcile job; the later mismatches rode on it.
    assert client.post("/webhook", json=fake_ls.annotate(1, 41, y[41])).json["detail"]["reconcile"] == "pending"
    procs("worker", redis_server, LABEL_STUDIO_URL=fake_ls.url, LABEL_STUDIO_API_KEY=fake_ls.legacy_key)

    truth = fake_ls.truth(1)
    wait_for(lambda: store.labels(1) == truth, timeout=60, interval=0.2)
    wait_for(lambda: training_settled(store, 1), timeout=60, interval=0.2)
    assert store.versions(1)[0]["labels"] == len(truth)
    assert any(c.startswith("/api/tasks/?") and "fields=all" in c for c in fake_ls.calls)
    live, skipped = store.seen_annotations(1)
    counters = fake_ls.project(1)
    assert (len(live), len(skipped)) == (counters["total_annotations_number"], counters["skipped_annotations_number"])
    print(f"\nlost {len(lost)} webhooks ({', '.join(lost)}); resynced: {len(truth)} labels match Label Studio")


def test_start_training_resyncs_a_lost_update_that_counters_cannot_see(seeded_project, store, fake_ls, ls_config,
                                                                       monkeypatch, ls_payload):
    seeded = seeded_project(n=60)
    client = create_app(ls_config, store=store).test_client()
    y = dict(zip(seeded["ids"], seeded["y"], strict=True))
    ann = {}
    for t in range(1, 21):
        event = fake_ls.annotate(1, t, y[t])
        ann[t] = event["annotation"]["id"]
        assert client.post("/webhook", json=event).json["detail"]["reconcile"] == "in_sync"
    fake_ls.update(1, ann[4], "zero" if y[4] != "zero" else "one")  # lost; the counts do not change
    assert store.labels(1)[4] == y[4]
    body = dict(ls_payload("webhook_start_training"), project=fake_ls.project(1))
    reply = client.post("/webhook", json=body).json
    # The labels above already queued a run (no worker here): the press rides on it, the resync is forced.
    assert store.train_pending(1) and not reply["training_queued"] and reply["detail"]["reconcile"] == "queued"
    # The queued jobs (reconcile, then the training it queues) run here; the test above uses a real worker.
    monkeypatch.setenv("LABEL_STUDIO_URL", fake_ls.url)
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", fake_ls.legacy_key)
    monkeypatch.setenv("REDIS_URL", ls_config.redis_url)
    run_jobs(store)
    assert store.labels(1) == fake_ls.truth(1)
    run_jobs(store)
    assert training_settled(store, 1)


def test_reconcile_by_hand_and_webhooks_arriving_during_the_crawl(seeded_project, store, fake_ls, ls_config,
                                                                  monkeypatch, capsys):
    seeded = seeded_project(n=60)
    client = create_app(ls_config, store=store).test_client()
    y = dict(zip(seeded["ids"], seeded["y"], strict=True))
    ann = {t: fake_ls.annotate(1, t, y[t])["annotation"]["id"] for t in range(1, 11)}  # all 10 lost
    client.post("/webhook", json=fake_ls.annotate(1, 11, y[11]))
    assert store.labels(1) == {11: y[11]}

    # A webhook that lands while the crawl runs is newer than what the crawl read: it must win.
    import backend.reconcile as rec

    real_fetch = rec.fetch_annotations

    def crawl_then_webhook(*args, **kwargs):
        out = real_fetch(*args, **kwargs)
        client.post("/webhook", json=fake_ls.update(1, ann[2], "two"))
        client.post("/webhook", json=fake_ls.delete(1, ann[3]))
        return out

    monkeypatch.setattr(rec, "fetch_annotations", crawl_then_webhook)
    result = reconcile_project(store, ls_config, 1, force=True)
    assert result.status == "resynced" and result.added == 8 and result.removed == 0  # 2 and 3: the webhooks won
    assert store.labels(1) == fake_ls.truth(1)
    assert store.labels(1)[2] == "two" and 3 not in store.labels(1)

    # By hand, through `dalt reconcile`: a lost deletion is undone, the report ends with one summary line.
    monkeypatch.setattr(rec, "fetch_annotations", real_fetch)
    fake_ls.delete(1, ann[5])
    monkeypatch.setenv("REDIS_URL", ls_config.redis_url)
    monkeypatch.setenv("LABEL_STUDIO_URL", fake_ls.url)
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", fake_ls.legacy_key)
    assert dalt(["reconcile", "--project", "1"]) == 0
    assert store.labels(1) == fake_ls.truth(1) and 5 not in store.labels(1)
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1].startswith("reconciled 1 project") and "1 removed" in out[-1]


def test_reconcile_never_logs_the_api_key(seeded_project, store, fake_ls, ls_config, caplog):
    seeded_project(n=10)
    bad = replace(ls_config, label_studio_api_key="wrong-key-SECRET-9c7e")
    with caplog.at_level(logging.DEBUG), pytest.raises(Exception) as info:
        reconcile_project(store, bad, 1, force=True)
    assert "SECRET" not in str(info.value) and "SECRET" not in caplog.text
