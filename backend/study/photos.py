"""The study's colour-photo dataset: patches of scikit-image's bundled photos, one class per photo.

Why: MNIST and scikit-learn's digits are small grayscale glyphs; real projects are often colour photos,
imported one class folder after another. This dataset is built offline (the photos ship inside the
scikit-image wheel), is reproducible from a seed, and is written like a user's folder: PNG files and a
``labels.csv`` in class order, the six grayscale photos first, so the first images of the project are all
grayscale although most classes are colour (what made channel choice from the first images pick gray).

Each patch is a random square crop (30-60% of the photo's shorter side), resized to ``size`` pixels,
mirrored with probability 1/2 and turned by a random multiple of 90 degrees.
"""

from __future__ import annotations

import csv
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

# Class order of labels.csv: grayscale photos first, then colour ones.
PHOTOS = ("camera", "moon", "text", "clock", "microaneurysms", "horse", "astronaut", "rocket", "logo", "colorwheel")


def default_cache() -> Path:
    """Where built datasets are kept (``$XDG_CACHE_HOME/dalt/study``, else ``~/.cache/dalt/study``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "dalt" / "study"


def _photo(name: str) -> np.ndarray:
    """A bundled photo as ``uint8 [H, W, 3]`` (gray replicated, binary scaled, RGBA composed on white)."""
    import skimage.data

    a = np.asarray(getattr(skimage.data, name)())
    if a.dtype == bool:
        a = a.astype(np.uint8) * 255
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    if a.shape[2] == 4:
        alpha = a[:, :, 3:4].astype(np.float32) / 255.0
        a = (a[:, :, :3] * alpha + 255.0 * (1 - alpha)).astype(np.uint8)
    return np.ascontiguousarray(a[:, :, :3])


def _patches(photo: np.ndarray, n: int, size: int, rng: np.random.Generator) -> list[np.ndarray]:
    from PIL import Image

    h, w = photo.shape[:2]
    out = []
    for _ in range(n):
        side = max(8, int(rng.uniform(0.3, 0.6) * min(h, w)))
        y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
        crop = Image.fromarray(photo[y : y + side, x : x + side]).resize((size, size), Image.Resampling.BILINEAR)
        arr = np.asarray(crop)
        if rng.random() < 0.5:
            arr = arr[:, ::-1]
        out.append(np.ascontiguousarray(np.rot90(arr, int(rng.integers(0, 4)))))
    return out


def build_photos(root: Path, per_class: int = 200, size: int = 64, seed: int = 0) -> Path:
    """Write the dataset into ``root`` (PNG files and a class-ordered ``labels.csv``); the same seed, the same files.

    The folder is built beside ``root`` and renamed into place, so an interrupted build leaves nothing half
    written; an existing ``root`` with a ``labels.csv`` is reused as is.
    """
    from PIL import Image

    if (root / "labels.csv").is_file():
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}-", dir=root.parent))
    try:
        rows = []
        for k, name in enumerate(PHOTOS):
            rng = np.random.default_rng([seed, k])
            for i, patch in enumerate(_patches(_photo(name), per_class, size, rng)):
                file = f"{k:02d}-{name}-{i:04d}.png"
                Image.fromarray(patch).save(tmp / file, format="PNG")
                rows.append((file, name))
        with open(tmp / "labels.csv", "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["file", "label"])
            writer.writerows(rows)
        try:
            tmp.rename(root)
        except OSError:  # built meanwhile by another run: keep theirs
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return root


def photos_folder(per_class: int = 200, size: int = 64, seed: int = 0, cache: Path | None = None) -> Path:
    """The dataset's folder in the cache, built on first use."""
    root = (cache or default_cache()) / f"photos-n{per_class}-s{size}-seed{seed}"
    return build_photos(root, per_class, size, seed)
