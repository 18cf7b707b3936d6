"""Scale benchmark: projects of 100,000 to 1,000,000 tasks through the real webhook -> RQ -> publish -> /predict.

    dalt bench --scale 100000,1000000 --json docs/bench/scale.json

Per size: synthetic clustered 32-dim embeddings written into Redis through the store (no images); the
graph built by the real graph job on a graph worker, next to a bare faiss HNSW build + kNN self-search of
the same vectors (the floor); 1,000 tasks added by the same job; then, with gunicorn, a fast-lane worker and
a graph-lane worker, label changes sent as webhooks at 1,000 and 10,000 labels: the time until /predict
serves a new version (the fast lane's freshness) and until the served version's spread snapshot includes
the change (``graph_head_lag_s``). Also /predict of 100 and 10,000 tasks, Redis bytes per task over every
key of the project, the peak RSS of a gunicorn worker and of the RQ work horses. Baseline in the same run:
the rebuild-per-fit head (``spreading-rebuild``) fit at the sizes where it finishes within minutes.
"""

from __future__ import annotations

import contextlib
import statistics
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import redis
import requests
from tqdm.auto import tqdm

from backend.bench.common import (
    CLASSES,
    DIM,
    ENCODER,
    JSON_HEADERS,
    LABEL_CONFIG,
    PID,
    TRANSIENT,
    Section,
    annotation_webhook,
    bench_env,
    clustered_embeddings,
    post_timed,
    predict_body,
    ratio,
    redis_server,
    rq_workers,
)
from backend.processes import descendants, start_gunicorn, wait_for

SIZES = [100_000]
QUICK_SIZES = [20_000]
BASELINE_SIZES = [5_000, 20_000, 100_000]
GRAPH_THREADS = 2  # the graph lane's jobs and the bare faiss floor alike
CHUNK = 20_000


def _vm(pid: int, field: str) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def seed(store, n: int, X: np.ndarray) -> float:
    """Flush; project 1 with ``n`` embeddings written through the store; returns seconds."""
    from backend.projects import Projects

    t0 = time.perf_counter()
    store.r.flushall()
    Projects(store).configure(PID, LABEL_CONFIG)
    store.put_encoder(PID, ENCODER, b"bench", {"dim": DIM, "objective": "bench"})
    put(store, 1, X[:n])
    return time.perf_counter() - t0


def put(store, first_id: int, X: np.ndarray) -> None:
    for start in range(0, len(X), CHUNK):
        block = X[start : start + CHUNK]
        store.put_embeddings(PID, ENCODER, {first_id + start + i: v for i, v in enumerate(block)})


def bare_faiss(X: np.ndarray, threads: int) -> float:
    """The floor: ``IndexHNSWFlat(dim, 16)``, efConstruction 40, build + k=10 self-search of every vector."""
    import faiss

    from backend.graph import Standardizer

    faiss.omp_set_num_threads(threads)
    t0 = time.perf_counter()
    Z = Standardizer.fit(X)(X)
    index = faiss.IndexHNSWFlat(X.shape[1], 16)
    index.hnsw.efConstruction = 40
    index.add(Z)
    index.search(Z, 11)
    return time.perf_counter() - t0


def run_job(store, job_id: str | None, timeout: float) -> dict:
    """Wait for an enqueued job and return its result."""
    from rq.job import Job

    assert job_id, "the job was not enqueued (a coalescing flag was already set)"
    job = Job.fetch(job_id, connection=store.r)
    wait_for(lambda: job.get_status(refresh=True) in ("finished", "failed"), timeout, f"job {job_id}", interval=0.05)
    if job.get_status() != "finished":
        raise RuntimeError(f"job {job_id} failed: {job.latest_result().exc_string if job.latest_result() else ''}")
    return job.return_value()


def label(store, ids: np.ndarray, y: list[str]) -> None:
    for t in ids.tolist():
        store.record_annotation(PID, 5_000_000 + t, t, y[t - 1])


