"""``dalt demo``: Label Studio + Redis + backend + worker with a sample MNIST project.

The demo parses its own options (``dalt demo --help``).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path

HELP = "Label Studio + DALT with a sample MNIST project to label"
PASSTHROUGH = True


def main(argv: Sequence[str]) -> int:
    try:
        from backend.demo import main as demo_main
    except ModuleNotFoundError as exc:
        if exc.name != "backend.demo":
            raise
        # TODO(merge): backend.demo holds the demo; drop this fallback to the script's own main.
        script = Path(__file__).resolve().parents[2] / "scripts" / "demo.py"
        spec = importlib.util.spec_from_file_location("dalt_demo_script", script)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        demo_main = module.main
    return demo_main(list(argv))
