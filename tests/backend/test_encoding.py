"""backend.encoding.encode_missing: on-the-fly encoding with the project's encoder from Redis."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from backend import encoding
from backend.config import Config
from backend.labelstudio import label_studio_access
from backend.store import Store
from encoder.artifact import EncoderArtifact
from encoder.decode import decode_image
from encoder.model import ConvEncoder
from tests.encoder import conftest as encoder_fixtures
from tests.encoder.fake_ls import FakeLabelStudio

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
    assert label_studio_access(cfg, {"hostname": "http://x", "access_token": "t"}) == (
        "http://ls:8080",
        "cfg-key",
    )
    assert label_studio_access(config, {"hostname": "http://x", "access_token": "t"}) == ("http://x", "t")
    assert label_studio_access(config, {}) == (None, None)


def test_fetch_settings_come_from_the_config_and_setup_can_override_the_label_studio_access() -> None:
    import dataclasses

    cfg = dataclasses.replace(Config(), label_studio_url="http://ls:8080", label_studio_api_key="cfg-key",
                              fetch_timeout=4.0, max_image_bytes=123, max_image_pixels=456,
                              allowed_hosts=("a.example",), allow_private_networks=True, local_files_root="/data")
    s = cfg.fetch_settings()
    assert (s.ls_url, s.api_key, s.timeout, s.max_bytes, s.max_pixels, s.allowed_hosts) == (
        "http://ls:8080", "cfg-key", 4.0, 123, 456, ("a.example",))
    assert s.allow_private_networks and s.local_files_root == "/data"
    explicit = cfg.fetch_settings("http://other", "k2")  # e.g. what /setup saved for the project
    assert (explicit.ls_url, explicit.api_key) == ("http://other", "k2")
    assert Config().fetch_settings().ls_url is None and Config().fetch_settings().local_files_root is None


def test_the_reconcile_path_does_not_import_torch() -> None:
    import subprocess
    import sys

    code = "import backend.reconcile, backend.jobs, sys; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
