"""One simulated annotator labeling every task of a dataset with one method, through DALT's real code.

Predictions come from ``backend.predict.predict_tasks`` (the /predict path), labels are recorded as the
webhook records them, and heads are fit by ``backend.training.train_project`` (the RQ job's code), all
on a real Redis. For heads that use the graph lane, the neighbour graph is built once after the embeddings
are stored and the propagation (``backend.graphlane.spread_project``) runs right after each retraining:
the study measures the graph-based head as it is once the background lane has caught up.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from backend.config import Config
from backend.evaluation import evaluation_summary, record_outcome
from backend.graphlane import spread_project, update_graph
from backend.heads import HEADS
from backend.predict import HeadCache, predict_tasks, spread_for
from backend.projects import Projects
from backend.store import Store
from backend.study.bulk_accept import at_checkpoint
from backend.study.datasets import Dataset
from backend.study.features import Features
from backend.study.options import CHECKPOINTS, METHODS, TARGETS, StudyOptions
from backend.training import TrainResult, train_project


def label_config(classes: list[str]) -> str:
    choices = "".join(f'<Choice value="{c}"/>' for c in classes)
    return (
        '<View><Image name="image" value="$image"/>'
        f'<Choices name="label" toName="image" choice="single">{choices}</Choices></View>'
    )


def should_train(n: int, last: int, eager: int, growth: float) -> bool:
    """The coalescing rule (see ``backend.study``): every label up to ``eager``, then every ``growth``.

    Heads are also trained at the fixed :data:`CHECKPOINTS`, so learning curves line up across methods.
    """
    return n <= eager or growth <= 0 or n >= last * (1 + growth) or n in CHECKPOINTS


def replay(store: Store, pid: int, method: str, feats: Features, ds: Dataset, order: np.ndarray,
           opts: StudyOptions) -> dict[str, Any]:
    """Simulate one annotator labeling every task in ``order``; returns the method's measurements."""
    _, head_kind, _ = METHODS[method]
    classes = ds.classes
    cfg = Projects(store).configure(pid, label_config(classes))
    task_ids = np.arange(1, len(ds.labels) + 1, dtype=np.int64)
    enc_version = f"study-{feats.name}"
    store.put_encoder(pid, enc_version, b"", {"dim": feats.vectors.shape[1], "objective": feats.name})
    store.put_embeddings(pid, enc_version, dict(zip(task_ids.tolist(), feats.vectors, strict=True)))
    # What the head sees are the stored (float16) vectors, exactly as in production.
    stored, _ = store.get_embeddings(pid, enc_version, task_ids, feats.vectors.shape[1])
    config = Config(redis_url="unused://", head=head_kind)
    lanes = HEADS[head_kind].uses_snapshot
    if lanes:
        update_graph(store, config, pid)
    heads = HeadCache()
    accepted = np.zeros(len(order), bool)
    curve: dict[int, float] = {}
    bulk: dict[str, dict] = {}  # bulk accept at the study's checkpoints (backend.study.bulk_accept)
    fit_seconds, predict_seconds, fits, last = 0.0, 0.0, 0, 0
    bar = tqdm(order, desc=f"{ds.name} {method}", unit="task", disable=not opts.progress, mininterval=1)
    t0, c0 = time.perf_counter(), time.process_time()
    for i, idx in enumerate(bar):
        tid = int(task_ids[idx])
        truth = str(ds.labels[idx])
        tp = time.perf_counter()
        _, results = predict_tasks(store, heads, pid, cfg, [{"id": tid, "data": {"image": f"/sim/{tid}.png"}}])
        predict_seconds += time.perf_counter() - tp
        items = results[0]["result"]
        suggested = items[0]["value"]["choices"][0] if items else None
        accepted[i] = suggested == truth
        # The annotator submits `truth`; the webhook records it and the live evaluation compares.
        store.record_annotation(pid, i + 1, tid, truth)
        record_outcome(store, pid, tid, truth, lead_time=None)
        n = i + 1
        if should_train(n, last, opts.eager, opts.growth) or n == len(order):
            tf = time.perf_counter()
            res = train_project(store, config, pid, threads=1)
            if lanes and res.status == "published":
                lane = spread_project(store, config, pid).published
                res = TrainResult(**lane) if lane.get("status") == "published" else res
            fit_seconds += time.perf_counter() - tf
            fits += 1
            last = n
            rest = order[n:]
            if res.status == "published" and len(rest):
                head, meta = heads.get(store, pid, res.version)
                pred, _ = head.predict(stored[rest], task_ids[rest], spread_for(store, pid, head, task_ids[rest]))
                curve[n] = float(np.mean(np.array(pred) == ds.labels[rest]))
                if (b := at_checkpoint(store, pid, config, n, head, meta, stored, task_ids, order,
                                       np.asarray(ds.labels).astype(str), list(classes))) is not None:
                    bulk[str(n)] = b
        if i % 100 == 0:
            bar.set_postfix(accepted=f"{accepted[: i + 1].mean():.3f}", fits=fits)
    bar.close()
    blocks = [float(accepted[s : s + opts.block].mean()) for s in range(0, len(accepted), opts.block)]
    return {
        "features": feats.name,
        "head": head_kind,
        "order": METHODS[method][2],
        "tasks": len(order),
        "acceptance_rate": float(accepted.mean()),
        "accepted": int(accepted.sum()),
        "corrected": int((~accepted).sum()),
        "clicks_saved": int(accepted.sum()),
        "acceptance_per_block": blocks,
        "rest_accuracy": {str(k): round(v, 4) for k, v in curve.items()},
        "labels_to_reach": {f"{t:.2f}": labels_to_reach(curve, t) for t in TARGETS},
        "fits": fits,
        "fit_seconds": round(fit_seconds, 2),
        "predict_seconds": round(predict_seconds, 2),
        "replay_seconds": round(time.perf_counter() - t0, 2),
        "replay_cpu_seconds": round(time.process_time() - c0, 2),
        "feature_seconds": round(feats.seconds, 2),
        "feature_cpu_seconds": round(feats.cpu_seconds, 2),
        "live_evaluation": store_evaluation(store, pid),
        "accepted_trace": accepted.astype(np.int8).tolist(),
        "bulk_accept": bulk,
    }


def store_evaluation(store: Store, pid: int) -> dict[str, Any]:
    """Totals of what the live evaluation recorded during the replay (must agree with the replay's count)."""
    return evaluation_summary(store, pid)["total"]


def labels_to_reach(curve: dict[int, float], target: float) -> int | None:
    """Fewest labels after which the rest accuracy was at least ``target`` (None: never)."""
    for n in sorted(curve):
        if curve[n] >= target:
            return n
    return None

