"""The explicit objective registry, and the encoder package standing on its own (it never imports backend)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from encoder.augment import AugmentedAutoencoderObjective
from encoder.contrastive import ContrastiveObjective
from encoder.fetch import ImageFetcher
from encoder.objectives import AutoencoderObjective
from encoder.registry import OBJECTIVES, get_objective
from encoder.settings import FetchSettings

ENCODER = Path(__file__).resolve().parents[2] / "encoder"


def test_objectives_are_listed_explicitly_under_their_own_names():
    assert OBJECTIVES == {
        "autoencoder": AutoencoderObjective,
        "augmented-autoencoder": AugmentedAutoencoderObjective,
        "contrastive": ContrastiveObjective,
    }
    assert all(cls.name == name for name, cls in OBJECTIVES.items())
    with pytest.raises(KeyError, match="known: augmented-autoencoder, autoencoder, contrastive"):
        get_objective("simclr")


def imported_modules(path: Path) -> set[str]:
    mods = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            mods.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            mods.add(node.module)
    return mods


def test_the_encoder_package_never_imports_the_backend():
    offenders = {
        p.name: sorted(m for m in imported_modules(p) if m == "backend" or m.startswith("backend."))
        for p in sorted(ENCODER.glob("*.py"))
    }
    assert {name: mods for name, mods in offenders.items() if mods} == {}


def test_encoder_messages_name_no_backend_setting():
    env = re.compile(r"\b(DALT_[A-Z_]+|LABEL_STUDIO_[A-Z_]+|REDIS_URL)\b")
    found = {p.name: env.findall(p.read_text()) for p in sorted(ENCODER.glob("*.py"))}
    assert {name: names for name, names in found.items() if names} == {}


def test_a_fetcher_from_settings():
    settings = FetchSettings(ls_url="http://ls:8080/", api_key="key-SECRET", timeout=3, max_bytes=1000,
                             allowed_hosts=("img.example",), allow_private_networks=True,
                             local_files_root="/tmp", workers=2)
    with ImageFetcher.from_settings(settings) as f:
        assert (f.ls_url, f.timeout, f.max_bytes, f.allowed_hosts, f.allow_private_networks, f.workers) == (
            "http://ls:8080", 3.0, 1000, ("img.example",), True, 2)
        assert f.local is not None and f.local.root == "/tmp"
    assert "SECRET" not in repr(settings)  # the key never shows in logs
