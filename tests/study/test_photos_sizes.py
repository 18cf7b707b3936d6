"""The study's colour-photo dataset, its file order, and the size curve, at tiny sizes."""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from backend.cli import main as dalt
from backend.cli.study import parse_sizes
from backend.study.datasets import Dataset, file_order, load_folder, shuffled
from backend.study.options import StudyOptions
from backend.study.photos import PHOTOS, build_photos


@pytest.fixture
def study_redis(redis_server: str, redis_client) -> Iterator[str]:
    """The private Redis for a study run, flushed afterwards: study projects use fixed ids, and other study
    tests on the same server must not find this run's labels."""
    yield redis_server
    redis_client.flushall()


def _digest(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.iterdir()):
        h.update(p.name.encode() + p.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    return build_photos(tmp_path_factory.mktemp("photos") / "p", per_class=4, size=24, seed=0)


def test_photos_are_deterministic_and_class_ordered(photos: Path, tmp_path: Path) -> None:
    with open(photos / "labels.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["label"] for r in rows] == [name for name in PHOTOS for _ in range(4)]
    assert all((photos / r["file"]).is_file() for r in rows)
    assert _digest(build_photos(tmp_path / "again", per_class=4, size=24, seed=0)) == _digest(photos)
    assert _digest(build_photos(tmp_path / "other", per_class=4, size=24, seed=1)) != _digest(photos)


def test_photos_load_as_rgb_although_the_first_classes_are_gray(photos: Path) -> None:
    ds = load_folder(photos, image_size=16)
    assert ds.images.shape == (40, 3, 16, 16)
    first = ds.images[:24]  # the six grayscale photos
    assert np.allclose(first[:, 0], first[:, 1]) and not np.allclose(ds.images[24:, 0], ds.images[24:, 1])


def test_sorted_order_visits_the_same_subset_in_file_order() -> None:
    labels = np.repeat(np.array(list("abcd")), 10)
    ds = Dataset("x", np.zeros((40, 1, 8, 8), np.float32), labels)
    rand = shuffled(ds, 0, 12)
    kept = rand.labels[file_order(rand)].tolist()
    assert sorted(rand.labels.tolist()) == sorted(kept) and kept == sorted(kept) and rand.labels.tolist() != kept
    with pytest.raises(ValueError, match="order"):
        StudyOptions(dataset="digits", order="backwards")


def test_parse_sizes() -> None:
    assert parse_sizes("600,300, 600") == (300, 600)
    for bad in ("", "a,b", "5"):
        with pytest.raises(ValueError):
            parse_sizes(bad)


def test_size_curve_and_sorted_order_end_to_end(tmp_path: Path, study_redis: str) -> None:
    argv = ["study", "--dataset", "digits", "--sizes", "60,90", "--order", "sorted", "--methods", "pca+lr,ae+lr",
            "--epochs", "1", "--eager", "20", "--growth", "0.2", "--no-progress", "--redis-url", study_redis,
            "--json", str(tmp_path / "sizes.json"), "--plot", str(tmp_path)]
    assert dalt(argv) == 0
    report = json.loads((tmp_path / "sizes.json").read_text())
    assert report["sizes"] == [60, 90] and report["order"] == "sorted"
    assert set(report["methods"]) == {"pca+lr", "ae+lr"}
    for by_size in report["methods"].values():
        assert set(by_size) == {"60", "90"}
        for v in by_size.values():
            assert 0.0 <= v["acceptance_rate"] <= 1.0 and v["rest_accuracy_50"] is not None
    assert report["methods"]["ae+lr"]["60"]["encoder_steps"] >= 1
    assert (tmp_path / "digits_sizes.png").read_bytes()[:4] == b"\x89PNG"


def test_both_orders_replay_every_method_on_the_same_features(tmp_path: Path, study_redis: str) -> None:
    argv = ["study", "--dataset", "digits", "--limit", "60", "--order", "both", "--methods", "pca+lr",
            "--eager", "20", "--growth", "0.2", "--no-progress", "--redis-url", study_redis,
            "--json", str(tmp_path / "both.json")]
    assert dalt(argv) == 0
    report = json.loads((tmp_path / "both.json").read_text())
    assert set(report["methods"]) == {"pca+lr@random", "pca+lr@sorted"} and report["order"] == "both"
    assert {m["task_order"] for m in report["methods"].values()} == {"random", "sorted"}


def test_coldstart_in_file_order_leads_with_the_typical_task_of_every_cluster() -> None:
    from backend.study.runner import coldstart_order

    centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    ring = np.stack([np.cos(np.arange(9) * 2 * np.pi / 9), np.sin(np.arange(9) * 2 * np.pi / 9)], axis=1)
    # Task 10c is cluster c's exact centre (and its mean); nine more sit on a unit ring around it.
    vectors = np.concatenate([np.vstack([centres[c], centres[c] + ring]) for c in range(3)])
    cluster_of = np.repeat(np.arange(3), 10)
    centre_tasks = {0, 10, 20}
    imported = np.argsort(np.arange(30) % 7, kind="stable")  # any permutation but the identity
    order = coldstart_order(imported, vectors, 3, seed=0)
    assert sorted(order.tolist()) == list(range(30))
    assert set(order[:3].tolist()) == centre_tasks
    assert sorted(cluster_of[order[:3]].tolist()) == [0, 1, 2]
