"""Bulk-encoding benchmark: images/s against the floor of merely downloading and decoding them.

The 5,000 MNIST digits are served over HTTP (a separate server process, Label Studio's upload URL form).
Measured in one run: the download+decode floor with 1 and 2 processes, ``dalt encode`` in one process,
and the RQ fan-out of encoding chunks (``backend.jobs.encode_tasks_job``) over 1 and 2 real workers.
"""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import redis
import requests
from PIL import Image
from rq import Queue
from tqdm.auto import tqdm

from backend.bench.common import (
    LABEL_CONFIG,
    PID,
    POLL,
    ROOT,
    TRANSIENT,
    Section,
    bench_env,
    ratio,
    redis_server,
    rq_workers,
)
from backend.bench.data import mnist, mnist_encoder
from backend.processes import ManagedProcess, free_port, wait_for

API_KEY = "bench-legacy-token"
CHUNK = 500  # tasks per RQ encoding job
# A threaded static file server speaking HTTP/1.1 (keep-alive), as Label Studio's web server does.
_SERVER = """
import functools, sys
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
class H(SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), functools.partial(H, directory=sys.argv[2])).serve_forever()
"""


@contextlib.contextmanager
def image_server(n: int) -> Iterator[tuple[str, list[dict]]]:
    """Serve ``n`` MNIST digits as PNG files at ``/data/upload/1/<id>.png``; yields (URL, tasks)."""
    images, _ = mnist()
    with tempfile.TemporaryDirectory(prefix="dalt-bench-images-") as tmp:
        folder = Path(tmp, "data", "upload", str(PID))
        folder.mkdir(parents=True)
        tasks = []
        for i in range(n):
            buf = io.BytesIO()
            Image.fromarray(images[i % len(images)], "L").save(buf, format="PNG")
            (folder / f"{i + 1}.png").write_bytes(buf.getvalue())
            tasks.append({"id": i + 1, "data": {"image": f"/data/upload/{PID}/{i + 1}.png"}})
        port = free_port()
        server = ManagedProcess("image-server", [sys.executable, "-c", _SERVER, str(port), tmp],
                                log_path=Path(tmp, "server.log")).start()
        url = f"http://127.0.0.1:{port}"
        try:
            wait_for(lambda: requests.get(url + tasks[0]["data"]["image"], timeout=1).ok, 20, "image server",
                     interval=POLL, ignore=TRANSIENT)
            yield url, tasks
        finally:
            server.stop(timeout=10)


def _download_decode(args: tuple[str, list[str]]) -> int:
    """Floor work for one process: fetch (16 threads, as bulk encoding does) and decode; returns images."""
    from encoder.decode import decode_image
    from encoder.fetch import ImageFetcher

    url, refs = args
    fetcher = ImageFetcher(url, API_KEY, workers=16)
    try:
        n = 0
        for start in range(0, len(refs), 512):
            for blob in fetcher.fetch_many(refs[start : start + 512]):
                if isinstance(blob, bytes):
                    decode_image(blob, size=28, channels=1)
                    n += 1
        return n
    finally:
        fetcher.close()


def floor_rate(url: str, tasks: list[dict], processes: int) -> float:
    """Images/s of merely downloading and decoding all tasks, split over ``processes`` processes."""
    refs = [t["data"]["image"] for t in tasks]
    parts = [(url, refs[i::processes]) for i in range(processes)]
    with ProcessPoolExecutor(processes, mp_context=get_context("spawn")) as pool:
        list(pool.map(_download_decode, [(url, refs[:8])] * processes))  # start-up and imports, not timed
        t0 = time.perf_counter()
        done = sum(pool.map(_download_decode, parts))
        dt = time.perf_counter() - t0
    if done != len(refs):
        raise RuntimeError(f"floor: only {done} of {len(refs)} images downloaded and decoded")
    return done / dt


def _seed_encoder(r: redis.Redis, artifact) -> object:
    from backend.projects import Projects
    from backend.store import Store

    r.flushall()
    store = Store(r)
    Projects(store).configure(PID, LABEL_CONFIG)
    store.put_encoder(PID, artifact.version, artifact.to_bytes(), artifact.meta())
    return store


def script_rate(redis_url: str, url: str, tasks: list[dict], artifact) -> tuple[float, str]:
    """``dalt encode`` (one process, existing encoder) on a JSON export; its own images/s."""
    store = _seed_encoder(redis.Redis.from_url(redis_url), artifact)
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump(tasks, fh)
    try:
        out = subprocess.run(
            [sys.executable, "-m", "backend.cli", "encode", "--project", str(PID), "--export", fh.name,
             "--ls-url", url, "--no-progress"],
            env=bench_env(redis_url, LABEL_STUDIO_API_KEY=API_KEY, OMP_NUM_THREADS="2"),
            cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
        )
    finally:
        Path(fh.name).unlink()
    line = (out.stdout.strip().splitlines() or [""])[-1]
    ids, _ = store.all_embeddings(PID, artifact.version)
    if out.returncode != 0 or len(ids) != len(tasks):
        raise RuntimeError(f"dalt encode failed ({len(ids)} encoded): {out.stderr[-2000:]}")
    seconds = float(line.rsplit(" in ", 1)[1].split(" s", 1)[0])
    return len(tasks) / seconds, line


