"""The network's shapes, the objective registry, training on MNIST, and the artifact round trip."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from encoder.artifact import EncoderArtifact
from encoder.model import ConvAutoencoder, ConvEncoder
from encoder.objectives import Objective
from encoder.registry import OBJECTIVES, get_objective
from encoder.train import train_encoder


@pytest.fixture(scope="module")
def digits(mnist_small) -> np.ndarray:
    return (mnist_small[0][:400, None] / 255.0).astype(np.float32)


@pytest.fixture(scope="module")
def trained(digits: np.ndarray) -> EncoderArtifact:
    return train_encoder(digits, steps=48, eval_every=6, patience=10, latent_dim=16, batch_size=64, progress=False)


@pytest.mark.parametrize("channels, size", [(1, 28), (3, 32), (1, 64), (3, 17)])
def test_autoencoder_shapes(channels: int, size: int) -> None:
    model = ConvAutoencoder(channels, size, latent_dim=8).eval()
    x = torch.rand(2, channels, size, size)
    with torch.no_grad():
        assert model.encoder(x).shape == (2, 8)
        y = model(x)
    assert y.shape == x.shape and float(y.min()) >= 0 and float(y.max()) <= 1


def test_autoencoder_loss_falls_on_mnist(trained: EncoderArtifact) -> None:
    hist = trained.info["history"]
    assert len(hist) == 8  # patience 10: every evaluation runs
    assert hist[-1]["train_loss"] < 0.6 * hist[0]["train_loss"]
    assert hist[-1]["val_loss"] < hist[0]["val_loss"]
    assert trained.objective == "autoencoder" and trained.dim == 16


def test_artifact_round_trip_gives_identical_encodings(trained: EncoderArtifact, digits: np.ndarray) -> None:
    blob = trained.to_bytes()
    loaded = EncoderArtifact.from_bytes(blob)
    assert loaded.version == trained.version and loaded.version.startswith("enc-autoencoder-")
    assert (loaded.dim, loaded.image_size, loaded.channels) == (16, 28, 1)
    a, b = trained.encode(digits[:50]), loaded.encode(digits[:50])
    assert a.shape == (50, 16) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    # Another batch size may pick other convolution kernels: equal up to float rounding.
    np.testing.assert_allclose(loaded.encode(digits[:50], batch_size=7), a, rtol=1e-4, atol=1e-4)
    meta = loaded.meta()
    assert meta["dim"] == 16 and meta["objective"] == "autoencoder"
    import json

    json.dumps(meta)


def test_encodings_separate_digits(trained: EncoderArtifact, digits: np.ndarray, mnist_small) -> None:
    """The latent space holds class information: nearest-neighbour accuracy well above chance (10%)."""
    z = trained.encode(digits)
    y = mnist_small[1][:400]
    d = ((z[:, None] - z[None]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    assert (y[d.argmin(1)] == y).mean() > 0.5


def test_version_changes_with_weights(digits: np.ndarray) -> None:
    a = train_encoder(digits[:60], epochs=1, seed=1, progress=False)
    b = train_encoder(digits[:60], epochs=1, seed=2, progress=False)
    assert a.version != b.version


def test_from_bytes_refuses_garbage_and_pickled_objects() -> None:
    with pytest.raises(ValueError):
        EncoderArtifact.from_bytes(b"not a torch file")

    buf = io.BytesIO()
    torch.save({"format": 1, "config": {}, "state": {}, "evil": _Evil()}, buf)
    with pytest.raises(ValueError, match="not a loadable"):
        EncoderArtifact.from_bytes(buf.getvalue())


class _Evil:
    def __reduce__(self):
        return (print, ("unpickled!",))


def test_encode_checks_shape(trained: EncoderArtifact) -> None:
    with pytest.raises(ValueError, match="shape"):
        trained.encode(np.zeros((2, 3, 28, 28), np.float32))


def test_registry_plugs_in_an_objective_that_sees_the_raw_batch(digits: np.ndarray) -> None:
    seen: list[torch.Tensor] = []

    class Denoise(Objective):
        def __init__(self, encoder: ConvEncoder, noise: float = 0.1):
            super().__init__(encoder)
            self.noise = noise
            self.head = torch.nn.Linear(encoder.latent_dim, 28 * 28)

        def forward(self, batch: torch.Tensor) -> torch.Tensor:
            seen.append(batch)
            noisy = (batch + self.noise * torch.randn_like(batch)).clamp(0, 1)
            out = torch.sigmoid(self.head(self.encoder(noisy))).view_as(batch)
            return torch.nn.functional.mse_loss(out, batch)

    OBJECTIVES["test-denoise"] = Denoise  # the registry is a plain dict: adding an objective is one entry
    try:
        art = train_encoder(
            digits[:100], objective="test-denoise", epochs=2, progress=False, objective_options={"noise": 0.2}
        )
        assert art.version.startswith("enc-test-denoise-") and art.objective == "test-denoise"
        assert seen and float(seen[0].min()) >= 0 and float(seen[0].max()) <= 1  # raw, unaugmented
        assert get_objective("test-denoise") is Denoise
    finally:
        OBJECTIVES.pop("test-denoise", None)
    with pytest.raises(KeyError, match="autoencoder"):
        get_objective("no-such-objective")


def test_artifacts_of_the_original_two_conv_network_still_load():
    import numpy as np

    from encoder.artifact import EncoderArtifact
    from encoder.model import ConvEncoder

    images = np.random.default_rng(0).random((4, 1, 28, 28), dtype=np.float32)
    for pre in (False, True):
        art = EncoderArtifact(ConvEncoder(1, 28, 8, pre_convs=pre), objective="autoencoder")
        again = EncoderArtifact.from_bytes(art.to_bytes())
        assert again.model.pre_convs is pre and again.version == art.version
        np.testing.assert_allclose(again.encode(images), art.encode(images), rtol=1e-5)