def graph_generation(store) -> int:
    """Label generation of the spread snapshot named by the served version (-1: none)."""
    version = store.current_version(PID)
    metas = {m.get("version"): m for m in store.versions(PID)[:3]}
    snap = metas.get(version, {}).get("snapshot")
    if not snap:
        return -1
    meta = store.snapshots(PID).get(int(snap))
    return int(meta["generation"]) if meta else -1


def freshness(store, base: str, repeats: int, y: list[str], labeled: np.ndarray, graph_timeout: float,
              progress: bool, desc: str) -> dict:
    """``repeats`` label changes by webhook: until /predict serves a new version, and until the graph lane's."""
    session = requests.Session()
    probe = predict_body([int(labeled[0])])

    def served() -> str:
        return session.post(base + "/predict", data=probe, headers=JSON_HEADERS, timeout=60).json()["model_version"]

    fast, lag = [], []
    for i in tqdm(range(repeats), desc=desc, unit="label", disable=not progress):
        before = served()
        task = int(labeled[(i * 7919) % len(labeled)])
        old = store.labels(PID)[task]
        new = CLASSES[(CLASSES.index(old) + 1) % len(CLASSES)]
        t0 = time.perf_counter()
        session.post(base + "/webhook", data=annotation_webhook(9_000_000 + i, task, new), headers=JSON_HEADERS,
                     timeout=60).raise_for_status()
        gen = store.generation(PID)
        wait_for(lambda b=before: served() != b, 120, "a new version", interval=0.005, ignore=TRANSIENT)
        fast.append(time.perf_counter() - t0)
        wait_for(lambda g=gen: graph_generation(store) >= g, graph_timeout, "the graph lane's version", interval=0.05,
                 ignore=TRANSIENT)
        lag.append(time.perf_counter() - t0)
    session.close()
    return {"freshness_median_s": round(statistics.median(fast), 3),
            "freshness_p95_s": round(float(np.percentile(fast, 95)), 3),
            "graph_head_lag_s": round(statistics.median(lag), 3),
            "graph_head_lag_max_s": round(max(lag), 3),
            "samples_s": [round(t, 3) for t in fast], "graph_samples_s": [round(t, 3) for t in lag]}


@contextlib.contextmanager
def serving(url: str) -> Iterator[tuple[str, int]]:
    """gunicorn (the Dockerfile's shape) with a fast-lane worker and a graph-lane worker; yields (url, pid)."""
    env = {"DALT_GRAPH_THREADS": str(GRAPH_THREADS)}
    with tempfile.TemporaryDirectory(prefix="dalt-bench-scale-") as tmp, \
            rq_workers(url, 1, **env), rq_workers(url, 1, "dalt-graph", **env):
        server = start_gunicorn(bench_env(url, **env), workers=2, args=["--threads", "4", "--timeout", "120"],
                                log_path=Path(tmp, "gunicorn.log"))
        try:
            yield server.url, server.pid
        finally:
            server.stop()


