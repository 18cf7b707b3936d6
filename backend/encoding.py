"""Glue between the backend and the ``encoder`` package: encode cache misses with the project's encoder.

Placeholder until the encoder issue lands: without an encoder no task can be encoded on the fly.
"""

from __future__ import annotations

import numpy as np

from backend.config import Config
from backend.store import Store


def encode_missing(store: Store, config: Config, pid: int, tasks: list[dict]) -> dict[int, np.ndarray]:
    """Encode ``tasks`` with the project's current encoder, store and return the vectors by task id."""
    return {}
