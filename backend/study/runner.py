"""A whole study run: load and shuffle the dataset, make each method's features, replay every method."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator
from typing import Any, TextIO

import numpy as np
import redis

from backend.coldstart import default_clusters, typicality_order
from backend.processes import temporary_redis
from backend.store import Store
from backend.study.datasets import file_order, load_dataset, shuffled
from backend.study.features import Features, make_features
from backend.study.options import BASE_PID, METHODS, StudyOptions
from backend.study.output import accuracy_at, pct, set_default_method
from backend.study.replay import replay


@contextlib.contextmanager
def study_redis(url: str | None) -> Iterator[str]:
    """Yield a Redis URL: the given one, or a private ``redis-server`` on a free port, stopped afterwards."""
    if url:
        yield url
        return
    with temporary_redis("dalt-study-redis-") as private:
        yield private


def run_study(opts: StudyOptions, out: TextIO | None = None) -> dict[str, Any]:
    """Replay every method of ``opts`` over its dataset; returns the report (see ``docs/study``).

    Progress lines go to ``out`` (default: the current stdout); the caller writes the table, plots and JSON
    (``backend.study.output``).
    """
    out = out or sys.stdout
    t_start = time.perf_counter()
    opts = opts.resolved()
    methods = list(opts.methods or ())
    ds = shuffled(load_dataset(opts.dataset, opts.image_size), opts.seed, opts.limit)
    orders = {"random": np.arange(len(ds.labels)), "sorted": file_order(ds)}  # ds is already shuffled
    replays = [(m, o) for m in methods for o in (("random", "sorted") if opts.order == "both" else (opts.order,))]
    print(f"{ds.name}: {len(ds.labels)} tasks, {len(ds.classes)} classes, images {list(ds.images.shape[1:])}",
          file=out)
    features: dict[str, Features] = {}
    report: dict[str, Any] = {"dataset": ds.name, "tasks": len(ds.labels), "classes": ds.classes,
                              "block": opts.block, "seed": opts.seed, "order": opts.order,
                              "image_size": int(ds.images.shape[-1]), "augment": opts.augment,
                              "retraining": {"eager": opts.eager, "growth": opts.growth},
                              "cpu_count": os.cpu_count(), "methods": {}, "feature_seconds": {}}
    with study_redis(opts.redis_url) as url:
        store = Store(redis.Redis.from_url(url))
        for k, (method, task_order) in enumerate(replays):
            kind, _, order_kind = METHODS[method]
            name = f"{method}@{task_order}" if opts.order == "both" else method
            if kind not in features:
                features[kind] = make_features(kind, ds, opts)
                report["feature_seconds"][kind] = round(features[kind].seconds, 2)
                if features[kind].info:
                    report.setdefault("encoders", {})[kind] = features[kind].info
                print(f"features {kind}: {features[kind].vectors.shape[1]} dims in {features[kind].seconds:.1f}s",
                      file=out)
            feats = features[kind]
            order = orders[task_order]
            if order_kind == "coldstart":
                t0 = time.perf_counter()
                k_clusters = opts.clusters or default_clusters(len(ds.labels), len(ds.classes))
                order = coldstart_order(order, feats.vectors, k_clusters, opts.seed)
                report.setdefault("coldstart", {})[name] = {"clusters": k_clusters,
                                                               "seconds": round(time.perf_counter() - t0, 2)}
            pid = BASE_PID + 100 * opts.seed + k + 1
            m = replay(store, pid, method, feats, ds, order, opts)
            m["task_order"] = task_order
            report["methods"][name] = m
            print(f"{name}: accepted {m['acceptance_rate']:.2%}, rest acc @50 "
                  f"{pct(accuracy_at(m['rest_accuracy'], 50))} @100 {pct(accuracy_at(m['rest_accuracy'], 100))}, "
                  f"{m['fits']} fits {m['fit_seconds']:.1f}s, replay {m['replay_seconds']:.1f}s", file=out)
    names = list(report["methods"])
    set_default_method(report, next((n for n in names if n.split("@")[0] == opts.default_method), names[-1]))
    report["wall_seconds"] = round(time.perf_counter() - t_start, 1)
    return report


def coldstart_order(order: np.ndarray, vectors: np.ndarray, clusters: int, seed: int) -> np.ndarray:
    """The cold-start order of the positions in ``order``: their vectors travel with them.

    Why: ``order`` may be any permutation (file order replays one class after another), and
    ``typicality_order`` pairs ids with vectors row by row, so the vectors must be permuted the same way.
    The result does not keep ``order``: as ``dalt order`` does in a project, the most typical task of each
    cluster comes first and the rest follow in a seeded random order, whatever the import order was.
    """
    order = np.asarray(order, np.int64)
    return typicality_order(order, np.asarray(vectors)[order], clusters, seed=seed)


def summary_line(report: dict[str, Any]) -> str:
    """The run's one-line summary."""
    return (f"{report['dataset']}: default {report['default_method']} accepted {report['acceptance_rate']:.2%}; "
            f"study took {report['wall_seconds']:.0f}s on {os.cpu_count()} CPUs")
