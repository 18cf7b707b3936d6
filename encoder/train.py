"""Train an encoder on a project's own images, with early stopping on a held-out split.

Unsupervised: only images, no labels. The objective (see :mod:`encoder.objectives`) decides what the
encoder learns; the paper's is ``"autoencoder"``. Training is budgeted in optimizer steps with a floor
and a wall-clock cap (:class:`encoder.settings.TrainBudget`): small projects get as many steps as large
ones, and early stopping (every ``eval_every`` steps on the held-out split) cannot end a run before the
floor. The best evaluation's weights are kept, so a long budget cannot overfit past the point where
validation stopped improving.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from encoder.artifact import EncoderArtifact
from encoder.model import ConvEncoder
from encoder.registry import get_objective
from encoder.settings import TrainBudget


def _threads() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _budget(budget: TrainBudget | None, overrides: dict[str, Any]) -> TrainBudget:
    base = budget or TrainBudget()
    given = {k: v for k, v in overrides.items() if v is not None}
    return replace(base, **given) if given else base


def train_encoder(
    images: np.ndarray,
    *,
    objective: str = "autoencoder",
    latent_dim: int = 32,
    budget: TrainBudget | None = None,
    steps: int | None = None,
    min_steps: int | None = None,
    max_seconds: float | None = None,
    patience: int | None = None,
    eval_every: int | None = None,
    epochs: int | None = None,
    batch_size: int = 256,
    lr: float = 1e-3,
    device: str | None = None,
    seed: int = 0,
    progress: bool = True,
    val_fraction: float = 0.1,
    threads: int | None = None,
    objective_options: dict[str, Any] | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> EncoderArtifact:
    """Train an encoder and return it as an artifact.

    Args:
        images: preprocessed ``float32 [N, C, S, S]`` in [0, 1] (see :func:`encoder.decode.decode_image`).
        objective: a name in :data:`encoder.registry.OBJECTIVES`.
        latent_dim: length of the vectors.
        budget: steps, floor, wall-clock cap, patience (default :class:`TrainBudget`'s defaults).
        steps, min_steps, max_seconds, patience, eval_every, epochs: override one field of ``budget``.
        batch_size: images per step.
        lr: Adam learning rate.
        device: ``"cuda"``, ``"cpu"``, ...; default CUDA when available.
        seed: makes the split, the initial weights and the batch order reproducible.
        progress: show a tqdm bar per run (steps, loss).
        val_fraction: share of images held out for early stopping (none when fewer than 20 images).
        threads: torch CPU threads (default: the CPUs this process may use); restored afterwards.
        objective_options: keyword arguments for the objective's constructor.
        clock: seconds for the wall-clock cap (tests pass a fake one).

    Returns:
        The best encoder by validation loss; ``info`` holds steps and epochs run, why training stopped,
        losses per evaluation, seconds, sample count.
    """
    plan = _budget(budget, {"steps": steps, "min_steps": min_steps, "max_seconds": max_seconds,
                            "patience": patience, "eval_every": eval_every, "epochs": epochs})
    images = np.ascontiguousarray(images, dtype=np.float32)
    if images.ndim != 4 or images.shape[2] != images.shape[3]:
        raise ValueError(f"images must be [N, C, S, S], not {list(images.shape)}")
    n, channels, size = images.shape[0], images.shape[1], images.shape[2]
    if n < 2:
        raise ValueError("at least 2 images are needed to train an encoder")
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    prev_threads = torch.get_num_threads()
    torch.set_num_threads(threads or _threads())
    t0 = clock()
    w0 = time.perf_counter()
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
        best_loss, best_state, best_step, best_epoch, stale = float("inf"), None, 0, 0, 0
        history: list[dict[str, float]] = []
        step, epoch, stopped = 0, 0, "steps"
        total, seen = 0.0, 0
        bar = tqdm(total=plan.steps, desc=f"train {objective}", unit="step", disable=not progress)

        def evaluate() -> bool:
            """Record an evaluation; True when early stopping says stop."""
            nonlocal best_loss, best_state, best_step, best_epoch, stale, total, seen
            train_loss = total / max(seen, 1)
            total, seen = 0.0, 0
            obj.eval()
            if val is not None:
                val_loss = sum(
                    float(obj.validation_loss(val[s : s + 1024])) * len(val[s : s + 1024])
                    for s in range(0, n_val, 1024)
                ) / n_val
            else:
                val_loss = train_loss
            obj.train()
            history.append({"step": step, "epoch": epoch, "train_loss": train_loss, "val_loss": val_loss})
            bar.set_postfix(loss=f"{train_loss:.4f}", val=f"{val_loss:.4f}")
            if val_loss < best_loss * (1 - 1e-4):
                best_loss, best_step, best_epoch, stale = val_loss, step, epoch, 0
                best_state = {k: v.detach().cpu().clone() for k, v in encoder.state_dict().items()}
                return False
            stale += 1
            return step >= plan.min_steps and stale >= plan.patience

        obj.train()
        while stopped == "steps" and step < plan.steps:
            if plan.epochs is not None and epoch >= plan.epochs:
                stopped = "epochs"
                break
            epoch += 1
            perm = torch.from_numpy(rng.permutation(train_idx))
            for start in range(0, len(perm), batch_size):
                idx = perm[start : start + batch_size]
                if len(idx) < 2:  # BatchNorm needs two samples
                    continue
                batch = data[idx].to(dev, non_blocking=True)
                loss = obj(batch)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                step += 1
                bar.update(1)
                total += float(loss.detach()) * len(idx)
                seen += len(idx)
                if step % plan.eval_every == 0 and evaluate() and step < plan.steps:
                    stopped = "early"
                    break
                if plan.max_seconds and clock() - t0 >= plan.max_seconds:
                    stopped = "time"
                    break
                if step >= plan.steps:
                    break
        if seen or not history:
            evaluate()  # the last steps since the previous evaluation count too
        bar.close()
        if best_state is not None:
            encoder.load_state_dict(best_state)
        info = {
            "steps_run": step,
            "epochs_run": epoch,
            "best_step": best_step,
            "best_epoch": best_epoch,
            "stopped": stopped,
            "budget": {"steps": plan.steps, "min_steps": plan.min_steps, "max_seconds": plan.max_seconds,
                       "patience": plan.patience, "eval_every": plan.eval_every, "epochs": plan.epochs},
            "batch_size": batch_size,
            "best_val_loss": best_loss,
            "first_train_loss": history[0]["train_loss"] if history else None,
            "last_train_loss": history[-1]["train_loss"] if history else None,
            "train_seconds": round(time.perf_counter() - w0, 3),
            "samples": n,
            "history": history,
            "device": str(dev),
            "trained_at": time.time(),
        }
        return EncoderArtifact(encoder.cpu(), objective=objective, info=info)
    finally:
        torch.set_num_threads(prev_threads)
