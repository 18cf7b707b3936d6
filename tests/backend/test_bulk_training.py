"""How bulk encoding trains a project's encoder: channels from a random sample across the whole project
(not its first images), and the configured step budget."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from backend import bulk
from backend.config import Config
from backend.store import Store
from encoder.decode import channel_sample, choose_channels
from tests.encoder.conftest import png_bytes


def class_ordered_folder(root: Path, gray: int = 80, colour: int = 40) -> Path:
    """An import in class order: a grayscale class first (more files than the old 64-image window), then colour."""
    rng = np.random.default_rng(0)
    root.mkdir()
    for i in range(gray):
        (root / f"a_gray_{i:03d}.png").write_bytes(png_bytes(rng.integers(0, 255, (20, 20))))
    for i in range(colour):
        rgb = np.zeros((20, 20, 3), np.uint8)
        rgb[..., i % 3] = rng.integers(100, 255, (20, 20))
        (root / f"b_colour_{i:03d}.png").write_bytes(png_bytes(rgb))
    return root


def test_channel_sample_is_seeded_and_spread_over_the_project() -> None:
    idx = channel_sample(1000, 64, seed=0)
    assert idx == channel_sample(1000, 64, seed=0) and idx != channel_sample(1000, 64, seed=1)
    assert len(set(idx)) == 64 and idx == sorted(idx) and max(idx) > 500
    assert channel_sample(10, 64) == list(range(10))


def test_a_class_ordered_import_with_a_gray_first_class_is_encoded_as_rgb(tmp_path: Path, config: Config,
                                                                         store: Store) -> None:
    folder = class_ordered_folder(tmp_path / "imgs")
    files = sorted(folder.glob("*.png"))
    # The first 64 files are all gray: the old rule (the first images) would have chosen one channel.
    assert choose_channels([f.read_bytes() for f in files[:64]]) == 1
    summary = bulk.encode_project(bulk.EncodeOptions(project=5, images=str(folder), progress=False, epochs=1),
                                  config=config, store=store)
    assert summary.encoded == 120 and not summary.failed
    assert store.current_encoder(5) is not None
    from encoder.artifact import EncoderArtifact

    artifact = EncoderArtifact.from_bytes(store.encoder_blob(5, summary.version))
    assert artifact.channels == 3


def test_bulk_encoding_trains_with_the_configured_step_budget(tmp_path: Path, config: Config, store: Store) -> None:
    folder = class_ordered_folder(tmp_path / "imgs", gray=30, colour=10)
    cfg = dataclasses.replace(config, encoder_steps=7, encoder_min_steps=7, encoder_max_seconds=0)
    summary = bulk.encode_project(bulk.EncodeOptions(project=6, images=str(folder), progress=False),
                                  config=cfg, store=store)
    meta = store.current_encoder(6)
    assert summary.encoded == 40 and meta is not None
    from encoder.artifact import EncoderArtifact

    info = EncoderArtifact.from_bytes(store.encoder_blob(6, summary.version)).info
    assert info["steps_run"] == 7 and info["stopped"] == "steps" and info["budget"]["max_seconds"] is None
    # An explicit option wins over the configuration.
    again = bulk.encode_project(bulk.EncodeOptions(project=6, images=str(folder), progress=False, retrain=True,
                                                   steps=3), config=cfg, store=store)
    assert EncoderArtifact.from_bytes(store.encoder_blob(6, again.version)).info["steps_run"] == 3
