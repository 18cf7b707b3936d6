"""Vectors for the study's images: raw pixels, PCA, or an encoder trained (unsupervised) on the images."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from backend.study.datasets import Dataset
from backend.study.options import StudyOptions


@dataclass
class Features:
    name: str
    vectors: np.ndarray
    seconds: float
    info: dict = field(default_factory=dict)
    cpu_seconds: float = 0.0


def make_features(kind: str, ds: Dataset, opts: StudyOptions) -> Features:
    """Vectors for every image (``kind``: ``raw``, ``pca`` or an encoder objective).

    Wall and CPU seconds are both kept: the machine may be shared, and CPU time shows the work itself.
    """
    t0, c0 = time.perf_counter(), time.process_time()
    feats = _compute_features(kind, ds, opts, t0)
    feats.cpu_seconds = time.process_time() - c0
    return feats


def _compute_features(kind: str, ds: Dataset, opts: StudyOptions, t0: float) -> Features:
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
        steps=opts.steps,
        min_steps=opts.min_steps,
        max_seconds=opts.max_seconds or 0,  # no wall-clock cap unless asked: numbers independent of load
        patience=opts.patience,
        epochs=opts.epochs,
        batch_size=opts.encoder_batch,
        seed=opts.seed,
        progress=opts.progress,
        threads=opts.threads,
        objective_options={"policy": opts.augment} if opts.augment != "auto" and kind != "autoencoder" else None,
    )
    vec = art.encode(ds.images)
    keep = ("steps_run", "epochs_run", "best_step", "stopped", "budget", "batch_size", "train_seconds", "device")
    info = {k: art.info.get(k) for k in keep}
    return Features(kind, vec, time.perf_counter() - t0, info)
