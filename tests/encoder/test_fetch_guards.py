"""What task data can make the fetcher do: never an API call with the key, never a redirect to an unlisted or
private host, never an IPv6 form of a private IPv4 address, never another project's local file, never a
download past its total deadline."""

from __future__ import annotations

import ipaddress

import pytest

from encoder.fetch import FetchError, ImageFetcher
from encoder.netguard import RefusedHost, check_public, embedded_ipv4
from tests.fake_label_studio import FakeLabelStudio


def test_task_data_naming_a_label_studio_api_path_is_refused_before_any_request(fake_ls: FakeLabelStudio) -> None:
    with ImageFetcher(fake_ls.url, fake_ls.legacy_key, timeout=3) as f:
        for ref in ("/api/projects/", f"{fake_ls.url}/api/projects/1/export?exportType=JSON", "/api/tasks/?project=1",
                    "/data/upload", "/user/account"):
            with pytest.raises(FetchError) as err:
                f.fetch(ref)
            assert err.value.reason == "bad_url" and "media path" in str(err.value), ref
    assert fake_ls.requests == []


def test_a_redirect_from_label_studio_needs_the_target_in_allowed_hosts(
    fake_ls: FakeLabelStudio, foreign_host: FakeLabelStudio
) -> None:
    target = foreign_host.url + "/plain/http_one.png"
    # Private networks allowed, so only the allowed-hosts list can stop it.
    with ImageFetcher(fake_ls.url, fake_ls.legacy_key, timeout=3, allow_private_networks=True) as f:
        with pytest.raises(FetchError) as err:
            f.fetch(f"/data/upload/special/auth-redirect?to={target}")
    assert err.value.reason == "refused_host" and "allowed_hosts" in str(err.value)
    assert len(fake_ls.hits("/data/upload/special/auth-redirect")) == 1 and foreign_host.requests == []
    # Redirected back to a Label Studio API path: refused too, the key never goes there.
    with ImageFetcher(fake_ls.url, fake_ls.legacy_key, timeout=3) as f:
        with pytest.raises(FetchError) as err:
            f.fetch(f"/data/upload/special/auth-redirect?to={fake_ls.url}/api/projects/")
    assert err.value.reason == "bad_url" and not fake_ls.hits("/api/")


@pytest.mark.parametrize(
    "address",
    ["::127.0.0.1", "::ffff:0:127.0.0.1", "::ffff:0:a00:1", "64:ff9b::127.0.0.1", "64:ff9b::169.254.169.254",
     "64:ff9b:1::10.0.0.1", "2002:7f00:1::", "2002:a9fe:a9fe::1", "2002:c0a8:101::", "::ffff:127.0.0.1", "::1"],
)
def test_ipv6_forms_that_carry_a_private_ipv4_address_are_refused(address: str) -> None:
    with pytest.raises(RefusedHost, match="non-public"):
        check_public(address, 80)


def test_ipv6_forms_of_public_ipv4_addresses_are_judged_by_that_address() -> None:
    for address, inner in (("64:ff9b::8.8.8.8", "8.8.8.8"), ("2002:808:808::1", "8.8.8.8"),
                           ("::ffff:0:8.8.4.4", "8.8.4.4")):
        assert embedded_ipv4(ipaddress.IPv6Address(address)) == ipaddress.IPv4Address(inner)
        check_public(address, 80)  # no exception
    assert embedded_ipv4(ipaddress.IPv6Address("2001:4860:4860::8888")) is None


def test_local_files_are_read_from_disk_only_inside_the_projects_own_storages(tmp_path, fake_ls: FakeLabelStudio
                                                                              ) -> None:
    root = tmp_path / "files"
    for project in ("p1", "p2"):
        (root / project).mkdir(parents=True)
        (root / project / "a.png").write_bytes(f"disk-{project}".encode())
    fake_ls.local_files["p2/a.png"] = b"served-by-label-studio"
    # As Label Studio names them: its document root is /ls/files (another machine's path).
    scope = ("/ls/files/p1",)
    with ImageFetcher(fake_ls.url, fake_ls.legacy_key, timeout=3, local_root=str(root), local_scope=scope,
                      local_ls_root="/ls/files") as f:
        assert f.fetch("/data/local-files/?d=p1/a.png") == b"disk-p1"  # its own storage: from disk
        # Another project's folder: never read from disk; Label Studio decides (here it serves it).
        assert f.fetch("/data/local-files/?d=p2/a.png") == b"served-by-label-studio"
    assert [r.query for r in fake_ls.hits("/data/local-files/")] == ["d=p2/a.png"]
    # No known storage (no trusted Label Studio to ask): nothing from disk at all.
    with ImageFetcher(fake_ls.url, fake_ls.legacy_key, timeout=3, local_root=str(root), local_scope=()) as f:
        with pytest.raises(FetchError) as err:
            f.fetch("/data/local-files/?d=p1/a.png")
    assert err.value.reason == "not_found"  # Label Studio (the fake) does not serve p1/a.png
    assert [r.query for r in fake_ls.hits("/data/local-files/")] == ["d=p2/a.png", "d=p1/a.png"]
    assert all(r.headers.get("Authorization") for r in fake_ls.hits("/data/local-files/"))


def test_the_total_deadline_cuts_a_dripping_download_while_it_reads(fake_ls: FakeLabelStudio,
                                                                    foreign_host: FakeLabelStudio) -> None:
    """1 byte every 0.2 s for 60 bytes (12 s): with timeout 0.3 s the whole download may take 0.9 s. Each
    byte arrives well within the 0.3 s read timeout, so only a deadline enforced during the read stops it."""
    with ImageFetcher(fake_ls.url, None, timeout=0.3, allowed_hosts=("*",), allow_private_networks=True) as f:
        with pytest.raises(FetchError) as err:
            f.fetch(foreign_host.url + "/special/drip?n=60&s=0.2")
    assert err.value.reason == "timeout" and "0.9 s" in str(err.value)
    assert foreign_host.dripped < 60  # cut off before the body was complete
