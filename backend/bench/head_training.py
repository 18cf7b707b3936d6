"""Training benchmark: the head over cached embeddings against fine-tuning a CNN on raw pixels.

Both sides get one CPU thread, the same labeled MNIST digits and the same held-out test digits; the CNN
(the autoencoder's own encoder plus a linear layer, initialised from the trained encoder, so it is a real
fine-tune) trains epoch by epoch until it matches the head's test accuracy.
"""

from __future__ import annotations

import time

import numpy as np
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from backend.bench.common import Section, ratio
from backend.bench.data import as_input, mnist, mnist_encoder

TEST = 1_000


def _fit_head(X: np.ndarray, y: np.ndarray) -> tuple[object, float]:
    from backend.heads import fit_head

    classes = [str(c) for c in range(10)]
    labels = [str(v) for v in y]
    with threadpool_limits(1):
        t0 = time.perf_counter()
        head = fit_head("logreg", X, labels, classes)
        return head, time.perf_counter() - t0


def _head_accuracy(head, X: np.ndarray, y: np.ndarray) -> float:
    pred, _ = head.predict(X)
    return float(np.mean(np.array(pred) == np.array([str(v) for v in y])))


def finetune_cnn(artifact, X: np.ndarray, y: np.ndarray, Xt: np.ndarray, yt: np.ndarray, target: float,
                 max_seconds: float, progress: bool) -> dict:
    """Fine-tune encoder + linear layer on raw pixels until test accuracy >= ``target``; times exclude evals."""
    import copy

    import torch
    from torch import nn

    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(0)
        net = nn.Sequential(copy.deepcopy(artifact.model), nn.Linear(artifact.dim, 10))
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        data, target_t = torch.from_numpy(X), torch.from_numpy(y)
        test = torch.from_numpy(Xt)
        rng = np.random.default_rng(0)
        spent, acc, epoch = 0.0, 0.0, 0
        bar = tqdm(desc=f"CNN fine-tune on {len(y)} labels", unit="epoch", disable=not progress)
        while spent < max_seconds:
            epoch += 1
            net.train()
            t0 = time.perf_counter()
            order = torch.from_numpy(rng.permutation(len(y)))
            for s in range(0, len(y), 64):
                idx = order[s : s + 64]
                if len(idx) < 2:
                    continue
                loss = nn.functional.cross_entropy(net(data[idx]), target_t[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            spent += time.perf_counter() - t0
            net.eval()
            with torch.inference_mode():
                acc = float((net(test).argmax(1).numpy() == yt).mean())
            bar.update(1)
            bar.set_postfix(acc=f"{acc:.3f}", target=f"{target:.3f}")
            if acc >= target:
                break
        bar.close()
        return {"seconds": round(spent, 3), "epochs": epoch, "accuracy": round(acc, 4), "reached": acc >= target}
    finally:
        torch.set_num_threads(prev)


def bench_training(quick: bool, progress: bool) -> Section:
    """Item 4: head fit time at 1k/10k/100k labeled embeddings; CNN fine-tune to the same accuracy."""
    sec = Section("training")
    images, y = mnist()
    artifact, enc_s = mnist_encoder(*((1, 2, 1_000) if quick else (6,)))
    X = as_input(images)
    E = artifact.encode(X)
    Et, yt, Xt = E[-TEST:], y[-TEST:], X[-TEST:]
    pool_E, pool_y, pool_X = E[:-TEST], y[:-TEST], X[:-TEST]
    sec.row(f"autoencoder training ({artifact.info.get('samples')} digits, unsupervised, 2 threads)",
            f"{enc_s:.1f} s ({artifact.info.get('epochs_run')} epochs)", "one-off, before any label")
    compare = [1_000] if quick else [1_000, 4_000]
    data: dict = {"encoder_seconds": round(enc_s, 2), "encoder_epochs": artifact.info.get("epochs_run"),
                  "compare": {}, "head_fit": {}}
    for n in compare:
        head, fit_s = min((_fit_head(pool_E[:n], pool_y[:n]) for _ in range(3)), key=lambda hs: hs[1])
        acc = _head_accuracy(head, Et, yt)
        cnn = finetune_cnn(artifact, pool_X[:n], pool_y[:n], Xt, yt, acc, 20 if quick else 90, progress)
        r = ratio(cnn["seconds"], fit_s)
        data["compare"][n] = {"head_seconds": round(fit_s, 4), "head_accuracy": round(acc, 4), "cnn": cnn,
                              "cnn_over_head": r}
        reached = "" if cnn["reached"] else " (never reached: ratio is a lower bound)"
        sec.row(f"head fit on {n} MNIST labels -> test acc", f"{fit_s * 1000:.0f} ms -> {acc:.3f}",
                f"CNN fine-tune {cnn['seconds']:.1f} s / {cnn['epochs']} epochs -> {cnn['accuracy']:.3f}: "
                f"x{r}{reached}")
    # Larger label counts: MNIST embeddings resampled with a little jitter (the sample has 5,000 digits).
    rng = np.random.default_rng(1)
    for n in ([1_000, 10_000] if quick else [1_000, 10_000, 100_000]):
        idx = rng.integers(0, len(pool_y), size=n)
        Xn = pool_E[idx] + rng.normal(0, 0.05, size=(n, E.shape[1])).astype(np.float32) * pool_E.std(0)
        _, fit_s = _fit_head(Xn, pool_y[idx])
        data["head_fit"][n] = round(fit_s, 4)
        sec.row(f"head fit on {n} labeled embeddings (1 thread)", f"{fit_s:.3f} s", "")
    sec.data = data
    return sec
