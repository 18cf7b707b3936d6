"""The encoder's training budget: steps, the floor early stopping cannot cut, the wall-clock cap."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from encoder.settings import TrainBudget
from encoder.train import train_encoder


@pytest.fixture(scope="module")
def tiny() -> np.ndarray:
    """40 random 8x8 images: a loss that cannot improve for long, so early stopping wants to stop at once."""
    return np.random.default_rng(0).random((40, 1, 8, 8), dtype=np.float32)


def _train(images: np.ndarray, **budget) -> dict:
    art = train_encoder(images, latent_dim=4, batch_size=8, progress=False, **budget)
    return art.info


def test_early_stopping_cannot_end_a_run_before_the_floor(tiny) -> None:
    # patience 1, an evaluation every step: without the floor the first stale evaluation would stop it.
    info = _train(tiny, steps=200, min_steps=30, patience=1, eval_every=1, max_seconds=None)
    assert info["steps_run"] >= 30
    assert info["stopped"] in ("early", "steps")
    # The same run without a floor stops earlier: the floor is what kept it going.
    free = _train(tiny, steps=200, min_steps=0, patience=1, eval_every=1, max_seconds=None)
    assert free["stopped"] == "early" and free["steps_run"] < 30


def test_a_small_project_gets_the_whole_step_budget_across_many_epochs(tiny) -> None:
    # 36 training images at batch 8 = 5 steps an epoch: 60 steps are 12 epochs, not one.
    info = _train(tiny, steps=60, min_steps=60, patience=1, eval_every=10, max_seconds=None)
    assert info["steps_run"] == 60 and info["epochs_run"] == 12 and info["stopped"] == "steps"
    assert [h["step"] for h in info["history"]] == [10, 20, 30, 40, 50, 60]


def test_wall_clock_cap_wins_over_the_floor(tiny) -> None:
    ticks = itertools.count()  # a fake clock: one second per reading
    art = train_encoder(tiny, latent_dim=4, batch_size=8, progress=False, steps=500, min_steps=500,
                        max_seconds=10, clock=lambda: float(next(ticks)))
    # Start reads 0; step k reads k: the cap of 10 s ends the run at step 10.
    assert art.info["stopped"] == "time" and art.info["steps_run"] == 10


def test_epochs_cap_and_budget_validation(tiny) -> None:
    info = _train(tiny, steps=500, min_steps=500, epochs=2, max_seconds=None)
    assert info["stopped"] == "epochs" and info["steps_run"] == 10
    with pytest.raises(ValueError):
        TrainBudget(steps=0)
    with pytest.raises(ValueError):
        TrainBudget(epochs=0)


def test_config_budget_from_env() -> None:
    from backend.config import Config

    cfg = Config.from_env({"DALT_ENCODER_STEPS": "900", "DALT_ENCODER_MIN_STEPS": "300",
                           "DALT_ENCODER_MAX_SECONDS": "0", "DALT_ENCODER_PATIENCE": "2"})
    assert cfg.train_budget() == TrainBudget(steps=900, min_steps=300, max_seconds=None, patience=2)
    assert Config().train_budget() == TrainBudget()