def one_size(url: str, n: int, quick: bool, progress: bool) -> dict:
    """Every measure of the module docstring for one project size."""
    from backend.config import Config
    from backend.queueing import enqueue_graph_update
    from backend.store import Store

    store = Store(redis.Redis.from_url(url))
    config = Config(redis_url=url, graph_threads=GRAPH_THREADS)
    X, y = clustered_embeddings(n + 1000, DIM)
    out: dict = {"tasks": n, "seed_s": round(seed(store, n, X), 1)}
    out["bare_faiss_hnsw_s"] = round(bare_faiss(X[:n], GRAPH_THREADS), 2)
    horse_rss: list[float] = []
    label_counts = [200, 1_000] if quick else [1_000, 10_000]
    repeats = 2 if quick else 5
    rng = np.random.default_rng(1)
    order = rng.permutation(np.arange(1, n + 1))
    with serving(url) as (base, gunicorn_pid):
        t0 = time.perf_counter()
        res = run_job(store, enqueue_graph_update(store, config, PID), 3600)
        out["graph_build_s"] = round(res["seconds"], 2)
        out["graph_build_wall_s"] = round(time.perf_counter() - t0, 2)
        horse_rss.append(res["peak_rss_mb"])
        put(store, n + 1, X[n : n + 1000])
        res = run_job(store, enqueue_graph_update(store, config, PID), 600)
        out["add_1000_s"], out["add_1000_changed"] = round(res["seconds"], 2), res["changed"]
        horse_rss.append(res["peak_rss_mb"])
        done = 0
        for count in label_counts:
            label(store, order[done:count], y)
            done = count
            # the first webhook of a size pays the cold propagation; measure the steady state after it
            freshness(store, base, 1, y, order[:count], 1800, False, "warm up")
            out[str(count)] = freshness(store, base, repeats, y, order[:count], 1800, progress,
                                        f"scale {n}: {count} labels")
        out |= {k: out[str(label_counts[-1])][k] for k in ("freshness_median_s", "freshness_p95_s",
                                                           "graph_head_lag_s")}
        session = requests.Session()
        for m in (100, 10_000):
            body = predict_body(order[:m].tolist())
            times = [post_timed(session, base + "/predict", body)[0] for _ in range(3)]
            out[f"predict_{m}_s"] = round(statistics.median(times), 3)
        session.close()
        workers = [p for p in descendants(gunicorn_pid) if p != gunicorn_pid]
        out["worker_rss_mb"] = round(max((_vm(p, "VmHWM") for p in workers), default=0.0), 1)
    metas = [m for m in store.versions(PID)]
    out["head_blob_bytes"] = max(len(store.head(PID, m["version"]).blob) for m in metas[:1])
    by_family: dict[str, int] = {}
    for key in store.project_keys(PID):  # P:emb:..., P:knn:..., P:spread:..., P:labels, ...
        family = key.split(":")[2]
        by_family[family] = by_family.get(family, 0) + int(store.r.memory_usage(key, samples=0) or 0)
    out["redis_bytes_per_task"] = round(sum(by_family.values()) / (n + 1000), 1)
    out["redis_bytes_per_task_by_key"] = {f: round(b / (n + 1000), 1) for f, b in sorted(by_family.items())}
    out["rq_horse_rss_mb"] = round(max(horse_rss), 1)
    out["graph_build_vs_bare"] = ratio(out["graph_build_s"], out["bare_faiss_hnsw_s"])
    return out


def baseline(n: int, labels: int = 1000) -> dict:
    """The rebuild-per-fit head: one fit over every embedding, as every label cost before the graph lane."""
    from threadpoolctl import threadpool_limits

    from backend.heads import fit_head

    X, y = clustered_embeddings(n, DIM)
    X = X.astype(np.float16).astype(np.float32)  # what the store returns
    ids = np.arange(1, n + 1)
    t0 = time.perf_counter()
    with threadpool_limits(1):
        head = fit_head("spreading-rebuild", X[:labels], y[:labels], CLASSES, unlabeled=X, unlabeled_ids=ids)
    return {"fit_s": round(time.perf_counter() - t0, 2), "head_blob_bytes": len(head.to_bytes())}


