"""backend.encoding.encode_missing: on-the-fly encoding with the project's encoder from Redis."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from backend import encoding
from backend.config import Config
from backend.labelstudio import LabelStudioAccess, label_studio_access
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
    # What /setup saved (no LABEL_STUDIO_URL configured): Label Studio's address and the creator's legacy key
    # as one pair; the label config's image key. The fake is on loopback: an untrusted /setup host passes
    # the private-address check only with DALT_ALLOW_PRIVATE_NETWORKS.
    store.save_project(3, setup_access={"hostname": fake_ls.url, "access_token": fake_ls.legacy_key}, image_key="img")
    config = dataclasses.replace(config, allow_private_networks=True)
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


SETUP = {"setup_access": {"hostname": "http://x", "access_token": "t"}}


@pytest.mark.parametrize(
    ("url", "key", "expected"),
    [
        ("http://ls:8080", "cfg-key", LabelStudioAccess("http://ls:8080", "cfg-key", True)),  # /setup ignored
        ("http://ls:8080", "", LabelStudioAccess("http://ls:8080", None, True)),  # never /setup's token
        ("", "cfg-key", LabelStudioAccess("http://x", "t", False)),  # the key alone never travels
        ("", "", LabelStudioAccess("http://x", "t", False)),  # /setup's pair, untrusted
    ],
)
def test_a_key_travels_only_with_the_url_it_was_configured_with(config: Config, url, key, expected) -> None:
    cfg = dataclasses.replace(config, label_studio_url=url, label_studio_api_key=key)
    assert label_studio_access(cfg, SETUP) == expected
    assert label_studio_access(cfg, {}) == (expected if url else LabelStudioAccess(None, None, False))
    assert "cfg-key" not in repr(label_studio_access(cfg, SETUP))  # never in a log line through repr()


def test_fetch_settings_carry_the_access_and_the_configured_limits() -> None:
    cfg = dataclasses.replace(Config(), label_studio_url="http://ls:8080", label_studio_api_key="cfg-key",
                              fetch_timeout=4.0, max_image_bytes=123, max_image_pixels=456,
                              allowed_hosts=("a.example",), allow_private_networks=True, local_files_root="/data")
    s = label_studio_access(cfg, SETUP).fetch_settings(cfg)
    assert (s.ls_url, s.api_key, s.ls_trusted, s.timeout, s.max_bytes, s.max_pixels, s.allowed_hosts) == (
        "http://ls:8080", "cfg-key", True, 4.0, 123, 456, ("a.example",))
    assert s.allow_private_networks and s.local_files_root == "/data" and s.local_files_scope == ()
    untrusted = label_studio_access(Config(), SETUP).fetch_settings(Config())
    assert (untrusted.ls_url, untrusted.api_key, untrusted.ls_trusted) == ("http://x", "t", False)
    assert Config().fetch_settings().ls_url is None and Config().fetch_settings().local_files_root is None


def test_the_reconcile_path_does_not_import_torch() -> None:
    import subprocess
    import sys

    code = "import backend.reconcile, backend.jobs, sys; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
