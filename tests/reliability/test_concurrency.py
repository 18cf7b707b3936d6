"""Several gunicorn workers and several RQ workers give the same results as one of each.

The same event sequence goes to project 1 through 1 gunicorn worker + 1 RQ worker, one request at a
time, and to project 2 (identical embeddings) through 3 + 3, eight requests at a time. Events that
commute are sent concurrently; events whose order matters (two annotations of one task: the later one
wins) go in later phases, as Label Studio would send them. Training settles after each phase, so every
phase's labels start at least one run: several runs happen, and the check that runs of one project never
overlap has something to compare.
"""

from __future__ import annotations

import numpy as np
import requests
from rq import Queue
from rq.job import Job

from tests.conftest import CLASSES, load_fixture, training_settled, wait_for
from tests.reliability.conftest import post_all

N = 240


def phases(annotation_event, pid: int, y: list[str]) -> list[list[dict]]:
    other = [CLASSES[(CLASSES.index(c) + 1) % len(CLASSES)] for c in y]
    return [
        [annotation_event(t, t, y[t - 1], pid=pid) for t in range(1, 201)],  # first annotations
        [annotation_event(1000 + t, t, other[t - 1], pid=pid) for t in range(1, 51)]  # a second, on 50 tasks
        + [annotation_event(t, t, other[t - 1], pid=pid, action="ANNOTATION_UPDATED") for t in range(101, 131)],
        [dict(load_fixture("webhook_annotation_deleted")["body"], annotations=[{"id": 1000 + t}],
              project=annotation_event(1, 1, None, pid=pid)["project"]) for t in range(1, 21)]  # 20 deleted
        + [annotation_event(t, t, y[t - 1], pid=pid, cancelled=True, action="ANNOTATION_UPDATED")
           for t in range(131, 141)],  # 10 skipped after all
    ]


def run(procs, redis_server, store, annotation_event, y, pid: int, http_workers: int, rq_workers: int,
        threads: int) -> tuple[dict, list]:
    web = procs("gunicorn", redis_server, workers=http_workers)
    # Every version refits its calibration (a reused map depends on which versions the coalescing made).
    workers = [procs("worker", redis_server, DALT_CALIBRATION_GROWTH="0") for _ in range(rq_workers)]
    for phase in phases(annotation_event, pid, y):
        assert {r.status_code for r in post_all(web.url + "/webhook", phase, threads=threads)} == {200}
        wait_for(lambda: training_settled(store, pid), timeout=120, interval=0.2)
    body = load_fixture("predict_request")["body"]
    tasks = [dict(body["tasks"][0], id=t) for t in range(1, N + 1)]
    preds = requests.post(web.url + "/predict", json=dict(body, project=f"{pid}.1", tasks=tasks), timeout=60).json()
    for p in [web, *workers]:
        p.stop()
    return store.labels(pid), preds["results"]


def test_many_http_and_rq_workers_give_the_same_labels_and_predictions_as_one(
    procs, redis_server, store, seeded_project, annotation_event
):
    seeded = seeded_project(n=N, pid=1)
    seeded_project(n=N, pid=2)
    y = seeded["y"]
    labels_1, preds_1 = run(procs, redis_server, store, annotation_event, y, pid=1, http_workers=1, rq_workers=1,
                            threads=1)
    labels_n, preds_n = run(procs, redis_server, store, annotation_event, y, pid=2, http_workers=3, rq_workers=3,
                            threads=8)
    assert labels_1 == labels_n
    assert len(labels_1) == 200 - 10  # 10 tasks were skipped after all; the 20 deleted fall back to the first
    assert store.versions(1)[0]["labels"] == store.versions(2)[0]["labels"] == len(labels_1)
    # Training runs of one project never overlapped, even with three workers free to take them.
    queue = Queue("dalt", connection=store.r)
    spans = sorted(
        tuple(job.return_value()["locked"])
        for job in Job.fetch_many(queue.finished_job_registry.get_job_ids(), connection=store.r)
        if job is not None and job.func_name.endswith("train_project_job") and job.args == (2,)
    )
    runs = int(store.stats(2)["train_runs"])
    assert len(spans) == runs >= len(phases(annotation_event, 2, y)), (runs, spans)  # one run per phase at least
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:], strict=False)), spans
    top_1 = [p["result"][0]["value"]["choices"][0] for p in preds_1]
    top_n = [p["result"][0]["value"]["choices"][0] for p in preds_n]
    assert top_1 == top_n
    np.testing.assert_allclose([p["score"] for p in preds_1], [p["score"] for p in preds_n], atol=2e-3)
    print(f"\n1+1 workers and 3+3 workers: {len(labels_1)} identical labels, {N} identical predictions; "
          f"training runs {int(store.stats(1)['train_runs'])} vs {int(store.stats(2)['train_runs'])}")
