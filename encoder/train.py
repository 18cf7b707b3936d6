"""Train an encoder on a project's own images, with early stopping on a held-out split.

Unsupervised: only images, no labels. The objective (see :mod:`encoder.objectives`) decides what the
encoder learns; the paper's is ``"autoencoder"``. The best epoch on the held-out split is kept, so a
long ``epochs`` budget cannot overfit past the point where validation stopped improving.
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from encoder.artifact import EncoderArtifact
from encoder.model import ConvEncoder
from encoder.registry import get_objective


def _threads() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def train_encoder(
    images: np.ndarray,
    *,
    objective: str = "autoencoder",
    latent_dim: int = 32,
    epochs: int = 30,
    patience: int = 3,
    batch_size: int = 256,
    lr: float = 1e-3,
    device: str | None = None,
    seed: int = 0,
    progress: bool = True,
    val_fraction: float = 0.1,
    threads: int | None = None,
    objective_options: dict[str, Any] | None = None,
) -> EncoderArtifact:
    """Train an encoder and return it as an artifact.

    Args:
        images: preprocessed ``float32 [N, C, S, S]`` in [0, 1] (see :func:`encoder.decode.decode_image`).
        objective: a name in :data:`encoder.registry.OBJECTIVES`.
        latent_dim: length of the vectors.
        epochs: most passes over the training split.
        patience: stop after this many epochs without a better validation loss.
        batch_size: images per step.
        lr: Adam learning rate.
        device: ``"cuda"``, ``"cpu"``, ...; default CUDA when available.
        seed: makes the split, the initial weights and the batch order reproducible.
        progress: show a tqdm bar per run (epochs, loss).
        val_fraction: share of images held out for early stopping (none when fewer than 20 images).
        threads: torch CPU threads (default: the CPUs this process may use); restored afterwards.
        objective_options: keyword arguments for the objective's constructor.

    Returns:
        The best encoder by validation loss; ``info`` holds epochs run, losses, seconds, sample count.
    """
    images = np.ascontiguousarray(images, dtype=np.float32)
    if images.ndim != 4 or images.shape[2] != images.shape[3]:
        raise ValueError(f"images must be [N, C, S, S], not {list(images.shape)}")
    n, channels, size = images.shape[0], images.shape[1], images.shape[2]
    if n < 2:
        raise ValueError("at least 2 images are needed to train an encoder")
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    prev_threads = torch.get_num_threads()
    torch.set_num_threads(threads or _threads())
    t0 = time.perf_counter()
    try:
        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)
        order = rng.permutation(n)
        n_val = int(round(n * val_fraction)) if n >= 20 else 0
        val_idx, train_idx = order[:n_val], order[n_val:]
        data = torch.from_numpy(images)
        val = data[val_idx].to(dev) if n_val else None

        encoder = ConvEncoder(channels, size, latent_dim)
        obj = get_objective(objective)(encoder, **(objective_options or {})).to(dev)
        opt = torch.optim.Adam(obj.parameters(), lr=lr)
        best_loss, best_state, best_epoch, stale = float("inf"), None, 0, 0
        history: list[dict[str, float]] = []
        bar = tqdm(range(1, epochs + 1), desc=f"train {objective}", unit="epoch", disable=not progress)
        for epoch in bar:
            obj.train()
            perm = torch.from_numpy(rng.permutation(train_idx))
            total, seen = 0.0, 0
            for start in range(0, len(perm), batch_size):
                idx = perm[start : start + batch_size]
                if len(idx) < 2:  # BatchNorm needs two samples
                    continue
                batch = data[idx].to(dev, non_blocking=True)
                loss = obj(batch)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(idx)
                seen += len(idx)
            train_loss = total / max(seen, 1)
            obj.eval()
            if val is not None:
                val_loss = (
                    sum(
                        float(obj.validation_loss(val[s : s + 1024])) * len(val[s : s + 1024])
                        for s in range(0, n_val, 1024)
                    )
                    / n_val
                )
            else:
                val_loss = train_loss
            history.append({"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss})
            bar.set_postfix(loss=f"{train_loss:.4f}", val=f"{val_loss:.4f}")
            if val_loss < best_loss * (1 - 1e-4):
                best_loss, best_epoch, stale = val_loss, epoch, 0
                best_state = {k: v.detach().cpu().clone() for k, v in encoder.state_dict().items()}
            else:
                stale += 1
                if stale >= patience:
                    break
        bar.close()
        if best_state is not None:
            encoder.load_state_dict(best_state)
        info = {
            "epochs_run": len(history),
            "best_epoch": best_epoch,
            "best_val_loss": best_loss,
            "first_train_loss": history[0]["train_loss"] if history else None,
            "last_train_loss": history[-1]["train_loss"] if history else None,
            "train_seconds": round(time.perf_counter() - t0, 3),
            "samples": n,
            "history": history,
            "device": str(dev),
            "trained_at": time.time(),
        }
        return EncoderArtifact(encoder.cpu(), objective=objective, info=info)
    finally:
        torch.set_num_threads(prev_threads)
