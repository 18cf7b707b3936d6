"""A trained encoder as one versioned, self-describing blob that any process can load.

The blob lives in Redis (``Store.put_encoder``), so a worker on another machine needs nothing but Redis.
It is a ``torch.save`` of plain data only (a format number, the network's shape, the objective's name,
the preprocessing and the encoder's ``state_dict``) and is read with ``torch.load(weights_only=True)``:
loading never unpickles arbitrary objects, even from a tampered Redis.

The version is ``enc-<objective>-<8 hex>``, a hash of the configuration and the weights, so the same
weights always get the same version and different weights (practically) never share one.
"""

from __future__ import annotations

import hashlib
import io
import json
from typing import Any

import numpy as np
import torch

from encoder.model import ConvEncoder

FORMAT = 1


def _content_hash(config: dict[str, Any], state: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256(json.dumps(config, sort_keys=True).encode())
    for key in sorted(state):
        h.update(key.encode())
        h.update(state[key].detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:8]


class EncoderArtifact:
    """An encoder ready to turn preprocessed images into vectors.

    Attributes:
        version: ``enc-<objective>-<8 hex>``, content hash based.
        dim: latent size (length of each vector).
        image_size: side length the images must be preprocessed to.
        channels: 1 (grayscale) or 3 (RGB).
        objective: name of the objective it was trained with.
        info: free-form training facts (epochs, losses, seconds, samples), JSON-serializable.
    """

    def __init__(self, model: ConvEncoder, *, objective: str, info: dict[str, Any] | None = None):
        self.model = model.cpu().eval()
        self.dim = int(model.latent_dim)
        self.image_size = int(model.size)
        self.channels = int(model.channels)
        self.objective = objective
        self.info = dict(info or {})
        self._config = {
            "channels": self.channels,
            "size": self.image_size,
            "latent_dim": self.dim,
            "objective": self.objective,
        }
        if getattr(model, "pre_convs", False):  # absent = the original two-conv network
            self._config["pre_convs"] = True
        self.version = f"enc-{objective}-{_content_hash(self._config, self.model.state_dict())}"

    def meta(self) -> dict[str, Any]:
        """What the store keeps next to the blob (JSON-serializable; holds ``dim``)."""
        return {
            "version": self.version,
            "dim": self.dim,
            "image_size": self.image_size,
            "channels": self.channels,
            "objective": self.objective,
            "format": FORMAT,
            **{k: v for k, v in self.info.items() if k not in ("version", "dim")},
        }

    def to_bytes(self) -> bytes:
        """Serialize weights and configuration (plain tensors, numbers and strings only)."""
        buf = io.BytesIO()
        state = {k: v.detach().cpu().contiguous() for k, v in self.model.state_dict().items()}
        torch.save(
            {"format": FORMAT, "config": self._config, "info_json": json.dumps(self.info), "state": state},
            buf,
        )
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, blob: bytes) -> EncoderArtifact:
        """Load a blob made by :meth:`to_bytes`.

        Raises:
            ValueError: the blob is not an encoder artifact of a known format.
        """
        try:
            data = torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - torch raises many kinds on garbage
            raise ValueError(f"not a loadable encoder artifact: {type(exc).__name__}: {exc}") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ValueError("not an encoder artifact of a known format")
        cfg = data["config"]
        model = ConvEncoder(
            int(cfg["channels"]), int(cfg["size"]), int(cfg["latent_dim"]), pre_convs=bool(cfg.get("pre_convs", False))
        )
        model.load_state_dict(data["state"])
        return cls(model, objective=str(cfg["objective"]), info=json.loads(data.get("info_json") or "{}"))

    def encode(self, images: np.ndarray, batch_size: int = 1024) -> np.ndarray:
        """Vectors for preprocessed images ``float32 [N, channels, size, size]`` -> ``float32 [N, dim]``."""
        images = np.asarray(images, dtype=np.float32)
        expected = (self.channels, self.image_size, self.image_size)
        if images.ndim != 4 or images.shape[1:] != expected:
            raise ValueError(
                f"images must have shape [N, {expected[0]}, {expected[1]}, {expected[2]}], "
                f"not {list(images.shape)}"
            )
        out = np.empty((images.shape[0], self.dim), np.float32)
        with torch.inference_mode():
            for start in range(0, images.shape[0], batch_size):
                chunk = torch.from_numpy(images[start : start + batch_size])
                out[start : start + chunk.shape[0]] = self.model(chunk).numpy()
        return out
