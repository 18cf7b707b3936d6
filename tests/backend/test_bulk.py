"""Bulk encoding (backend.bulk) end to end: a fake Label Studio over HTTP, a folder, an export; Redis real."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from backend import bulk
from backend.config import Config
from backend.store import Store
from tests.conftest import ROOT, worker_env
from tests.encoder import conftest as encoder_fixtures
from tests.encoder.conftest import png_bytes
from tests.fake_label_studio import FakeLabelStudio

# The fake Label Studio and MNIST fixtures of the encoder tests, shared here.
digit_pngs = encoder_fixtures.digit_pngs
fake_ls = encoder_fixtures.fake_ls
mnist_small = encoder_fixtures.mnist_small

DALT = Path(sys.executable).parent / "dalt"  # the console script of the environment running the tests


def opts(**kwargs) -> bulk.EncodeOptions:
    """A run's options as the tests use them: no progress bars, 2 epochs, project 1 unless said."""
    return bulk.EncodeOptions(**{"project": 1, "progress": False, "epochs": 2, **kwargs})


@pytest.fixture
def ls_project(fake_ls: FakeLabelStudio, mnist_small) -> FakeLabelStudio:
    """Project 1 with 60 digit uploads (tasks 1..60), a missing file (61) and a corrupt one (62)."""
    images = mnist_small[0]
    tasks = []
    for i in range(1, 61):
        path = f"/data/upload/1/digit{i}.png"
        fake_ls.uploads[path] = png_bytes(images[i])
        tasks.append({"id": i, "data": {"image": path}})
    fake_ls.uploads["/data/upload/1/corrupt.png"] = b"\x89PNG\r\n\x1a\n broken"
    tasks.append({"id": 61, "data": {"image": "/data/upload/1/missing.png"}})
    tasks.append({"id": 62, "data": {"image": "/data/upload/1/corrupt.png"}})
    fake_ls.tasks[1] = tasks
    return fake_ls


@pytest.fixture
def ls_config(config: Config, ls_project: FakeLabelStudio) -> Config:
    return dataclasses.replace(config, label_studio_url=ls_project.url, label_studio_api_key=ls_project.pat)


def downloads(ls: FakeLabelStudio) -> list[str]:
    return [r.path for r in ls.hits("/data/upload/")]


def test_encodes_a_label_studio_project_then_skips_it(
    ls_project: FakeLabelStudio, ls_config: Config, store: Store
) -> None:
    summary = bulk.encode_project(opts(page_size=25), config=ls_config, store=store)
    assert len(ls_project.hits("/api/tasks/")) == 4  # 3 pages of 25 and Label Studio's 404 past the end
    assert summary.trained and summary.total == 62 and summary.encoded == 60
    assert sorted(summary.failed) == [61, 62]
    assert summary.reasons() == {"not_found": 1, "decode": 1}
    assert summary.head_training_queued
    current = store.current_encoder(1)
    assert current is not None and current.version == summary.version and current.dim == 32
    assert store.encoded_task_ids(1, summary.version) == set(range(1, 61))
    assert len(downloads(ls_project)) == 62  # each image downloaded once (training and encoding share it)
    line = summary.line()
    assert "encoded 60, skipped 0" in line and "failed 2 (" in line
    assert "not_found: 1" in line and "decode: 1" in line

    before = len(downloads(ls_project))
    again = bulk.encode_project(opts(), config=ls_config, store=store)
    assert not again.trained and again.version == summary.version
    assert again.encoded == 0 and again.skipped == 60 and sorted(again.failed) == [61, 62]
    assert sorted(downloads(ls_project)[before:]) == ["/data/upload/1/corrupt.png", "/data/upload/1/missing.png"]


def test_interrupted_run_resumes_without_reencoding(
    ls_project: FakeLabelStudio, ls_config: Config, store: Store
) -> None:
    def stop_after_two(n: int) -> None:
        if n == 2:
            raise KeyboardInterrupt

    first = bulk.encode_project(opts(batch_size=20), config=ls_config, store=store, on_batch=stop_after_two)
    assert first.interrupted and first.encoded == 40 and not first.head_training_queued
    done = store.encoded_task_ids(1, first.version)
    assert len(done) == 40

    before = len(downloads(ls_project))
    second = bulk.encode_project(opts(batch_size=20), config=ls_config, store=store)
    assert not second.interrupted and not second.trained and second.version == first.version
    assert second.skipped == 40 and second.encoded == 20
    assert second.head_training_queued  # the interrupted run never got to queue it
    fetched = downloads(ls_project)[before:]
    assert len(fetched) == 22  # the 20 not yet encoded and the two failing ones; nothing encoded twice
    assert not {f"/data/upload/1/digit{i}.png" for i in done} & set(fetched)
    assert store.encoded_task_ids(1, first.version) == set(range(1, 61))


