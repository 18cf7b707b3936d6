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
        api_key: Label Studio legacy key or personal access token.
        timeout: connect and read timeout in seconds (a whole download may take up to three times this).
        max_bytes: largest image body accepted.
        max_pixels: largest decoded image (decompression-bomb limit).
        allowed_hosts: other hosts images may come from (``host``, ``host:port``, ``*.domain``, ``*``).
        allow_private_networks: allow hosts on loopback/private/link-local addresses.
        local_files_root: Label Studio's ``LOCAL_FILES_DOCUMENT_ROOT``, to read ``/data/local-files/`` from disk.
        workers: concurrent downloads.
    """

    ls_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    timeout: float = 10.0
    max_bytes: int = 20 * 2**20
    max_pixels: int = 40_000_000
    allowed_hosts: tuple[str, ...] = ()
    allow_private_networks: bool = False
    local_files_root: str | None = None
    workers: int = 16
