"""Hostile and broken input gets a clear 4xx (or, inside a /predict batch, an empty result for
that task) and nothing recorded before is lost or changed."""

from __future__ import annotations

import json
import struct
import zlib
from dataclasses import replace

import pytest

from backend.app import create_app
from backend.encoding import encode_missing
from backend.training import train_project
from encoder.artifact import EncoderArtifact
from tests.conftest import CONFIG_XML, load_fixture
from tests.encoder import conftest as encoder_fixtures

digit_pngs = encoder_fixtures.digit_pngs
fake_ls = encoder_fixtures.fake_ls
foreign_host = encoder_fixtures.foreign_host
mnist_small = encoder_fixtures.mnist_small

SETUP = load_fixture("setup")["body"]
PREDICT = load_fixture("predict_request")["body"]
WEBHOOK = load_fixture("webhook_annotation_created")["body"]
DELETED = load_fixture("webhook_annotation_deleted")["body"]


def with_(body: dict, path: str, value: object) -> dict:
    """A deep copy of ``body`` with the dotted ``path`` set to ``value`` (``...`` deletes it)."""
    out = json.loads(json.dumps(body))
    *parents, last = path.split(".")
    node = out
    for p in parents:
        node = node[p]
    if value is ...:
        node.pop(last, None)
    else:
        node[last] = value
    return out


def choice(label: object) -> list:
    return [{"from_name": "label", "to_name": "image", "type": "choices", "value": {"choices": [label]}}]


# (name, method, path, body, content type, expected status, a word the error must contain)
CASES = [
    ("malformed JSON", "/webhook", b'{"action": "ANNOTATION_CREATED", ', "application/json", 400, "JSON"),
    ("not JSON at all", "/predict", b"\x00\xff<xml/>", "application/json", 400, "JSON"),
    ("form instead of JSON", "/setup", b"project=1&schema=x", "application/x-www-form-urlencoded", 400, "JSON"),
    ("JSON array", "/webhook", b"[1, 2, 3]", "application/json", 400, "object"),
    ("JSON string", "/setup", b'"hello"', "application/json", 400, "object"),
    ("deeply nested", "/webhook", b"[" * 100_000 + b"]" * 100_000, "application/json", 400, "nested"),
    ("webhook without action", "/webhook", with_(WEBHOOK, "action", ...), None, 400, "action"),
    ("action not a string", "/webhook", with_(WEBHOOK, "action", 7), None, 400, "action"),
    ("webhook without project", "/webhook", with_(WEBHOOK, "project", ...), None, 400, "project"),
    ("project id a list", "/webhook", with_(WEBHOOK, "project", [1]), None, 400, "project"),
    ("project id negative", "/webhook", with_(WEBHOOK, "project.id", -1), None, 400, "project"),
    ("project id huge", "/webhook", with_(WEBHOOK, "project.id", 10**30), None, 400, "project"),
    ("project id bool", "/webhook", with_(WEBHOOK, "project.id", True), None, 400, "project"),
    ("annotation missing", "/webhook", with_(WEBHOOK, "annotation", ...), None, 400, "annotation"),
    ("annotation a string", "/webhook", with_(WEBHOOK, "annotation", "x"), None, 400, "annotation"),
    ("annotation id a string", "/webhook", with_(WEBHOOK, "annotation.id", "1"), None, 400, "annotation.id"),
    ("annotation id a float", "/webhook", with_(WEBHOOK, "annotation.id", 1.5), None, 400, "annotation.id"),
    ("task id missing", "/webhook", with_(with_(WEBHOOK, "annotation.task", ...), "task", ...), None, 400, "task"),
    ("result a dict", "/webhook", with_(WEBHOOK, "annotation.result", {"choices": ["one"]}), None, 400, "result"),
    ("label not in the config", "/webhook", with_(WEBHOOK, "annotation.result", choice("seven")), None, 400,
     "not one of the project's classes"),
    ("label not a string", "/webhook", with_(WEBHOOK, "annotation.result", choice({"x": 1})), None, 400, "classes"),
    ("deleted without list", "/webhook", with_(DELETED, "annotations", {"id": 1}), None, 400, "annotations"),
    ("deleted ids strings", "/webhook", with_(DELETED, "annotations", [{"id": "1"}]), None, 400, "integer"),
    ("tasks not a list", "/predict", with_(PREDICT, "tasks", {"id": 1}), None, 400, "tasks"),
    ("predict without project", "/predict", {"tasks": [{"id": 1, "data": {}}]}, None, 400, "project"),
    ("label_config not a string", "/predict", with_(PREDICT, "label_config", 5), None, 400, "label_config"),
    ("unknown project", "/predict", with_(with_(PREDICT, "project", "999.1"), "label_config", ...), None, 422,
     "no label config"),
    ("unsupported config: labels", "/setup", with_(SETUP, "schema", '<View><Text name="t" value="$t"/><Labels '
     'name="l" toName="t"><Label value="A"/></Labels></View>'), None, 422, "DALT serves"),
    ("unsupported config: not XML", "/setup", with_(SETUP, "schema", "<View><Image"), None, 422, ""),
    ("unsupported config: multi-choice", "/setup", with_(SETUP, "schema", CONFIG_XML.replace('"single"', '"multiple"')),
     None, 422, ""),
    ("schema missing", "/setup", with_(SETUP, "schema", ...), None, 400, "schema"),
    ("setup project a dict", "/setup", with_(SETUP, "project", {"x": 1}), None, 400, "project"),
    ("versions of a bad project", "/versions?project=abc", None, "GET", 400, "project"),
    ("GET on a POST route", "/webhook", None, "GET", 405, ""),
    ("unknown route", "/../../etc/passwd", None, "GET", 404, ""),
]