def test_retrain_makes_a_new_version_and_old_embeddings_go_once_the_head_uses_it(
    ls_config: Config, store: Store
) -> None:
    first = bulk.encode_project(opts(), config=ls_config, store=store)
    second = bulk.encode_project(opts(retrain=True, seed=1), config=ls_config, store=store)
    assert second.trained and second.version != first.version and second.encoded == 60
    assert store.current_encoder(1).version == second.version
    assert len(store.encoded_task_ids(1, first.version)) == 60  # the served head may still need them
    store.publish_head(1, b"head", {"encoder_version": second.version}, generation=1)
    bulk.encode_project(opts(), config=ls_config, store=store)
    assert store.encoder_versions(1) == [second.version]
    assert store.encoded_task_ids(1, first.version) == set()


def test_tasks_from_dir_id_rule(tmp_path: Path) -> None:
    from encoder.sources import tasks_from_dir

    (tmp_path / "a").mkdir()
    for name in ("7.png", "a/12.jpg", "3.png"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "notes.txt").write_text("ignored")
    assert [(t["id"], t["data"]["image"]) for t in tasks_from_dir(tmp_path)] == [
        (3, "3.png"),
        (7, "7.png"),
        (12, "a/12.jpg"),
    ]
    (tmp_path / "cat.png").write_bytes(b"x")  # one non-numeric name: numbered by sorted path
    assert [(t["id"], t["data"]["image"]) for t in tasks_from_dir(tmp_path)] == [
        (1, "3.png"),
        (2, "7.png"),
        (3, "a/12.jpg"),
        (4, "cat.png"),
    ]


@pytest.mark.parametrize("command", [[str(DALT), "encode"], [sys.executable, "scripts/encode_tasks.py"]],
                         ids=["dalt", "older-script"])
def test_cli_encodes_a_folder_without_label_studio(tmp_path: Path, mnist_small, redis_server: str, store: Store,
                                                   command: list[str]):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(1, 31):
        (folder / f"{i}.png").write_bytes(png_bytes(mnist_small[0][i]))
    (folder / "31.png").write_bytes(b"<html>oops</html>")
    proc = subprocess.run(
        [
            *command,
            "--project",
            "9",
            "--images",
            str(folder),
            "--redis-url",
            redis_server,
            "--epochs",
            "2",
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        env=worker_env(redis_server),
        timeout=120,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    assert "encoded 30, skipped 0 (already encoded), failed 1 (decode: 1), of 31 tasks" in proc.stdout
    assert "task 31: decode: not an image" in proc.stderr
    version = store.current_encoder(9).version
    assert store.encoded_task_ids(9, version) == set(range(1, 31))


def test_export_with_local_files_root(tmp_path: Path, mnist_small, config: Config, store: Store) -> None:
    root = tmp_path / "ls-files"
    (root / "images").mkdir(parents=True)
    export = []
    for i in range(1, 21):
        (root / "images" / f"d{i}.png").write_bytes(png_bytes(mnist_small[0][i]))
        export.append({"id": 100 + i, "data": {"image": f"/data/local-files/?d=images/d{i}.png"}, "annotations": []})
    path = tmp_path / "export.json"
    path.write_text(json.dumps(export))
    cfg = dataclasses.replace(config, label_studio_url="http://ls.invalid:8080")  # never contacted
    summary = bulk.encode_project(
        opts(project=4, export=str(path), local_files_root=str(root), channels=1), config=cfg, store=store
    )
    assert summary.encoded == 20 and not summary.failed
    ids, vecs = store.all_embeddings(4, summary.version)
    assert sorted(ids.tolist()) == list(range(101, 121)) and np.isfinite(vecs).all()


def test_options_are_checked_once_at_the_edge() -> None:
    with pytest.raises(ValueError, match="not both"):
        bulk.EncodeOptions(project=1, images="a", export="b.json")
    with pytest.raises(ValueError, match="channels"):
        bulk.EncodeOptions(project=1, channels=2)


def test_an_unknown_objective_fails_before_any_download(ls_project: FakeLabelStudio, ls_config: Config,
                                                         store: Store) -> None:
    with pytest.raises((KeyError, ValueError), match="no-such-objective"):
        bulk.encode_project(opts(objective="no-such-objective"), config=ls_config, store=store)
    assert downloads(ls_project) == []


def test_summary_lists_failures_and_picks_the_exit_status() -> None:
    s = bulk.EncodeSummary(project=3, total=15, failed={t: "not_found: gone" for t in range(1, 13)})
    lines = s.failure_lines()
    assert lines[0] == "  task 1: not_found: gone" and lines[-1] == "  ... and 2 more failures" and len(lines) == 11
    assert s.exit_code() == 1  # nothing encoded
    assert dataclasses.replace(s, encoded=3).exit_code() == 0
    assert dataclasses.replace(s, encoded=3, interrupted=True).exit_code() == 130


def test_fetcher_gets_the_configured_limits_and_the_run_s_workers(config: Config, store: Store,
                                                                  tmp_path: Path) -> None:
    cfg = dataclasses.replace(config, label_studio_url="http://ls.invalid:8080", fetch_timeout=3.0,
                              max_image_bytes=1234)
    fetcher = bulk.make_fetcher(opts(workers=3, local_files_root=str(tmp_path)), cfg, store)
    try:
        assert (fetcher.workers, fetcher.timeout, fetcher.max_bytes) == (3, 3.0, 1234)
        assert fetcher.ls_url == "http://ls.invalid:8080" and fetcher.local.root == str(tmp_path.resolve())
    finally:
        fetcher.close()
