"""A Label Studio key travels only with the URL it was configured with; /setup never redirects it.

The "attacker" is a second fake host on loopback that records every request and its headers; an
unauthenticated ``POST /setup`` names it as Label Studio's ``hostname``.
"""

from __future__ import annotations

import logging
from dataclasses import replace

import pytest
import torch

from backend import labelstudio
from backend.app import create_app
from backend.encoding import encode_missing
from backend.labelstudio import label_studio_access, local_storage_scope
from backend.reconcile import reconcile_project
from encoder.artifact import EncoderArtifact
from encoder.model import ConvEncoder
from tests.conftest import load_fixture
from tests.encoder import conftest as encoder_fixtures

digit_pngs = encoder_fixtures.digit_pngs
fake_ls = encoder_fixtures.fake_ls
foreign_host = encoder_fixtures.foreign_host
mnist_small = encoder_fixtures.mnist_small

SETUP = load_fixture("setup")["body"]
KEY = "REAL-KEY-0123456789-secret"
TASKS = [{"id": 7, "data": {"image": "/data/upload/1/93470f75-up_zero.png"}}]


@pytest.fixture
def encoder_in(store):
    """Put a small encoder into project 1 (so cache misses are downloaded and encoded)."""
    torch.manual_seed(0)
    art = EncoderArtifact(ConvEncoder(1, 28, 8), objective="autoencoder")
    return lambda: store.put_encoder(1, art.version, art.to_bytes(), art.meta())


def setup_naming(client, hostname: str, token: str | None = None) -> None:
    body = dict(SETUP, hostname=hostname)
    body.pop("access_token", None)
    if token is not None:
        body["access_token"] = token
    assert client.post("/setup", json=body).status_code == 200


def authorizations(host) -> list:
    return [r.headers.get("Authorization") for r in host.requests]


def test_a_key_without_its_url_never_goes_to_a_setup_hostname(config, store, encoder_in, foreign_host, caplog,
                                                              monkeypatch):
    """Only LABEL_STUDIO_API_KEY set; /setup names another host: downloads and the reconcile crawl never send the
    key there (private networks allowed, so only the credential rule can stop it)."""
    monkeypatch.setattr(labelstudio, "_logged", set())  # logged once per process: start afresh
    cfg = replace(config, label_studio_api_key=KEY, allow_private_networks=True)
    client = create_app(cfg, store=store).test_client()
    setup_naming(client, foreign_host.url)
    encoder_in()
    with caplog.at_level(logging.WARNING):
        encode_missing(store, cfg, 1, TASKS)
        reconcile_project(store, cfg, 1, force=True)
    assert foreign_host.requests, "the /setup host is used (with its own, empty, token)"
    assert all(KEY not in (a or "") for a in authorizations(foreign_host))
    assert "without LABEL_STUDIO_URL" in caplog.text and KEY not in caplog.text


def test_with_a_configured_url_setup_hostname_and_token_are_ignored(config, store, encoder_in, fake_ls, foreign_host,
                                                                    digit_pngs):
    cfg = replace(config, label_studio_url=fake_ls.url, label_studio_api_key=fake_ls.legacy_key,
                  allow_private_networks=True)
    client = create_app(cfg, store=store).test_client()
    setup_naming(client, foreign_host.url, token="attacker-token")
    assert "setup_access" not in store.project(1)  # not even saved
    encoder_in()
    assert list(encode_missing(store, cfg, 1, TASKS)) == [7]  # downloaded from the configured Label Studio
    assert foreign_host.requests == []
    assert authorizations(fake_ls) == [f"Token {fake_ls.legacy_key}"]


def test_a_setup_token_only_ever_goes_to_its_own_hostname(config, store, encoder_in, fake_ls, foreign_host):
    """Nothing configured: /setup's pair is used together; a later /setup replaces both, never pairs the old
    token with a new hostname."""
    cfg = replace(config, allow_private_networks=True)
    client = create_app(cfg, store=store).test_client()
    setup_naming(client, fake_ls.url, token=fake_ls.legacy_key)
    encoder_in()
    assert list(encode_missing(store, cfg, 1, TASKS)) == [7]
    setup_naming(client, foreign_host.url)  # no token: the old one must not follow
    encode_missing(store, cfg, 1, [{"id": 8, "data": TASKS[0]["data"]}])
    assert foreign_host.requests and authorizations(foreign_host) == [None]


def test_a_setup_hostname_is_checked_like_any_host(config, store, encoder_in, fake_ls):
    """Without DALT_ALLOW_PRIVATE_NETWORKS a /setup hostname on loopback (or a metadata address) is refused:
    /setup can never make a private address "Label Studio"."""
    client = create_app(config, store=store).test_client()
    setup_naming(client, fake_ls.url, token=fake_ls.legacy_key)
    encoder_in()
    assert encode_missing(store, config, 1, TASKS) == {}
    assert reconcile_project(store, config, 1, force=True).reason.startswith("Label Studio URL from /setup refused")
    assert fake_ls.requests == []
    setup_naming(client, "http://169.254.169.254", token="t")
    assert encode_missing(store, config, 1, TASKS) == {}


def test_local_storage_scope_comes_from_the_configured_label_studio_only(config, fake_ls, tmp_path):
    fake_ls.storages[1] = ["/ls/files/p1"]
    cfg = replace(config, label_studio_url=fake_ls.url, label_studio_api_key=fake_ls.legacy_key,
                  local_files_root=str(tmp_path))
    assert local_storage_scope(cfg, label_studio_access(cfg, {}), 1) == ("/ls/files/p1",)
    untrusted = label_studio_access(replace(cfg, label_studio_url=""), {"setup_access": {
        "hostname": fake_ls.url, "access_token": fake_ls.legacy_key}})
    assert local_storage_scope(cfg, untrusted, 1) == ()  # a /setup host could claim any path
