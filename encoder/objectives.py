"""Training objectives for the encoder, in a registry so new ones plug in without touching training.

The interface, for anyone adding an objective (e.g. ``encoder/augment.py``, ``encoder/contrastive.py``)::

    from encoder.objectives import Objective, register_objective

    @register_objective("my-objective")
    class MyObjective(Objective):
        def __init__(self, encoder: ConvEncoder, **options):
            super().__init__(encoder)
            self.head = nn.Linear(encoder.latent_dim, 64)   # extra modules are trained too

        def forward(self, batch: torch.Tensor) -> torch.Tensor:
            views = my_augment(batch)                        # the objective augments the raw batch itself
            return some_loss(self.encoder(views))            # a scalar loss tensor

Rules:

* ``batch`` is the RAW batch: ``float32 [B, C, H, W]`` in ``[0, 1]`` on the training device, exactly as
  :func:`encoder.decode.decode_image` makes it (no augmentation, no normalization). An objective that
  wants augmented inputs or several views makes them itself, so training code never changes.
* ``forward`` returns a scalar loss; the trainer backpropagates it into ``objective.parameters()``,
  which holds the encoder AND any module the objective owns (decoder, projection head).
* The trainer calls ``objective.train()``/``.eval()``; validation calls :meth:`Objective.validation_loss`
  (default: ``forward`` under ``torch.no_grad``), which early stopping compares across epochs. Override it
  when ``forward`` is random (augmentations), e.g. with a fixed generator, so that epochs compare fairly.
* Only the encoder is saved in the artifact; extra modules are discarded after training.
* ``options`` come from ``train_encoder(..., objective_options={...})``; unknown keys should raise.
* Randomness: the trainer seeds torch (``torch.manual_seed(seed)``) before building the objective.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from encoder.model import ConvDecoder, ConvEncoder

OBJECTIVES: dict[str, type[Objective]] = {}


def register_objective(name: str) -> Callable[[type[Objective]], type[Objective]]:
    """Class decorator: make an objective selectable by ``name`` (``train_encoder(objective=name)``)."""

    def deco(cls: type[Objective]) -> type[Objective]:
        if name in OBJECTIVES and OBJECTIVES[name] is not cls:
            raise ValueError(f"objective {name!r} is already registered by {OBJECTIVES[name].__qualname__}")
        OBJECTIVES[name] = cls
        cls.name = name
        return cls

    return deco


def get_objective(name: str) -> type[Objective]:
    """The objective class registered as ``name``.

    Objectives living in optional modules (``encoder.augment``, ``encoder.contrastive``) are imported on
    first use, so ``OBJECTIVES`` lists them once those modules exist.

    Raises:
        KeyError: listing the known names.
    """
    _load_plugins()
    try:
        return OBJECTIVES[name]
    except KeyError:
        raise KeyError(
            f"unknown encoder objective {name!r}; known: {', '.join(sorted(OBJECTIVES))}"
        ) from None


_PLUGINS = ("encoder.augment", "encoder.contrastive")


def _load_plugins() -> None:
    import importlib

    for mod in _PLUGINS:
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as exc:
            if exc.name != mod:  # the plugin exists but one of ITS imports is missing: say so
                raise


class Objective(nn.Module):
    """Base class: holds the encoder being trained; subclasses compute a loss from a raw batch."""

    name = "base"

    def __init__(self, encoder: ConvEncoder):
        super().__init__()
        self.encoder = encoder

    def forward(self, batch: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def validation_loss(self, batch: torch.Tensor) -> torch.Tensor:
        """Loss on held-out data for early stopping (deterministic objectives: the training loss)."""
        with torch.no_grad():
            return self.forward(batch)


@register_objective("autoencoder")
class AutoencoderObjective(Objective):
    """The paper's objective: reconstruct the input from its latent vector; loss = mean squared error."""

    def __init__(self, encoder: ConvEncoder):
        super().__init__(encoder)
        self.decoder = ConvDecoder(encoder.channels, encoder.size, encoder.latent_dim)

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(self.decoder(self.encoder(batch)), batch)
