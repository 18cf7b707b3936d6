"""What an encoder training objective is, and the paper's one (the autoencoder).

Objectives are listed by name in :mod:`encoder.registry` (``OBJECTIVES``), so new ones plug in without
touching training. The interface, for anyone adding an objective (e.g. ``encoder/augment.py``,
``encoder/contrastive.py``)::

    from encoder.objectives import Objective

    class MyObjective(Objective):
        name = "my-objective"

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
* Add the class to ``OBJECTIVES`` in :mod:`encoder.registry` under its ``name``.
* Only the encoder is saved in the artifact; extra modules are discarded after training.
* ``options`` come from ``train_encoder(..., objective_options={...})``; unknown keys should raise.
* Randomness: the trainer seeds torch (``torch.manual_seed(seed)``) before building the objective.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from encoder.model import ConvDecoder, ConvEncoder


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


class AutoencoderObjective(Objective):
    """The paper's objective: reconstruct the input from its latent vector; loss = mean squared error."""

    name = "autoencoder"

    def __init__(self, encoder: ConvEncoder):
        super().__init__(encoder)
        self.decoder = ConvDecoder(encoder.channels, encoder.size, encoder.latent_dim)

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(self.decoder(self.encoder(batch)), batch)