def snapshot(store) -> dict:
    return {p: (store.labels(p), store.generation(p), store.current_version(p), store.project(p))
            for p in store.projects()}


@pytest.fixture
def labeled(client, annotation_event, seeded_project, store):
    """Project 1 with 30 labels and a trained head: what hostile requests must not disturb."""
    seeded = seeded_project(n=60)
    for i in range(30):
        event = annotation_event(i + 1, seeded["ids"][i], seeded["y"][i])
        assert client.post("/webhook", json=event).status_code == 200
    from backend.config import Config

    train_project(store, Config(), 1)
    return seeded


@pytest.mark.parametrize("name,path,body,ctype,status,word", CASES, ids=[c[0] for c in CASES])
def test_broken_requests_get_a_clear_4xx_and_change_nothing(client, store, labeled, name, path, body, ctype, status,
                                                            word):
    before = snapshot(store)
    if ctype == "GET":
        resp = client.get(path)
    elif isinstance(body, bytes):
        resp = client.post(path, data=body, content_type=ctype)
    else:
        resp = client.post(path, json=body)
    assert resp.status_code == status, (name, resp.status_code, resp.get_data(as_text=True)[:300])
    err = resp.get_json(silent=True)
    assert isinstance(err, dict) and err.get("status") == status and err.get("error"), name
    assert word in err["error"], (name, err)
    assert snapshot(store) == before, name


def test_huge_bodies_are_refused_with_413_before_they_are_read(config, store, labeled):
    client = create_app(replace(config, max_content_length=64 * 1024), store=store).test_client()
    before = snapshot(store)
    big = with_(WEBHOOK, "annotation.padding", "x" * 200_000)
    for path in ("/webhook", "/predict", "/setup"):
        resp = client.post(path, json=big)
        assert resp.status_code == 413 and "error" in resp.get_json(), path
    assert snapshot(store) == before


