"""Every encoder training objective by name: ``train_encoder(objective=...)`` chooses from this dict.

An explicit dict (no registration on import): what exists is readable here, and importing a module
never changes it.
"""

from __future__ import annotations

from encoder.augment import AugmentedAutoencoderObjective
from encoder.contrastive import ContrastiveObjective
from encoder.objectives import AutoencoderObjective, Objective

OBJECTIVES: dict[str, type[Objective]] = {
    "autoencoder": AutoencoderObjective,  # the paper's: reconstruct the input
    "augmented-autoencoder": AugmentedAutoencoderObjective,  # the paper's, on augmented images
    "contrastive": ContrastiveObjective,  # SimCLR-style; the labeling study's best
}


def get_objective(name: str) -> type[Objective]:
    """The objective class named ``name``.

    Raises:
        KeyError: listing the known names.
    """
    try:
        return OBJECTIVES[name]
    except KeyError:
        raise KeyError(f"unknown encoder objective {name!r}; known: {', '.join(sorted(OBJECTIVES))}") from None
