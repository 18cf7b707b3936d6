"""Download task images the way Label Studio serves them, safely and concurrently.

Label Studio puts these kinds of image reference in task data (see the task fixtures):

* ``/data/upload/<project>/<file>``: an uploaded file, relative to the Label Studio URL, needs auth;
* ``/data/local-files/?d=<path>``: local-storage files, relative to the Label Studio URL, needs auth
  (or, with ``local_root`` = Label Studio's ``LOCAL_FILES_DOCUMENT_ROOT``, read from disk directly, but
  only inside the project's own local storages, as Label Studio itself would serve them);
* ``/tasks/<id>/resolve/?fileuri=...`` (and ``/projects/<id>/resolve/``): cloud-storage files that Label
  Studio proxies or redirects to a presigned URL;
* ``http(s)://...``: fetched directly, without credentials unless the URL is one of the above on Label
  Studio's host.

Credentials (see :mod:`encoder.auth`) are sent only to the Label Studio host and only for the media paths
above: a task whose data names another Label Studio path (``/api/projects/``) is refused, so task data can
never make DALT call Label Studio's API with its key. Redirects are followed by hand; every hop is
checked again as if it were the first URL (a redirect from Label Studio to another host needs that host
in ``allowed_hosts``, and never carries credentials). Hosts other than Label Studio's pass the SSRF rules
of :mod:`encoder.netguard`, and so does Label Studio's own host when its URL was not configured by the
admin (``ls_trusted=False``: a ``hostname`` that ``/setup`` sent). Every body is streamed under a byte cap
and a total deadline that a watchdog enforces while the body is read (a server dripping one byte at a
time is cut off at the deadline, not after the next 64 KiB).
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs, unquote, urljoin, urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter

from encoder.auth import AuthError, LabelStudioAuth
from encoder.deadline import Watchdog, shutdown_socket
from encoder.localfiles import EscapesRoot, LocalFiles
from encoder.netguard import RefusedHost, check_public, host_listed, origin
from encoder.settings import FetchSettings

MAX_REDIRECTS = 5
_REDIRECTS = (301, 302, 303, 307, 308)
_CHUNK = 64 * 1024
LOCAL_FILES_PREFIX = "/data/local-files/"
# The only paths on Label Studio's host that are fetched (with credentials): files, never the API.
MEDIA_PATH = re.compile(r"/data/upload/.+|/data/local-files/|/(tasks|projects)/\d+/resolve/?")


class FetchError(Exception):
    """One image could not be downloaded; ``str()`` says why in words an admin can act on.

    Attributes:
        url: the URL as shown to people (query strings of non-Label-Studio URLs removed: they may
            hold signatures).
        reason: a short category for summaries: ``not_found``, ``auth``, ``too_large``, ``timeout``,
            ``refused_host``, ``bad_url``, ``connection``, ``http``.
        status: the HTTP status, when there was one.
    """

    def __init__(self, message: str, *, url: str = "", reason: str = "http", status: int | None = None):
        super().__init__(message)
        self.url = url
        self.reason = reason
        self.status = status


def display_url(url: str) -> str:
    """The URL without credentials, and without a query unless it names a local file."""
    p = urlsplit(url)
    host = p.hostname or ""
    if p.port:
        host = f"{host}:{p.port}"
    query = p.query if p.path.startswith(LOCAL_FILES_PREFIX) else ""
    return urlunsplit((p.scheme, host, p.path, query, ""))


class ImageFetcher:
    """Fetch image bytes for task URLs.

    Args:
        ls_url: Label Studio's base URL; needed for relative URLs, and the one host that gets credentials.
        api_key: legacy key or personal access token (see :class:`encoder.auth.LabelStudioAuth`).
        timeout: connect and read timeout in seconds (a whole download may take up to three times this).
        max_bytes: largest body accepted.
        allowed_hosts: other hosts images may come from (``host``, ``host:port``, ``*.domain``, ``*``).
        allow_private_networks: allow hosts on loopback/private/link-local addresses.
        workers: concurrent downloads in :meth:`fetch_many`.
        local_root: Label Studio's ``LOCAL_FILES_DOCUMENT_ROOT``, to read ``/data/local-files/`` from disk.
        ls_trusted: ``ls_url`` was configured by the admin; False: its host's addresses are checked as any
            other host's (see :class:`encoder.settings.FetchSettings`).
        local_scope: directories (as Label Studio names them) whose files may be read from disk; None: any
            file under ``local_root``. Files outside are downloaded through Label Studio instead.
        local_ls_root: ``local_root`` as Label Studio names it (default ``local_root``).
    """

    def __init__(
        self,
        ls_url: str | None,
        api_key: str | None,
        *,
        timeout: float = 10.0,
        max_bytes: int = 20 * 2**20,
        allowed_hosts: tuple[str, ...] = (),
        allow_private_networks: bool = False,
        workers: int = 16,
        local_root: str | None = None,
        ls_trusted: bool = True,
        local_scope: tuple[str, ...] | None = None,
        local_ls_root: str | None = None,
    ):
        self.ls_url = (ls_url or "").rstrip("/")
        self.ls_trusted = bool(ls_trusted)
        self.local = LocalFiles(local_root, local_scope, local_ls_root) if local_root else None
        self.timeout = float(timeout)
        self.max_bytes = int(max_bytes)
        self.allowed_hosts = tuple(allowed_hosts)
        self.allow_private_networks = bool(allow_private_networks)
        self.workers = max(1, int(workers))
        self._ls_origin = origin(urlsplit(self.ls_url)) if self.ls_url else None
        self.session = requests.Session()
        self.session.trust_env = False  # no .netrc credentials or env proxies sneaking into requests
        adapter = HTTPAdapter(pool_connections=8, pool_maxsize=self.workers, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.auth = LabelStudioAuth(self.ls_url, api_key, self.session, timeout=self.timeout)
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: FetchSettings) -> ImageFetcher:
        """A fetcher with the URL, key and limits of ``settings``."""
        return cls(
            settings.ls_url or None,
            settings.api_key or None,
            timeout=settings.timeout,
            max_bytes=settings.max_bytes,
            allowed_hosts=settings.allowed_hosts,
            allow_private_networks=settings.allow_private_networks,
            workers=settings.workers,
            local_root=settings.local_files_root or None,
            ls_trusted=settings.ls_trusted,
            local_scope=settings.local_files_scope,
            local_ls_root=settings.local_files_ls_root,
        )

    # ---- URL handling ----------------------------------------------------------------------------
    def resolve(self, url: str) -> str:
        """Absolute URL for a task reference.

        Raises:
            FetchError: (``bad_url``) empty, unsupported scheme, or relative without a Label Studio URL.
        """
        if not isinstance(url, str) or not url.strip():
            raise FetchError("empty image URL", reason="bad_url")
        url = url.strip()
        segments = unquote(urlsplit(url).path).replace("\\", "/").split("/")
        if ".." in segments or "." in segments:
            raise FetchError(
                f"image URL {display_url(url)!r} has '.' or '..' path segments; refused (path traversal)",
                url=display_url(url),
                reason="bad_url",
            )
        if url.startswith("/") and not url.startswith("//"):
            if not self.ls_url:
                raise FetchError(
                    f"relative URL {display_url(url)} needs the Label Studio URL, which is not configured",
                    url=display_url(url),
                    reason="bad_url",
                )
            return self.ls_url + url
        parts = urlsplit(url)
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise FetchError(
                f"unsupported image URL {display_url(url)!r}: only /data/upload/, /data/local-files/ and "
                "http(s) URLs can be fetched (cloud storage: use Label Studio's presigned http URLs)",
                url=display_url(url),
                reason="bad_url",
            )
        if parts.username or parts.password:
            raise FetchError(
                "image URLs with embedded credentials are refused", url=display_url(url), reason="bad_url"
            )
        return url

    def _is_ls(self, url: str) -> bool:
        return self._ls_origin is not None and origin(urlsplit(url)) == self._ls_origin

    def _check_hop(self, url: str, shown: str) -> bool:
        """Check one URL (the first, or a redirect's target) before it is requested; True: Label Studio's.

        Raises:
            FetchError: (``bad_url``) a Label Studio path that is not a media path.
            RefusedHost: a host that is not allowed, or resolves to a non-public address.
        """
        scheme, host, port = origin(urlsplit(url))
        if self._is_ls(url):
            if not MEDIA_PATH.fullmatch(urlsplit(url).path):
                raise FetchError(
                    f"{shown} is not a Label Studio media path (/data/upload/, /data/local-files/, storage "
                    "resolve URLs); only those are fetched from Label Studio",
                    url=shown,
                    reason="bad_url",
                )
            if not self.ls_trusted and not self.allow_private_networks:
                check_public(host, port)
            return True
        if not host_listed(host, port, self.allowed_hosts):
            raise RefusedHost(
                f"host {host}:{port} is neither Label Studio's nor in allowed_hosts; download refused"
            )
        if not self.allow_private_networks:
            check_public(host, port)
        return False

    # ---- fetching --------------------------------------------------------------------------------
    def fetch(self, url: str) -> bytes:
        """Download one image reference.

        Raises:
            FetchError: with ``reason`` set; never another exception type for network or HTTP faults.
        """
        absolute = self.resolve(url)
        shown = display_url(absolute)
        if self.local and self._is_ls(absolute) and urlsplit(absolute).path == LOCAL_FILES_PREFIX:
            try:
                local = self.local.path_of(parse_qs(urlsplit(absolute).query).get("d", [""])[0])
            except EscapesRoot:
                raise FetchError(f"local file path escapes the document root: {shown}", url=shown,
                                 reason="bad_url") from None
            if local is not None:  # else: outside the project's storages, Label Studio decides
                return self._read_local(local, shown)
        try:
            return self._get(absolute, shown)
        except FetchError:
            raise
        except RefusedHost as exc:
            raise FetchError(f"{exc} ({shown})", url=shown, reason="refused_host") from None
        except AuthError as exc:
            raise FetchError(str(exc), url=shown, reason="auth") from None
        except requests.Timeout:
            raise FetchError(
                f"timed out after {self.timeout:g} s: {shown}", url=shown, reason="timeout"
            ) from None
        except requests.ConnectionError as exc:
            cause = type(exc.__context__ or exc).__name__
            raise FetchError(
                f"connection failed ({cause}): {shown}", url=shown, reason="connection"
            ) from None
        except requests.RequestException as exc:
            raise FetchError(
                f"request failed ({type(exc).__name__}): {shown}", url=shown, reason="connection"
            ) from None

    def _get(self, url: str, shown: str) -> bytes:
        retried_auth = False
        hops = 0
        while True:
            is_ls = self._check_hop(url, shown)
            headers = self.auth.header() if is_ls else {}
            resp = self.session.get(
                url, headers=headers, stream=True, allow_redirects=False, timeout=(self.timeout, self.timeout)
            )
            with resp:
                if resp.status_code in _REDIRECTS and resp.headers.get("Location"):
                    hops += 1
                    if hops > MAX_REDIRECTS:
                        raise FetchError(
                            f"more than {MAX_REDIRECTS} redirects: {shown}",
                            url=shown,
                            reason="http",
                            status=resp.status_code,
                        )
                    url = urljoin(url, resp.headers["Location"])
                    if urlsplit(url).scheme.lower() not in ("http", "https"):
                        raise FetchError(
                            f"redirect to a non-http URL refused: {shown}", url=shown, reason="bad_url"
                        )
                    continue
                if resp.status_code == 401 and is_ls and not retried_auth and self.auth.invalidate():
                    retried_auth = True  # the access token expired early or was revoked: refresh once
                    continue
                if resp.status_code != 200:
                    raise self._status_error(resp.status_code, shown, is_ls)
                return self._read_body(resp, shown)

    def _status_error(self, status: int, shown: str, is_ls: bool) -> FetchError:
        if status == 404:
            return FetchError(f"not found (HTTP 404): {shown}", url=shown, reason="not_found", status=status)
        if status in (401, 403):
            hint = (
                "check the Label Studio API key (legacy key or personal access token) and project access"
                if is_ls
                else "the image host refused access"
            )
            return FetchError(
                f"authentication refused (HTTP {status}) for {shown}: {hint}",
                url=shown,
                reason="auth",
                status=status,
            )
        return FetchError(f"HTTP {status} for {shown}", url=shown, reason="http", status=status)

    def _too_large(self, shown: str, size: int | None = None) -> FetchError:
        what = f"{size} bytes" if size is not None else "more bytes"
        return FetchError(
            f"too large: {what} exceed the limit of {self.max_bytes} bytes (max_bytes): {shown}",
            url=shown,
            reason="too_large",
        )

    def _read_body(self, resp: requests.Response, shown: str) -> bytes:
        length = resp.headers.get("Content-Length")
        if length and length.isdigit() and int(length) > self.max_bytes:
            raise self._too_large(shown, int(length))
        limit = 3 * self.timeout
        deadline = time.monotonic() + limit
        timed_out = FetchError(f"timed out: download took longer than {limit:g} s: {shown}", url=shown,
                               reason="timeout")
        chunks: list[bytes] = []
        total = 0
        # The watchdog shuts the socket down at the deadline: a read blocked on a slow drip returns at once.
        with _WATCHDOG.guard(deadline, lambda: shutdown_socket(resp)) as fired:
            try:
                for chunk in resp.iter_content(_CHUNK):
                    total += len(chunk)
                    if total > self.max_bytes:
                        raise self._too_large(shown)
                    chunks.append(chunk)
                    if time.monotonic() > deadline:
                        raise timed_out
            except (requests.RequestException, OSError):
                if fired.is_set():
                    raise timed_out from None
                raise
            if fired.is_set():  # the shutdown may end the body early without an error: never a partial image
                raise timed_out
        return b"".join(chunks)

    def _read_local(self, path: str, shown: str) -> bytes:
        try:
            size = os.path.getsize(path)
            if size > self.max_bytes:
                raise self._too_large(shown, size)
            with open(path, "rb") as fh:
                return fh.read(self.max_bytes + 1)
        except FileNotFoundError:
            raise FetchError(f"not found (local file): {shown}", url=shown, reason="not_found") from None
        except IsADirectoryError:
            raise FetchError(f"not a file: {shown}", url=shown, reason="not_found") from None
        except PermissionError:
            raise FetchError(f"permission denied (local file): {shown}", url=shown, reason="auth") from None

    def fetch_many(
        self, urls: list[str], on_done: Callable[[int], None] | None = None
    ) -> list[bytes | FetchError]:
        """Download many references concurrently; results (bytes or the error) in the order of ``urls``.

        Args:
            urls: image references.
            on_done: called with 1 after each download (progress bars).
        """

        def one(u: str) -> bytes | FetchError:
            try:
                return self.fetch(u)
            except FetchError as exc:
                return exc
            except Exception as exc:  # noqa: BLE001 - one bad URL must never fail the batch
                return FetchError(
                    f"unexpected {type(exc).__name__}: {exc}", url=display_url(str(u)), reason="http"
                )
            finally:
                if on_done is not None:
                    on_done(1)

        if len(urls) <= 1:
            return [one(u) for u in urls]
        return list(self._executor().map(one, urls))

    def _executor(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="dalt-fetch")
            return self._pool

    def close(self) -> None:
        """Release the connection pool and the download threads (called when a cache evicts the fetcher)."""
        with self._pool_lock:
            if self._pool is not None:
                self._pool.shutdown(wait=False)
                self._pool = None
        self.session.close()

    def __enter__(self) -> ImageFetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_WATCHDOG = Watchdog("dalt-fetch-deadline")