def bench_scale(quick: bool, progress: bool, sizes: Sequence[int] | None = None) -> Section:
    """The scale sweep (see the module docstring)."""
    sizes = list(sizes or (QUICK_SIZES if quick else SIZES))
    sec = Section("scale")
    data: dict = {"sizes": {}, "baseline": {}}
    with redis_server() as url:
        for n in sizes:
            r = one_size(url, n, quick, progress)
            data["sizes"][str(n)] = r
            sec.row(f"{n:,} tasks: graph build / bare faiss HNSW", f"{r['graph_build_s']:.1f} s",
                    f"{r['bare_faiss_hnsw_s']:.1f} s: x{r['graph_build_vs_bare']}")
            sec.row(f"{n:,} tasks: add 1,000 tasks", f"{r['add_1000_s']:.2f} s", "")
            sec.row(f"{n:,} tasks: label -> /predict (fast lane) median / p95",
                    f"{r['freshness_median_s']:.2f} / {r['freshness_p95_s']:.2f} s", "")
            sec.row(f"{n:,} tasks: label -> graph-based head served (median)", f"{r['graph_head_lag_s']:.1f} s", "")
            sec.row(f"{n:,} tasks: /predict 100 / 10,000 tasks", f"{r['predict_100_s']:.3f} / "
                    f"{r['predict_10000_s']:.2f} s", "")
            sec.row(f"{n:,} tasks: Redis bytes per task, all keys", f"{r['redis_bytes_per_task']:.0f} B", "")
            sec.row(f"{n:,} tasks: peak RSS gunicorn worker / RQ horse",
                    f"{r['worker_rss_mb']:.0f} / {r['rq_horse_rss_mb']:.0f} MB", "")
    for n in [b for b in BASELINE_SIZES if b <= max(sizes)]:
        data["baseline"][str(n)] = b = baseline(n)
        sec.row(f"baseline: rebuild-per-fit head, {n:,} tasks, 1,000 labels", f"{b['fit_s']:.2f} s per label",
                f"head {b['head_blob_bytes'] / 1e6:.2f} MB per version")
    sec.data = data
    big = data["sizes"][str(max(sizes))]
    sec.goal("fast lane: label -> /predict <= 2 s median at the largest size", big["freshness_median_s"] <= 2.0,
             f"{big['freshness_median_s']:.2f} s at {max(sizes):,} tasks")
    sec.goal("graph-based head reflects a label within 60 s", big["graph_head_lag_s"] <= 60,
             f"{big['graph_head_lag_s']:.1f} s")
    sec.goal("graph build within 2x of bare faiss HNSW build + search", big["graph_build_vs_bare"] <= 2,
             f"x{big['graph_build_vs_bare']}")
    sec.goal("adding 1,000 tasks <= 5 s", big["add_1000_s"] <= 5, f"{big['add_1000_s']:.2f} s")
    sec.goal("Redis <= 200 B per task all-in", big["redis_bytes_per_task"] <= 200,
             f"{big['redis_bytes_per_task']:.0f} B")
    sec.goal("gunicorn worker RSS <= 600 MB", big["worker_rss_mb"] <= 600, f"{big['worker_rss_mb']:.0f} MB")
    sec.goal("/predict of 10,000 tasks < 2 s", big["predict_10000_s"] < 2, f"{big['predict_10000_s']:.2f} s")
    return sec


def scale_json(section: Section) -> dict:
    """The ``"scale"`` object of the ``--json`` report: per size, the headline numbers."""
    keys = ("graph_build_s", "add_1000_s", "freshness_median_s", "freshness_p95_s", "graph_head_lag_s",
            "predict_10000_s", "redis_bytes_per_task", "worker_rss_mb")
    return {n: {k: r[k] for k in keys} for n, r in section.data.get("sizes", {}).items()}


