"""ImageFetcher against a fake Label Studio over real HTTP: URL forms, both key kinds, limits, SSRF."""

from __future__ import annotations

import pytest

from encoder.fetch import FetchError, ImageFetcher
from tests.fake_label_studio import FakeLabelStudio

UPLOAD = "/data/upload/1/93470f75-up_zero.png"
LOCAL = "/data/local-files/?d=images/loc_zero.png"


def fetcher(ls: FakeLabelStudio, key: str | None, **kw) -> ImageFetcher:
    return ImageFetcher(ls.url, key, timeout=kw.pop("timeout", 5.0), **kw)


@pytest.mark.parametrize("ref", [UPLOAD, LOCAL])
def test_relative_urls_with_legacy_token(fake_ls: FakeLabelStudio, digit_pngs: list[bytes], ref: str) -> None:
    with fetcher(fake_ls, fake_ls.legacy_key) as f:
        data = f.fetch(ref)
    assert data == (digit_pngs[0] if ref == UPLOAD else digit_pngs[2])
    assert fake_ls.requests[-1].headers["Authorization"] == f"Token {fake_ls.legacy_key}"


def test_absolute_url_to_label_studio_host_gets_credentials(fake_ls: FakeLabelStudio) -> None:
    with fetcher(fake_ls, fake_ls.legacy_key) as f:
        assert f.fetch(fake_ls.url + UPLOAD).startswith(b"\x89PNG")


def test_personal_access_token_is_refreshed_once_and_cached(fake_ls: FakeLabelStudio) -> None:
    with fetcher(fake_ls, fake_ls.pat) as f:
        for _ in range(3):
            assert f.fetch(UPLOAD).startswith(b"\x89PNG")
        assert f.fetch(LOCAL).startswith(b"\x89PNG")
    assert fake_ls.refreshes == 1
    image_requests = fake_ls.hits("/data/")
    assert all(r.headers["Authorization"].startswith("Bearer ") for r in image_requests)
    assert all(fake_ls.pat not in r.headers["Authorization"] for r in image_requests)


def test_personal_access_token_refreshed_before_expiry(fake_ls: FakeLabelStudio) -> None:
    fake_ls.access_ttl = 20  # inside the refresh margin: every use needs a fresh access token
    with fetcher(fake_ls, fake_ls.pat) as f:
        f.fetch(UPLOAD)
        f.fetch(UPLOAD)
    assert fake_ls.refreshes == 2
    assert len(fake_ls.hits("/data/upload/")) == 2  # no 401 round trip: refreshed ahead of time


def test_personal_access_token_refreshed_after_401(fake_ls: FakeLabelStudio) -> None:
    with fetcher(fake_ls, fake_ls.pat) as f:
        f.fetch(UPLOAD)
        fake_ls.revoke_access_tokens()
        assert f.fetch(UPLOAD).startswith(b"\x89PNG")
    assert fake_ls.refreshes == 2


def test_revoked_personal_access_token_gives_clear_error(fake_ls: FakeLabelStudio) -> None:
    fake_ls.pat = "eyJhbGciOiJIUzI1NiJ9.eyJ0b2tlbl90eXBlIjoicmVmcmVzaCJ9.x"  # the server knows another PAT
    from tests.fake_label_studio import make_jwt

    with fetcher(fake_ls, make_jwt("refresh", 3600)) as f, pytest.raises(FetchError) as err:
        f.fetch(UPLOAD)
    assert err.value.reason == "auth"
    assert "refresh" in str(err.value) and "401" in str(err.value)


@pytest.mark.parametrize("key", [None, "wrong-key-xyz"])
def test_missing_or_wrong_key_is_an_auth_error(fake_ls: FakeLabelStudio, key: str | None) -> None:
    with fetcher(fake_ls, key) as f, pytest.raises(FetchError) as err:
        f.fetch(UPLOAD)
    assert err.value.reason == "auth" and err.value.status == 401
    assert "Label Studio API key" in str(err.value)
    if key:
        assert key not in str(err.value)


def test_not_found(fake_ls: FakeLabelStudio) -> None:
    with fetcher(fake_ls, fake_ls.legacy_key) as f, pytest.raises(FetchError) as err:
        f.fetch("/data/upload/1/missing.png")
    assert err.value.reason == "not_found" and err.value.status == 404 and "404" in str(err.value)


def test_too_large_by_content_length_and_by_stream(fake_ls: FakeLabelStudio) -> None:
    with fetcher(fake_ls, fake_ls.legacy_key, max_bytes=100) as f, pytest.raises(FetchError) as err:
        f.fetch(UPLOAD)  # declares its Content-Length
    assert err.value.reason == "too_large"
    with fetcher(fake_ls, None, max_bytes=1_000_000) as f, pytest.raises(FetchError) as err:
        f.fetch(fake_ls.url + "/data/upload/special/huge?mb=30")  # no Content-Length: counted while streaming
    assert err.value.reason == "too_large" and "1000000" in str(err.value)