def bomb_png(width: int = 60_000, height: int = 60_000) -> bytes:
    """A tiny PNG whose header claims 3.6 gigapixels."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 1024)) + chunk(
        b"IEND", b"")


def test_hostile_image_urls_corrupt_images_and_bombs_get_empty_predictions_and_no_request(
    config, store, fake_ls, foreign_host, digit_pngs, mnist_small
):
    """SSRF: only Label Studio's host (and DALT_ALLOWED_HOSTS) is fetched from, never loopback, private,
    link-local or metadata addresses, not even through an allowed name or a redirect from Label Studio."""
    import torch

    from encoder.model import ConvEncoder

    torch.manual_seed(0)
    art = EncoderArtifact(ConvEncoder(1, 28, 8), objective="autoencoder")
    cfg = replace(config, label_studio_url=fake_ls.url, label_studio_api_key=fake_ls.legacy_key,
                  allowed_hosts=(f"localhost:{foreign_host.url.rsplit(':', 1)[1]}",), fetch_timeout=3)
    client = create_app(cfg, store=store).test_client()
    assert client.post("/setup", json=SETUP).status_code == 200
    store.put_encoder(1, art.version, art.to_bytes(), art.meta())
    images, digits = mnist_small
    for i in range(40):
        fake_ls.uploads[f"/data/upload/1/d{i}.png"] = encoder_fixtures.png_bytes(images[i])
    fake_ls.uploads["/data/upload/1/corrupt.png"] = b"\x89PNG\r\n\x1a\nthis is not a png at all" * 10
    fake_ls.uploads["/data/upload/1/bomb.png"] = bomb_png()
    fake_ls.uploads["/data/upload/1/empty.png"] = b""
    good = [{"id": i + 1, "data": {"image": f"/data/upload/1/d{i}.png"}} for i in range(40)]
    assert len(encode_missing(store, cfg, 1, good)) == 40  # what bulk encoding would have cached
    for i in range(40):
        ann = {"id": i + 1, "task": i + 1, "result": choice(["zero", "one", "two"][int(digits[i]) % 3])}
        client.post("/webhook", json=dict(WEBHOOK, annotation=ann))
    assert train_project(store, cfg, 1).status == "published"
    before = snapshot(store)
    victim = foreign_host.url.rsplit(":", 1)[1]
    hostile = [
        f"http://127.0.0.1:{victim}/plain/http_one.png",  # loopback, not allowed
        f"http://localhost:{victim}/plain/http_one.png",  # allowed by name, but resolves to loopback
        f"http://[::1]:{victim}/plain/http_one.png",
        f"http://0.0.0.0:{victim}/plain/http_one.png",
        f"http://2130706433:{victim}/plain/http_one.png",  # 127.0.0.1 as one decimal number
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",  # cloud metadata
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://10.0.0.1/x.png",
        "http://192.168.1.1/x.png",
        f"/data/upload/special/auth-redirect?to=http://localhost:{victim}/plain/http_one.png",  # LS redirects
        f"http://user:pw@localhost:{victim}/plain/http_one.png",
        "file:///etc/passwd",
        "gopher://127.0.0.1:6379/_FLUSHALL",
        "/data/local-files/?d=../../etc/passwd",
        "/data/upload/../../etc/passwd",
        "/data/upload/1/corrupt.png",
        "/data/upload/1/bomb.png",
        "/data/upload/1/empty.png",
        "",
        None,
        12,
    ]
    tasks = [{"id": 1000 + i, "data": {"image": url}} for i, url in enumerate(hostile)] + [
        {"id": 2000, "data": "not a dict"},
        {"id": "x"},
        "not a task",
        {"id": 41, "data": {"image": "/data/upload/1/d0.png"}},
    ]
    resp = client.post("/predict", json=dict(PREDICT, tasks=tasks))
    assert resp.status_code == 200
    results = resp.get_json()["results"]
    assert len(results) == len(tasks)
    assert all(r["result"] == [] for r in results[:-1])  # every hostile or broken task: an empty result
    assert results[-1]["result"] and results[-1]["model_version"] == before[1][2]  # the good one still predicted
    assert foreign_host.requests == []  # no request ever reached the loopback victim
    reached = sorted({r.path for r in fake_ls.requests if not r.path.startswith("/data/upload/1/d")})
    # Dot segments are refused before any request (test_dot_segments_never_leave_label_studios_data_paths).
    assert all(p.startswith("/data/") for p in reached), reached
    # Nothing recorded before changed (labels, generation, served version, project settings).
    after = snapshot(store)
    assert after == before
    print(f"\n{len(hostile) + 3} hostile or broken tasks: empty predictions; Label Studio host saw {reached}")


def test_dot_segments_never_leave_label_studios_data_paths(config, store, fake_ls):
    from encoder.fetch import FetchError, ImageFetcher

    fetcher = ImageFetcher(fake_ls.url, fake_ls.legacy_key, timeout=3)
    for url in ("/data/upload/../../api/projects/", "/data/upload/%2e%2e/%2E%2E/api/projects/",
                "/data/upload/..%5c..%5capi", f"{fake_ls.url}/data/upload/../../api/projects/"):
        with pytest.raises(FetchError, match="path traversal"):
            fetcher.fetch(url)
    assert not [r.path for r in fake_ls.requests if not r.path.startswith("/data/")]
