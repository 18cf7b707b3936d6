"""Key names: one module spells them, and every key of a project lands on that project's cluster slot."""

import inspect
import re
from pathlib import Path

from backend.store import keys

ROOT = Path(__file__).resolve().parents[2]


def hash_tag(key: str) -> str:
    """The part of a key Redis Cluster hashes: the text between the first '{' and the next '}', if any."""
    start = key.find("{")
    if start >= 0:
        end = key.find("}", start + 1)
        if end > start + 1:
            return key[start + 1 : end]
    return key


def project_keys(pid: int) -> dict[str, str]:
    """Every key function of ``keys`` called for ``pid`` (versions and buckets filled in)."""
    fill = {"version": "enc-1", "bucket": 3, "snapshot": 2}
    out = {}
    for name, fn in inspect.getmembers(keys, inspect.isfunction):
        params = list(inspect.signature(fn).parameters)
        if name.startswith("_") or name.endswith("_prefix") or params[:1] != ["pid"]:
            continue  # prefixes are not keys
        value = fn(pid, *(fill[p] for p in params[1:]))
        for i, key in enumerate(value if isinstance(value, list) else [value]):
            out[f"{name}[{i}]" if isinstance(value, list) else name] = key
    return out


def test_every_key_of_a_project_shares_its_hash_tag():
    found = project_keys(7)
    assert len(found) >= 25
    for name, key in found.items():
        assert hash_tag(key) == "p7", (name, key)
        assert key.startswith("dalt:{p7}:"), (name, key)


def test_keys_of_different_concepts_never_collide():
    found = project_keys(7)
    singles = {k: v for k, v in found.items() if "[" not in k}
    assert len(set(singles.values())) == len(singles), singles
    assert set(project_keys(8).values()).isdisjoint(found.values())


def test_no_other_module_spells_a_key():
    spelled = re.compile(r"""["']dalt:""")
    offenders = [
        str(path.relative_to(ROOT))
        for folder in ("backend", "encoder")
        for path in (ROOT / folder).rglob("*.py")
        if path != ROOT / "backend/store/keys.py" and spelled.search(path.read_text())
    ]
    assert offenders == []


def test_the_layout_table_lists_every_key():
    doc = keys.__doc__
    assert f"``{keys.PROJECTS}``" in doc
    for name, key in project_keys(7).items():
        suffix = key.removeprefix("dalt:{p7}:").replace("enc-1", "<ver>").replace(":3", ":<bucket>")
        suffix = suffix.replace("spread:2:", "spread:<snap>:")
        assert f"``P:{suffix}``" in doc, (name, suffix)
