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


@dataclass(frozen=True)
class TrainBudget:
    """How much training an encoder gets, counted in optimizer steps (not epochs) and capped in wall time.

    Why steps: an epoch of a 600-image project is two or three steps at batch 256, so an epoch budget with
    early stopping ended small projects after a few dozen steps, far from a useful encoder; a step budget
    gives every project the same amount of learning, and ``max_seconds`` bounds what large ones cost.

    Attributes:
        steps: most optimizer steps.
        min_steps: the floor: early stopping never ends a run before this many steps (the wall-clock cap
            and ``epochs`` still do).
        max_seconds: wall-clock cap on the training loop (None or 0: none); checked after every step.
        patience: validation evaluations without a better loss before stopping (once past ``min_steps``).
        eval_every: steps between validation evaluations (and history entries).
        epochs: most passes over the training split (None: no limit); for smoke runs and old settings.
    """

    steps: int = 1000
    min_steps: int = 500
    max_seconds: float | None = 150.0
    patience: int = 5
    eval_every: int = 50
    epochs: int | None = None

    def __post_init__(self) -> None:
        if self.steps < 1 or self.min_steps < 0 or self.patience < 1 or self.eval_every < 1:
            raise ValueError(f"invalid training budget {self}: steps, patience and eval_every must be >= 1")
        if self.epochs is not None and self.epochs < 1:
            raise ValueError(f"epochs must be >= 1 or None, not {self.epochs}")
