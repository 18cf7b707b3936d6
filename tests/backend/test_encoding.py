"""backend.encoding.encode_missing: on-the-fly encoding with the project's encoder from Redis."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from backend import encoding
from backend.config import Config
from backend.store import Store
from encoder.artifact import EncoderArtifact
from encoder.decode import decode_image
from encoder.model import ConvEncoder
from tests.encoder import conftest as encoder_fixtures
from tests.fake_label_studio import FakeLabelStudio

digit_pngs = encoder_fixtures.digit_pngs
fake_ls = encoder_fixtures.fake_ls
mnist_small = encoder_fixtures.mnist_small


@pytest.fixture
def artifact() -> EncoderArtifact:
    torch.manual_seed(0)
    return EncoderArtifact(ConvEncoder(1, 28, 8), objective="autoencoder")


def test_no_encoder_means_nothing_encoded(store: Store, config: Config) -> None:
    assert encoding.encode_missing(store, config, 5, [{"id": 1, "data": {"image": "/data/upload/1/x.png"}}]) == {}


def test_encodes_with_setup_credentials_stores_and_caches(
    store: Store, config: Config, fake_ls: FakeLabelStudio, artifact: EncoderArtifact, digit_pngs, monkeypatch
) -> None:
    store.put_encoder(3, artifact.version, artifact.to_bytes(), artifact.meta())
    # What /setup saved: Label Studio's address and the creator's legacy key; the label config's image key.
    store.save_project(3, hostname=fake_ls.url, access_token=fake_ls.legacy_key, image_key="img")
    loads = []
    real = EncoderArtifact.from_bytes
    monkeypatch.setattr(EncoderArtifact, "from_bytes", classmethod(lambda cls, b: loads.append(1) or real(b)))
    tasks = [
        {"id": 1, "data": {"other": "x", "img": "/data/upload/1/93470f75-up_zero.png"}},
        {"id": 2, "data": {"img": "/data/upload/1/missing.png"}},
        {"id": 3, "data": {"img": "/data/local-files/?d=images/loc_zero.png"}},
    ]
    out = encoding.encode_missing(store, config, 3, tasks)
    assert sorted(out) == [1, 3]
    np.testing.assert_allclose(out[1], artifact.encode(decode_image(digit_pngs[0])[None])[0], rtol=1e-5, atol=1e-6)
    vecs, found = store.get_embeddings(3, artifact.version, [1, 2, 3])
    assert found.tolist() == [True, False, True]
    np.testing.assert_allclose(vecs[0], out[1], atol=2e-2)  # stored as float16
    assert fake_ls.requests[-1].headers["Authorization"] == f"Token {fake_ls.legacy_key}"

    encoding.encode_missing(store, config, 3, tasks[:1])
    assert len(loads) <= 1  # loaded from Redis at most once per (project, version), then cached


def test_configured_key_wins_over_setup(config: Config) -> None:
    import dataclasses

    cfg = dataclasses.replace(config, label_studio_url="http://ls:8080", label_studio_api_key="cfg-key")
    assert encoding.label_studio_access(cfg, {"hostname": "http://x", "access_token": "t"}) == (
        "http://ls:8080",
        "cfg-key",
    )
    assert encoding.label_studio_access(config, {"hostname": "http://x", "access_token": "t"}) == ("http://x", "t")
    assert encoding.label_studio_access(config, {}) == (None, None)