def fanout_rate(redis_url: str, url: str, tasks: list[dict], artifact, workers: int, chunk: int,
                progress: bool) -> float:
    """Images/s of encoding all tasks as RQ chunk jobs (``backend.jobs.encode_tasks_job``) over ``workers``."""
    from backend.config import Config
    from backend.queueing import enqueue_encoding

    r = redis.Redis.from_url(redis_url)
    store = _seed_encoder(r, artifact)
    config = Config(redis_url=redis_url, train_retries=0)
    with rq_workers(redis_url, workers, LABEL_STUDIO_URL=url, LABEL_STUDIO_API_KEY=API_KEY):
        queue = Queue(config.queue_name, connection=r)
        t0 = time.perf_counter()
        jobs = [queue.fetch_job(enqueue_encoding(queue, PID, tasks[i : i + chunk], config))
                for i in range(0, len(tasks), chunk)]
        bar = tqdm(total=len(jobs), desc=f"encode via RQ, {workers} worker(s)", unit="job", disable=not progress)
        done = 0
        while done < len(jobs):
            states = [j.get_status(refresh=True) for j in jobs]
            if any(s in ("failed", "stopped", "canceled") for s in states):
                raise RuntimeError(f"an encoding job failed: {[j.exc_info for j in jobs if j.is_failed][:1]}")
            finished = sum(s == "finished" for s in states)
            bar.update(finished - done)
            done = finished
            time.sleep(0.05)
        dt = time.perf_counter() - t0
        bar.close()
    encoded = len(store.all_embeddings(PID, artifact.version)[0])
    if encoded != len(tasks):
        raise RuntimeError(f"RQ fan-out encoded {encoded} of {len(tasks)} tasks")
    return len(tasks) / dt


def bench_encoding(quick: bool, progress: bool) -> Section:
    """Items 5 and 7 (encoding): throughput vs the download+decode floor, 1 vs 2 processes / workers."""
    sec = Section("encoding")
    n, chunk = (400, 100) if quick else (5_000, CHUNK)
    artifact, _ = mnist_encoder(*((1, 2, 1_000) if quick else (6,)))
    data: dict = {"images": n}
    with redis_server() as redis_url, image_server(n) as (url, tasks):
        floor = {p: floor_rate(url, tasks, p) for p in (1, 2)}
        script, line = script_rate(redis_url, url, tasks, artifact)
        fan = {w: fanout_rate(redis_url, url, tasks, artifact, w, chunk, progress) for w in (1, 2)}
    data.update(floor_images_per_s={p: round(v, 1) for p, v in floor.items()},
                encode_tasks_script_images_per_s=round(script, 1), encode_tasks_summary=line,
                rq_fanout_images_per_s={w: round(v, 1) for w, v in fan.items()},
                ratio_to_floor={"script_1proc": ratio(script, floor[1]),
                                "rq_1worker": ratio(fan[1], floor[1]), "rq_2workers": ratio(fan[2], floor[2])},
                rq_speedup_2_over_1=ratio(fan[2], fan[1]))
    sec.row(f"download+decode floor, {n} PNG digits over HTTP", f"{floor[1]:.0f} img/s (1 proc)",
            f"{floor[2]:.0f} img/s (2 procs)")
    sec.row("bulk encode: dalt encode, 1 process", f"{script:.0f} img/s",
            f"x{ratio(script, floor[1])} of the 1-process floor")
    for w in (1, 2):
        sec.row(f"bulk encode: RQ chunk jobs ({chunk} tasks), {w} worker(s)", f"{fan[w]:.0f} img/s",
                f"x{ratio(fan[w], floor[w])} of the {w}-process floor")
    sec.row("RQ encoding fan-out speed-up, 2 workers vs 1", f"x{ratio(fan[2], fan[1])}", "2 cores, shared")
    sec.data = data
    best = max(ratio(script, floor[1]), ratio(fan[1], floor[1]))
    sec.goal("bulk encoding at least half the download+decode floor", best >= 0.5,
             f"1 process: script x{ratio(script, floor[1])}, RQ x{ratio(fan[1], floor[1])}; "
             f"2 workers: RQ x{ratio(fan[2], floor[2])}")
    return sec
