"""Bulk encoding: a Label Studio project's images into Redis, training the project's encoder when needed.

The paper's idea: compress every image once, ahead of time, so that real-time training and prediction
touch small vectors only. :func:`encode_project` does that for a whole project:

1. lists the tasks (Label Studio through label-studio-sdk, paged; or ``--images DIR``; or
   ``--export FILE.json``, a Label Studio JSON export),
2. trains the project's encoder on its own images when it has none (or with ``--retrain``) and stores it
   in Redis as the project's current encoder,
3. downloads, decodes and encodes the tasks that the current encoder has not encoded yet, in batches, and
   writes each batch to Redis as soon as it is encoded: a rerun after Ctrl-C or a crash skips every task
   already written,
4. after a new encoder, queues a retraining of the project's head (its old head was trained on the old
   encoder's vectors); embeddings of older encoders are dropped by a later run once a head trained on
   the current encoder is being served;
5. queues a graph update (``backend.graphlane``: the neighbour graph is built, or grows by the tasks
   encoded in this run, in an RQ job on the graph queue, never on the training path).

``dalt encode`` is the command::

    LABEL_STUDIO_URL=http://localhost:8080 LABEL_STUDIO_API_KEY=... dalt encode --project 1
    dalt encode --project 7 --images ./my-images      # no Label Studio needed
    dalt encode --project 7 --export export.json --local-files-root /data/files
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, TextIO

import numpy as np
import torch
from tqdm.auto import tqdm

from backend.config import Config
from backend.labelstudio import LabelStudioAccess, iter_tasks, label_studio_access, local_storage_scope
from backend.store import Store
from encoder.artifact import EncoderArtifact
from encoder.decode import DecodeError, channel_sample, choose_channels, decode_image
from encoder.fetch import FetchError, ImageFetcher
from encoder.pipeline import TaskEncoder, fetch_task_images
from encoder.registry import get_objective
from encoder.settings import TrainBudget
from encoder.sources import DirectoryFetcher, tasks_from_dir, tasks_from_export
from encoder.train import train_encoder

CHANNEL_SAMPLE = 64


@dataclass
class EncodeSummary:
    """What a run did; ``line()`` is the one-line summary printed at the end."""

    project: int
    total: int = 0
    encoded: int = 0
    skipped: int = 0
    failed: dict[int, str] = field(default_factory=dict)
    version: str = ""
    trained: bool = False
    train_seconds: float = 0.0
    head_training_queued: bool = False
    interrupted: bool = False
    seconds: float = 0.0

    def reasons(self) -> Counter[str]:
        """Failures counted by category (``not_found``, ``auth``, ``decode``...)."""
        return Counter(r.split(":", 1)[0] for r in self.failed.values())

    def line(self) -> str:
        why = ", ".join(f"{k}: {v}" for k, v in self.reasons().most_common())
        why = f" ({why})" if why else ""
        rate = self.encoded / self.seconds if self.seconds > 0 else 0.0
        state = "INTERRUPTED (rerun to resume): " if self.interrupted else ""
        trained = f", trained in {self.train_seconds:.1f} s" if self.trained else ""
        return (
            f"{state}project {self.project}, encoder {self.version or '-'}{trained}: "
            f"encoded {self.encoded}, skipped {self.skipped} (already encoded), failed {len(self.failed)}"
            f"{why}, of {self.total} tasks in {self.seconds:.1f} s ({rate:.0f} tasks/s)"
        )

    def failure_lines(self, limit: int = 10) -> list[str]:
        """The first ``limit`` failed tasks with their reasons, then how many more failed."""
        lines = [f"  task {tid}: {reason}" for tid, reason in sorted(self.failed.items())[:limit]]
        if len(self.failed) > limit:
            lines.append(f"  ... and {len(self.failed) - limit} more failures")
        return lines

    def exit_code(self) -> int:
        """0 done (even with failed images), 1 nothing could be encoded, 130 interrupted."""
        if self.interrupted:
            return 130
        return 1 if self.total and not self.encoded and not self.skipped else 0


@dataclass(frozen=True)
class EncodeOptions:
    """One bulk-encoding run, validated once (``dalt encode --help`` describes each option)."""

    project: int
    images: str | None = None  # a local folder of images instead of Label Studio's tasks
    export: str | None = None  # a Label Studio JSON export instead of Label Studio's tasks
    ls_url: str | None = None  # default: LABEL_STUDIO_URL, else what /setup saved
    local_files_root: str | None = None  # Label Studio's LOCAL_FILES_DOCUMENT_ROOT
    retrain: bool = False
    objective: str | None = None  # None: the configured encoder_objective
    latent_dim: int = 32
    steps: int | None = None  # None: the configured budget (Config.train_budget)
    min_steps: int | None = None
    max_seconds: float | None = None
    patience: int | None = None
    epochs: int | None = None  # an extra cap in passes over the images (smoke runs); None: none
    image_size: int = 28
    channels: int | None = None
    train_limit: int = 20000
    batch_size: int = 512
    workers: int = 16
    encode_threads: int = 1
    page_size: int = 500
    seed: int = 0
    redis_url: str | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        if self.images and self.export:
            raise ValueError("give one source: a folder of images or a Label Studio export, not both")
        if self.channels not in (None, 1, 3):
            raise ValueError(f"channels must be 1 (gray) or 3 (RGB), not {self.channels}")


def _chunks(items: list[Any], n: int) -> list[list[Any]]:
    return [items[i : i + n] for i in range(0, len(items), max(1, n))]


def load_tasks(opts: EncodeOptions, config: Config, store: Store, progress: bool) -> list[dict[str, Any]]:
    """The run's tasks, from the chosen source, without duplicates (last one wins).

    Raises:
        ValueError: Label Studio is the source and its URL or key is unknown.
    """
    if opts.images:
        tasks = tasks_from_dir(opts.images)
    elif opts.export:
        tasks = tasks_from_export(opts.export)
    else:
        ls_url, api_key = _ls_access(opts, config, store)
        if not ls_url or not api_key:
            raise ValueError("Label Studio URL and key are needed: set LABEL_STUDIO_URL and LABEL_STUDIO_API_KEY")
        bar = tqdm(desc="list tasks", unit="task", disable=not progress)
        tasks = []
        for t in iter_tasks(ls_url, api_key, opts.project, page_size=opts.page_size):
            tasks.append(t)
            bar.update(1)
        bar.close()
    return list({t["id"]: t for t in tasks}.values())


def _ls_access(opts: EncodeOptions, config: Config, store: Store) -> tuple[str | None, str | None]:
    access = _access(opts, config, store)
    return access.url, access.api_key


def _access(opts: EncodeOptions, config: Config, store: Store) -> LabelStudioAccess:
    """The configured access; ``--ls-url`` names the URL the configured key goes to (the admin's choice)."""
    access = label_studio_access(config, store.project(opts.project))
    if opts.ls_url:
        return LabelStudioAccess(opts.ls_url.rstrip("/"), config.label_studio_api_key or None, True)
    return access


def make_fetcher(opts: EncodeOptions, config: Config, store: Store) -> Any:
    """The image source for the tasks: a folder reader or an HTTP fetcher with Label Studio's auth.

    The fetcher gets the configured limits through the one shared constructor (``Config.fetch_settings``).
    """
    if opts.images:
        return DirectoryFetcher(opts.images, max_bytes=config.max_image_bytes)
    access = _access(opts, config, store)
    scope = local_storage_scope(replace(config, local_files_root=opts.local_files_root or config.local_files_root),
                                access, opts.project) if access.usable else None
    settings = replace(access.fetch_settings(config, scope), workers=opts.workers,
                       local_files_root=opts.local_files_root or config.local_files_root or None)
    return ImageFetcher.from_settings(settings)


def drop_stale_encoders(store: Store, pid: int, out: TextIO) -> None:
    """Drop older encoders' embeddings once the served head was trained on the current encoder."""
    current = store.current_encoder(pid)
    served = store.current_version(pid)
    if current is None or served is None:
        return
    metas = {m.get("version"): m for m in store.versions(pid)}
    if metas.get(served, {}).get("encoder_version") != current.version:
        return
    for version in store.encoder_versions(pid):
        if version != current.version:
            store.drop_encoder(pid, version)
            print(
                f"dropped encoder {version} and its embeddings (head {served} uses {current.version})",
                file=out,
            )


def train_for_project(
    opts: EncodeOptions,
    objective: str,
    tasks: list[dict[str, Any]],
    fetcher: Any,
    image_key: str | None,
    max_pixels: int,
    progress: bool,
    budget: TrainBudget | None = None,
) -> tuple[EncoderArtifact, dict[int, np.ndarray], dict[int, str]]:
    """Download a sample of the tasks and train an encoder on it.

    Returns:
        The encoder, the sample's preprocessed images by task id (encoded next without a second
        download) and the reasons of the sample's tasks that could not be loaded (not retried this run).
    """
    rng = np.random.default_rng(opts.seed)
    sample = tasks
    if len(tasks) > opts.train_limit:
        sample = [tasks[i] for i in sorted(rng.choice(len(tasks), opts.train_limit, replace=False))]
    channels = opts.channels
    known: dict[int, bytes | FetchError] = {}
    if channels is None:  # from a random sample across the project, fetched once
        picked = [sample[i] for i in channel_sample(len(sample), CHANNEL_SAMPLE, opts.seed)]
        known = fetch_task_images(picked, fetcher, image_key, {})
        channels = choose_channels([b for b in known.values() if isinstance(b, bytes)], max_pixels=max_pixels)
    images: dict[int, np.ndarray] = {}
    errors: dict[int, str] = {}
    bar = tqdm(total=len(sample), desc="download for training", unit="img", disable=not progress)
    for chunk in _chunks(sample, opts.batch_size):
        good = []
        for tid, blob in fetch_task_images(chunk, fetcher, image_key, errors, known).items():
            if isinstance(blob, FetchError):
                errors[tid] = f"{blob.reason}: {blob}"
            else:
                good.append((tid, blob))
        for tid, blob in good:
            try:
                images[tid] = decode_image(blob, size=opts.image_size, channels=channels or 1, max_pixels=max_pixels)
            except DecodeError as exc:
                errors[tid] = f"decode: {exc}"
        bar.update(len(chunk))
        bar.set_postfix(failed=len(errors))
    bar.close()
    if len(images) < 2:
        raise ValueError(f"only {len(images)} of {len(sample)} training images could be loaded; nothing to train on")
    stack = np.stack(list(images.values()))
    artifact = train_encoder(
        stack,
        objective=objective,
        latent_dim=opts.latent_dim,
        budget=budget,
        steps=opts.steps,
        min_steps=opts.min_steps,
        max_seconds=opts.max_seconds,
        patience=opts.patience,
        epochs=opts.epochs,
        seed=opts.seed,
        progress=progress,
    )
    return artifact, images, errors


def encode_project(
    opts: EncodeOptions,
    *,
    config: Config | None = None,
    store: Store | None = None,
    on_batch: Callable[[int], None] | None = None,
    out: TextIO | None = None,
) -> EncodeSummary:
    """Encode every task of ``opts.project`` (see the module docstring); notes go to ``out`` (default stderr).

    Args:
        config: default ``Config.from_env()`` (with ``opts.redis_url`` when given).
        store: default a store on ``config.redis_url``.
        on_batch: called with ``n`` after batch ``n`` is written (tests interrupt runs with it).

    Raises:
        ValueError: an unknown objective, no Label Studio credentials, nothing to train on.
        FileNotFoundError: the folder or export does not exist.
    """
    t0 = time.perf_counter()
    out = out or sys.stderr
    config = config or Config.from_env(**({"redis_url": opts.redis_url} if opts.redis_url else {}))
    store = store or Store.from_url(config.redis_url, keep_versions=config.keep_versions)
    progress = opts.progress
    pid = opts.project
    summary = EncodeSummary(project=pid)
    objective = opts.objective or config.encoder_objective
    get_objective(objective)  # fail fast on a typo, before any download
    drop_stale_encoders(store, pid, out)
    tasks = load_tasks(opts, config, store, progress)
    summary.total = len(tasks)
    project = store.project(pid)
    image_key = "image" if opts.images else (project.get("image_key") or None)
    fetcher = make_fetcher(opts, config, store)
    try:
        current = store.current_encoder(pid)
        pre: dict[int, np.ndarray] = {}
        pre_failed: dict[int, str] = {}
        if current is None or opts.retrain:
            t_train = time.perf_counter()
            artifact, pre, pre_failed = train_for_project(
                opts, objective, tasks, fetcher, image_key, config.max_image_pixels, progress, config.train_budget()
            )
            # project_tasks: what the project held when its encoder was trained (backend.regrow compares)
            meta = {**artifact.meta(), "project_tasks": len(tasks)}
            store.put_encoder(pid, artifact.version, artifact.to_bytes(), meta)
            summary.trained, summary.train_seconds = True, time.perf_counter() - t_train
            print(
                f"trained encoder {artifact.version} ({artifact.info.get('steps_run')} steps, "
                f"{len(pre)} images, {summary.train_seconds:.1f} s)",
                file=out,
            )
        else:
            blob = store.encoder_blob(pid, current.version)
            if blob is None:
                raise ValueError(f"encoder {current.version} has no weights in Redis; rerun with --retrain")
            artifact = EncoderArtifact.from_bytes(blob)
            if (opts.image_size, opts.channels or artifact.channels) != (artifact.image_size, artifact.channels):
                print(
                    f"note: using the current encoder's preprocessing ({artifact.image_size} px, "
                    f"{artifact.channels} channel(s)); pass --retrain to change it",
                    file=out,
                )
        summary.version = artifact.version
        threads = torch.get_num_threads()
        torch.set_num_threads(max(1, opts.encode_threads))
        try:
            encoder = TaskEncoder(artifact, fetcher, image_key, max_pixels=config.max_image_pixels,
                                  max_decode_bytes=config.max_decode_bytes)
            encode_all(store, pid, artifact, encoder, tasks, pre, pre_failed, summary, opts.batch_size, progress,
                       on_batch)
        finally:
            torch.set_num_threads(threads)
    except KeyboardInterrupt:
        summary.interrupted = True
    finally:
        fetcher.close()
        summary.seconds = time.perf_counter() - t0
    if summary.version and not summary.interrupted and head_is_stale(store, pid, summary.version):
        # Also after a rerun that finished an interrupted retrain: the head must move to this encoder.
        summary.head_training_queued = queue_head_training(store, config, pid, out)
    if summary.version and not summary.interrupted and summary.encoded:
        queue_graph_update(store, config, pid, out)
    return summary


def encode_all(
    store: Store,
    pid: int,
    artifact: EncoderArtifact,
    encoder: TaskEncoder,
    tasks: list[dict[str, Any]],
    pre: dict[int, np.ndarray],
    pre_failed: dict[int, str],
    summary: EncodeSummary,
    batch_size: int,
    progress: bool,
    on_batch: Callable[[int], None] | None,
) -> None:
    """Encode the tasks the current encoder has not encoded yet, writing each batch as it is done.

    ``pre`` holds images already loaded for training; ``pre_failed`` tasks failed to load for training in
    this run and are reported without a second try (a later run retries them).
    """
    done = store.encoded_task_ids(pid, artifact.version)
    todo = [t for t in tasks if int(t["id"]) not in done]
    summary.skipped = len(tasks) - len(todo)
    bar = tqdm(total=len(todo), desc=f"encode {artifact.version}", unit="task", disable=not progress)
    for n, chunk in enumerate(_chunks(todo, batch_size), start=1):
        ready = [t for t in chunk if int(t["id"]) in pre]
        summary.failed.update({int(t["id"]): pre_failed[int(t["id"])] for t in chunk if int(t["id"]) in pre_failed})
        rest = [t for t in chunk if int(t["id"]) not in pre and int(t["id"]) not in pre_failed]
        ids, images, errors = encoder.load_images(rest)
        if ready:
            ids = [int(t["id"]) for t in ready] + ids
            images = np.concatenate([np.stack([pre.pop(int(t["id"])) for t in ready]), images])
        if ids:
            vectors = artifact.encode(images)
            store.put_embeddings(pid, artifact.version, {tid: vectors[i] for i, tid in enumerate(ids)})
        summary.encoded += len(ids)
        summary.failed.update(errors)
        bar.update(len(chunk))
        bar.set_postfix(failed=len(summary.failed))
        if on_batch is not None:
            on_batch(n)
    bar.close()


def head_is_stale(store: Store, pid: int, version: str) -> bool:
    """Whether the served head was trained on another encoder's vectors (or there is no head yet)."""
    served = store.current_version(pid)
    if served is None:
        return True
    metas = {m.get("version"): m for m in store.versions(pid)}
    return metas.get(served, {}).get("encoder_version") != version


def queue_graph_update(store: Store, config: Config, pid: int, out: TextIO) -> bool:
    """Queue the graph update that adds this run's tasks to the neighbour graph (or builds it)."""
    from backend.queueing import enqueue_graph_update

    queued = bool(enqueue_graph_update(store, config, pid))
    print("queued a neighbour graph update" if queued else "a neighbour graph update is already queued", file=out)
    return queued


def queue_head_training(store: Store, config: Config, pid: int, out: TextIO) -> bool:
    """Queue a retraining of the head on the new encoder's vectors (the old head used the old ones)."""
    try:
        from backend.queueing import enqueue_training, job_queue
    except ImportError as exc:
        print(f"note: head retraining not queued ({exc}); press 'Start training' in Label Studio", file=out)
        return False
    queued = enqueue_training(store, job_queue(config, store), pid, config)
    print(
        "queued a head retraining on the current encoder" if queued else "a head retraining is already queued",
        file=out,
    )
    return queued