def plot_scale(report: dict, path: str | Path) -> None:
    """Freshness and memory against project size, the rebuild-per-fit baseline beside them (a PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = report["results"]["scale"]
    sizes = sorted(int(n) for n in data["sizes"])
    base = sorted(int(n) for n in data["baseline"])
    at = lambda n, k: data["sizes"][str(n)][k]  # noqa: E731 - a local shorthand
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    left.plot(sizes, [at(n, "freshness_median_s") for n in sizes], "o-", label="label -> /predict, fast lane (median)")
    left.plot(sizes, [at(n, "graph_head_lag_s") for n in sizes], "s-", label="label -> graph-based head (median)")
    left.plot(base, [data["baseline"][str(n)]["fit_s"] for n in base], "x--", color="grey",
              label="baseline: rebuild-per-fit head, one fit")
    left.set(xscale="log", yscale="log", xlabel="tasks in the project", ylabel="seconds", title="Freshness")
    right.plot(sizes, [at(n, "redis_bytes_per_task") * (n + 1000) / 1e6 for n in sizes], "o-",
               label="Redis, all keys of the project")
    right.plot(sizes, [at(n, "head_blob_bytes") / 1e6 for n in sizes], "s-", label="head per version")
    right.plot(sizes, [at(n, "worker_rss_mb") for n in sizes], "^-", label="gunicorn worker peak RSS")
    right.plot(base, [data["baseline"][str(n)]["head_blob_bytes"] / 1e6 for n in base], "x--", color="grey",
               label="baseline: head per version")
    right.set(xscale="log", yscale="log", xlabel="tasks in the project", ylabel="MB", title="Memory")
    for ax in (left, right):
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"dalt bench --scale, {report['machine']['cores']} cores, load "
                 f"{report['machine']['load_avg_1m_at_start']:.1f} at the start", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def sweep_table(report: dict) -> str:
    """The size sweep as one Markdown table (a column per project size), for docs/scale.md."""
    data = report["results"]["scale"]
    sizes = sorted(int(n) for n in data["sizes"])
    rows = [
        ("graph build, graph job (s)", "graph_build_s", "{:.1f}"),
        ("bare faiss HNSW build + k=10 self-search, same vectors (s)", "bare_faiss_hnsw_s", "{:.1f}"),
        ("add 1,000 tasks, graph job (s)", "add_1000_s", "{:.2f}"),
        ("label -> /predict, fast lane, median at 10,000 labels (s)", "freshness_median_s", "{:.2f}"),
        ("label -> /predict, fast lane, p95 at 10,000 labels (s)", "freshness_p95_s", "{:.2f}"),
        ("label -> graph-based head served, median at 10,000 labels (s)", "graph_head_lag_s", "{:.1f}"),
        ("/predict of 100 tasks (s)", "predict_100_s", "{:.3f}"),
        ("/predict of 10,000 tasks (s)", "predict_10000_s", "{:.2f}"),
        ("Redis bytes per task, every key of the project", "redis_bytes_per_task", "{:.0f}"),
        ("head per version (bytes)", "head_blob_bytes", "{:,}"),
        ("gunicorn worker peak RSS (MB)", "worker_rss_mb", "{:.0f}"),
        ("RQ work horse peak RSS (MB)", "rq_horse_rss_mb", "{:.0f}"),
    ]
    lines = ["| measure | " + " | ".join(f"{n:,} tasks" for n in sizes) + " |",
             "|---|" + "---|" * len(sizes)]
    for name, key, fmt in rows:
        lines.append(f"| {name} | " + " | ".join(fmt.format(data["sizes"][str(n)][key]) for n in sizes) + " |")
    for labels in ("1000",):  # the top rows are at the larger label count
        for name, key in (("fast lane median", "freshness_median_s"), ("graph-based head median", "graph_head_lag_s")):
            cells = [data["sizes"][str(n)].get(labels, {}).get(key) for n in sizes]
            lines.append(f"| label -> served, {name} at {int(labels):,} labels (s) | "
                         + " | ".join("" if c is None else f"{c:.2f}" for c in cells) + " |")
    base = sorted(int(n) for n in data["baseline"])
    lines += ["", "| baseline: rebuild-per-fit head (`spreading-rebuild`), 1,000 labels | "
              + " | ".join(f"{n:,} tasks" for n in base) + " |", "|---|" + "---|" * len(base),
              "| one fit = the least a label waits (s) | "
              + " | ".join(f"{data['baseline'][str(n)]['fit_s']:.2f}" for n in base) + " |",
              "| head per version (bytes) | "
              + " | ".join(f"{data['baseline'][str(n)]['head_blob_bytes']:,}" for n in base) + " |"]
    return "\n".join(lines)
