"""The contrastive objective: NT-Xent behaves, its loss falls on digits, validation is reproducible."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from encoder.artifact import EncoderArtifact
from encoder.contrastive import ContrastiveObjective, nt_xent
from encoder.model import ConvEncoder
from encoder.registry import get_objective
from encoder.train import train_encoder


def test_nt_xent_prefers_matching_pairs() -> None:
    torch.manual_seed(0)
    z = torch.randn(16, 8)
    matched = nt_xent(z, z + 0.01 * torch.randn(16, 8), 0.2)
    unmatched = nt_xent(z, torch.randn(16, 8), 0.2)
    assert float(matched) < 0.5 * float(unmatched)
    assert float(nt_xent(z, z[torch.randperm(16)], 0.2)) > float(matched)


def test_registered_with_options_and_bad_options_fail() -> None:
    cls = get_objective("contrastive")
    assert cls is ContrastiveObjective
    enc = ConvEncoder(3, 16, 8)
    obj = cls(enc, policy="photo", temperature=0.5)
    assert obj.policy.flip and obj.temperature == 0.5
    with pytest.raises(ValueError):
        cls(ConvEncoder(1, 16, 8), temperature=0)
    with pytest.raises(TypeError):
        cls(ConvEncoder(1, 16, 8), colour=True)


def test_validation_loss_is_reproducible() -> None:
    torch.manual_seed(0)
    obj = ContrastiveObjective(ConvEncoder(1, 16, 8)).eval()
    batch = torch.rand(12, 1, 16, 16)
    assert float(obj.validation_loss(batch)) == float(obj.validation_loss(batch))


def test_contrastive_loss_falls_on_mnist_and_only_the_encoder_is_saved(mnist_small) -> None:
    images = (mnist_small[0][:300, None] / 255.0).astype(np.float32)
    art = train_encoder(images, objective="contrastive", steps=20, eval_every=5, patience=10, latent_dim=16,
                        batch_size=64, progress=False, threads=1)
    hist = art.info["history"]
    assert hist[-1]["train_loss"] < 0.9 * hist[0]["train_loss"]
    assert hist[-1]["val_loss"] < hist[0]["val_loss"]
    loaded = EncoderArtifact.from_bytes(art.to_bytes())
    assert loaded.objective == "contrastive" and loaded.version.startswith("enc-contrastive-")
    assert not any(k.startswith("projection") for k in loaded.model.state_dict())
    assert loaded.encode(images[:4]).shape == (4, 16)