def test_timeout(fake_ls: FakeLabelStudio) -> None:
    with fetcher(fake_ls, None, timeout=0.3) as f, pytest.raises(FetchError) as err:
        f.fetch(fake_ls.url + "/data/upload/special/slow?s=2")
    assert err.value.reason == "timeout"


def test_foreign_host_refused_unless_allowed(fake_ls: FakeLabelStudio, foreign_host: FakeLabelStudio) -> None:
    url = foreign_host.url + "/plain/http_one.png"
    with fetcher(fake_ls, fake_ls.legacy_key) as f, pytest.raises(FetchError) as err:
        f.fetch(url)
    assert err.value.reason == "refused_host" and "allowed_hosts" in str(err.value)
    assert foreign_host.requests == []
    # Listed, but on loopback: still refused without allow_private_networks.
    port = url.split(":")[2].split("/")[0]
    with fetcher(fake_ls, fake_ls.legacy_key, allowed_hosts=(f"127.0.0.1:{port}",)) as f:
        with pytest.raises(FetchError) as err:
            f.fetch(url)
    assert err.value.reason == "refused_host" and "non-public" in str(err.value)
    assert foreign_host.requests == []


def test_allowed_foreign_host_never_gets_credentials(
    fake_ls: FakeLabelStudio, foreign_host: FakeLabelStudio, digit_pngs: list[bytes]
) -> None:
    url = foreign_host.url + "/plain/http_one.png"
    with fetcher(fake_ls, fake_ls.legacy_key, allowed_hosts=("*",), allow_private_networks=True) as f:
        assert f.fetch(url) == digit_pngs[3]
        # A redirect from Label Studio to the other host: followed, credentials dropped.
        assert f.fetch(f"/data/upload/special/auth-redirect?to={url}") == digit_pngs[3]
    assert fake_ls.hits("/data/upload/special/auth-redirect")[0].headers["Authorization"].startswith("Token ")
    assert len(foreign_host.requests) == 2
    assert all("Authorization" not in r.headers for r in foreign_host.requests)


def test_redirects_and_urls_to_metadata_address_are_refused(fake_ls: FakeLabelStudio) -> None:
    target = "http://169.254.169.254/latest/meta-data/"
    with fetcher(fake_ls, fake_ls.legacy_key) as f, pytest.raises(FetchError) as err:
        f.fetch(f"/data/upload/special/redirect?to={target}")  # Label Studio's host redirects to cloud metadata
    assert len(fake_ls.hits("/data/upload/special/redirect")) == 1
    assert err.value.reason == "refused_host" and "169.254.169.254" in str(err.value)
    with fetcher(fake_ls, None, allowed_hosts=("*",)) as f, pytest.raises(FetchError) as err:
        f.fetch(target)
    assert err.value.reason == "refused_host" and "non-public" in str(err.value)


@pytest.mark.parametrize(
    "ref",
    ["", "s3://bucket/key.png", "file:///etc/passwd", "ftp://example.com/x.png", "http://u:p@example.com/x.png"],
)
def test_bad_urls(fake_ls: FakeLabelStudio, ref: str) -> None:
    with fetcher(fake_ls, None) as f, pytest.raises(FetchError) as err:
        f.fetch(ref)
    assert err.value.reason == "bad_url"


def test_relative_url_without_label_studio_url() -> None:
    with ImageFetcher(None, None) as f, pytest.raises(FetchError) as err:
        f.fetch(UPLOAD)
    assert err.value.reason == "bad_url" and "Label Studio URL" in str(err.value)


def test_local_root_reads_from_disk_and_blocks_traversal(tmp_path, fake_ls: FakeLabelStudio) -> None:
    root = tmp_path / "files"
    (root / "images").mkdir(parents=True)
    (root / "images" / "a.png").write_bytes(b"\x89PNG-local")
    (tmp_path / "secret.txt").write_text("secret")
    with fetcher(fake_ls, None, local_root=str(root)) as f:
        assert f.fetch("/data/local-files/?d=images/a.png") == b"\x89PNG-local"
        for ref in ("/data/local-files/?d=../secret.txt", "/data/local-files/?d=/etc/passwd"):
            with pytest.raises(FetchError) as err:
                f.fetch(ref)
            assert err.value.reason in ("bad_url", "not_found")
    assert fake_ls.hits("/data/local-files/") == []


def test_fetch_many_keeps_order_and_isolates_failures(fake_ls: FakeLabelStudio, digit_pngs: list[bytes]) -> None:
    refs = [UPLOAD, "/data/upload/1/missing.png", LOCAL, "s3://x/y", UPLOAD]
    with fetcher(fake_ls, fake_ls.legacy_key, workers=4) as f:
        out = f.fetch_many(refs)
    assert out[0] == digit_pngs[0] and out[2] == digit_pngs[2] and out[4] == digit_pngs[0]
    assert isinstance(out[1], FetchError) and out[1].reason == "not_found"
    assert isinstance(out[3], FetchError) and out[3].reason == "bad_url"
