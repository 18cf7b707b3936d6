"""Augmentation policies: reproducible with a seed, shape and range kept, no flips for digits."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from encoder.augment import POLICIES, AugmentPolicy, augment, policy_for
from encoder.registry import get_objective
from encoder.train import train_encoder


def _gen(seed: int) -> torch.Generator:
    g = torch.Generator()
    g.manual_seed(seed)
    return g


@pytest.mark.parametrize("channels, policy", [(1, "digits"), (3, "photo")])
def test_same_seed_same_views_and_shape_and_range_kept(channels: int, policy: str) -> None:
    batch = torch.rand(6, channels, 20, 20)
    p = POLICIES[policy]
    a, b = augment(batch, p, _gen(1)), augment(batch, p, _gen(1))
    c = augment(batch, p, _gen(2))
    torch.testing.assert_close(a, b)
    assert not torch.allclose(a, c)
    assert a.shape == batch.shape and a.dtype == batch.dtype
    assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0
    assert not torch.allclose(a, batch)  # it does change the images


def test_auto_policy_follows_the_channels_and_unknown_names_fail() -> None:
    assert policy_for(1).name == "digits" and not policy_for(1).flip
    assert policy_for(3).name == "photo" and policy_for(3).flip and policy_for(3).crop
    assert policy_for(3, "digits").name == "digits"
    with pytest.raises(KeyError, match="known"):
        policy_for(1, "sideways")


def _left_bar(n: int) -> torch.Tensor:
    batch = torch.zeros(n, 1, 28, 28)
    batch[:, :, 6:22, 4:9] = 1.0  # a vertical stroke in the left third
    return batch


def test_digits_are_never_mirrored_but_flip_policies_mirror_about_half() -> None:
    batch = _left_bar(200)
    out = augment(batch, POLICIES["digits"], _gen(0))
    left, right = out[..., :14].sum(dim=(1, 2, 3)), out[..., 14:].sum(dim=(1, 2, 3))
    assert bool((left > right).all())
    flipped = augment(batch, AugmentPolicy("flip-only", flip=True), _gen(0))
    share = float((flipped[..., 14:].sum(dim=(1, 2, 3)) > flipped[..., :14].sum(dim=(1, 2, 3))).float().mean())
    assert 0.3 < share < 0.7


def test_photo_jitter_changes_colour_but_digits_policy_keeps_gray() -> None:
    rgb = torch.rand(8, 3, 16, 16)
    out = augment(rgb, POLICIES["photo"], _gen(3))
    assert out.shape == rgb.shape
    gray = torch.rand(8, 1, 16, 16)
    assert augment(gray, POLICIES["digits"], _gen(3)).shape == gray.shape


def test_augmented_autoencoder_is_registered_and_trains(mnist_small) -> None:
    assert get_objective("augmented-autoencoder").name == "augmented-autoencoder"
    images = (mnist_small[0][:200, None] / 255.0).astype(np.float32)
    art = train_encoder(images, objective="augmented-autoencoder", steps=12, eval_every=4, patience=10, latent_dim=8,
                        batch_size=50, progress=False, threads=1)
    hist = art.info["history"]
    assert art.objective == "augmented-autoencoder"
    assert hist[-1]["train_loss"] < hist[0]["train_loss"]
    assert art.encode(images[:5]).shape == (5, 8)


def _row_centres(batch: torch.Tensor) -> torch.Tensor:
    """x centre of mass of each image row that holds ink: ``[B, rows]``."""
    xs = torch.arange(batch.shape[-1], dtype=torch.float32)
    ink = batch[:, 0, 8:20]  # rows well inside the stroke
    return (ink * xs).sum(-1) / ink.sum(-1).clamp(min=1e-6)


def test_elastic_warp_bends_strokes_within_its_bound_while_a_shift_keeps_them_straight() -> None:
    batch = torch.zeros(64, 1, 28, 28)
    batch[:, :, 4:24, 12:16] = 1.0  # a vertical stroke
    shifted = augment(batch, AugmentPolicy("shift", translate=0.1), _gen(0))
    warped = augment(batch, AugmentPolicy("warp", elastic=0.1), _gen(0))
    assert float(_row_centres(shifted).std(dim=1).max()) < 0.05  # a rigid move: every row moved alike
    bend = _row_centres(warped).std(dim=1)
    assert float(bend.median()) > 0.3  # the stroke is no longer straight
    moved = (_row_centres(warped) - 13.5).abs()
    assert float(moved.max()) <= 0.1 * 28 + 1.0  # at most `elastic` of the side, plus interpolation


def test_pixel_noise_has_the_policy_strength_and_digits_policy_uses_it() -> None:
    grey = torch.full((16, 1, 28, 28), 0.5)
    out = augment(grey, AugmentPolicy("noise", noise=0.1), _gen(0))
    assert 0.09 < float(out.std()) < 0.11
    assert POLICIES["digits"].elastic > 0 and POLICIES["digits"].noise > 0
    assert POLICIES["photo"].elastic == 0  # photos keep their geometry: crops and flips only
