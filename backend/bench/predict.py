"""/predict benchmark: latency and throughput with cached embeddings, against a constant-answer floor.

Both servers run under gunicorn on loopback with the Dockerfile's shape; the floor answers a constant
prediction per task (``backend.bench.apps.floor_app``): the cost of HTTP, Flask and JSON alone.
"""

from __future__ import annotations

from collections.abc import Sequence

import requests
from tqdm.auto import tqdm

from backend.bench.common import (
    Section,
    gunicorn,
    latency_summary,
    post_timed,
    predict_body,
    ratio,
    redis_server,
    seed_project,
)


def measure_predict(base_url: str, sizes: Sequence[int], reps: dict[int, int], n_tasks: int, label: str,
                    progress: bool) -> dict[int, dict]:
    """Sequential /predict calls of each size on one keep-alive connection; latencies and tasks/s."""
    out: dict[int, dict] = {}
    session = requests.Session()
    for size in sizes:
        count = reps[size]
        bodies = []
        for i in range(count + 3):  # 3 warm-up calls
            start = (i * size) % max(1, n_tasks - size + 1)
            bodies.append(predict_body(range(start + 1, start + size + 1)))
        times: list[float] = []
        for i, body in enumerate(tqdm(bodies, desc=f"predict {label} x{size}", unit="call", disable=not progress)):
            dt, resp = post_timed(session, base_url + "/predict", body)
            if i == 0:
                results = resp.json()["results"]
                if len(results) != size or not results[0]["result"]:
                    raise RuntimeError(f"{label}: /predict did not answer {size} non-empty predictions")
            if i >= 3:
                times.append(dt)
        summary = latency_summary(times)
        summary["tasks_per_s"] = round(size * len(times) / sum(times), 1)
        out[size] = summary
    session.close()
    return out


def bench_predict(quick: bool, progress: bool) -> Section:
    """Item 1: /predict for 1, 100 and 10,000 tasks with cached embeddings, against the floor app."""
    sec = Section("predict")
    n_tasks = 2_000 if quick else 10_000
    sizes = [1, 100, n_tasks]
    reps = {1: 30, 100: 10, n_tasks: 3} if quick else {1: 300, 100: 100, n_tasks: 10}
    with redis_server() as url:
        seed_project(url, n_tasks, 1_000)
        with gunicorn("backend.app:create_app()", url) as base:
            dalt = measure_predict(base, sizes, reps, n_tasks, "DALT", progress)
        with gunicorn("backend.bench.apps:floor_app()", url) as base:
            floor = measure_predict(base, sizes, reps, n_tasks, "floor", progress)
    for size in sizes:
        d, f = dalt[size], floor[size]
        sec.row(f"/predict {size} task(s) p50 / p99", f"{d['p50_ms']:.1f} / {d['p99_ms']:.1f} ms",
                f"floor {f['p50_ms']:.1f} / {f['p99_ms']:.1f} ms; p50 x{ratio(d['p50_ms'], f['p50_ms'])}")
        sec.row(f"/predict {size} task(s) throughput", f"{d['tasks_per_s']:.0f} tasks/s",
                f"floor {f['tasks_per_s']:.0f} tasks/s; x{ratio(d['tasks_per_s'], f['tasks_per_s'])}")
    sec.data = {"dalt": dalt, "floor": floor,
                "p50_ratio": {s: ratio(dalt[s]["p50_ms"], floor[s]["p50_ms"]) for s in sizes}}
    r1 = ratio(dalt[1]["p50_ms"], floor[1]["p50_ms"])
    sec.goal("single-task /predict p50 within 2x of the floor", r1 <= 2.0,
             f"{dalt[1]['p50_ms']:.2f} ms vs floor {floor[1]['p50_ms']:.2f} ms = x{r1}")
    big = dalt[sizes[-1]]
    sec.goal(f"{sizes[-1]} tasks in one call under 2 s", big["p50_ms"] < 2000,
             f"p50 {big['p50_ms']:.0f} ms, p99 {big['p99_ms']:.0f} ms")
    return sec
