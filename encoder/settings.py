"""What the encoder package needs to be told: where Label Studio is, how to authenticate, and limits.

The encoder package never imports the backend (the lower layer must not reach up): whoever uses it
(the backend from its configuration, a script from its arguments, a test) fills a :class:`FetchSettings`.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class FetchSettings:
    """Settings for downloading and decoding task images.

    Attributes:
        ls_url: Label Studio's base URL; needed for relative image URLs, and the one host given credentials.
        api_key: Label Studio legacy key or personal access token (sent to ``ls_url`` only).
        ls_trusted: ``ls_url`` was configured by the admin, so its host may be private (a Label Studio on the
            same network); False when it came from an unauthenticated source (``/setup``): then its addresses
            are checked like any other host's.
        timeout: connect and read timeout in seconds (a whole download may take up to three times this).
        max_bytes: largest image body accepted.
        max_pixels: largest decoded image (decompression-bomb limit).
        max_decode_bytes: most memory one decode may need (pixels times bytes per pixel of its mode).
        allowed_hosts: other hosts images may come from (``host``, ``host:port``, ``*.domain``, ``*``).
        allow_private_networks: allow hosts on loopback/private/link-local addresses.
        local_files_root: Label Studio's ``LOCAL_FILES_DOCUMENT_ROOT``, to read ``/data/local-files/`` from disk.
        local_files_ls_root: the same directory as Label Studio names it (its storage paths start with it);
            None: ``local_files_root``.
        local_files_scope: the project's local storage paths (as Label Studio names them): only files in
            them are read from disk, as Label Studio serves a file only under a storage of the project; the
            rest is downloaded through Label Studio. None: no scoping.
        workers: concurrent downloads.
    """

    ls_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    ls_trusted: bool = True
    timeout: float = 10.0
    max_bytes: int = 20 * 2**20
    max_pixels: int = 40_000_000
    max_decode_bytes: int = 128 * 2**20
    allowed_hosts: tuple[str, ...] = ()
    allow_private_networks: bool = False
    local_files_root: str | None = None
    local_files_ls_root: str | None = None
    local_files_scope: tuple[str, ...] | None = None
    workers: int = 16
