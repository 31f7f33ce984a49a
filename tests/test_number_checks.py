"""One central check for numbers in configs (``leanbert.config.check_number`` / ``check_seed``): nan and inf are
refused everywhere, and every seed has one range, which every consumer of seeds accepts."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from leanbert.config import SEED_MAX, ConfigError, check_number
from leanbert.distill.augment import AugmentConfig
from leanbert.finetune.config import FinetuneTrainConfig
from leanbert.jobs import seed_everything
from leanbert.train.config import TrainConfig


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_nan_and_inf_are_refused_by_every_numeric_check(value):
    with pytest.raises(ConfigError, match="must be a finite number"):
        check_number("x", value, 0)
    for field in ("lr", "max_minutes", "clip_norm"):
        with pytest.raises(ConfigError, match=f"train.{field}=.* must be a finite number"):
            TrainConfig(**{field: value})


def test_one_seed_range_for_every_seed_setting():
    TrainConfig(seed=SEED_MAX)
    FinetuneTrainConfig(seeds=[0, 2**32, SEED_MAX])
    AugmentConfig(seed=SEED_MAX)
    for make in (lambda s: TrainConfig(seed=s), lambda s: FinetuneTrainConfig(seeds=[s]),
                 lambda s: AugmentConfig(seed=s)):
        for bad in (-1, SEED_MAX + 1):
            with pytest.raises(ConfigError, match=f"seed.*={bad}"):
                make(bad)


def test_seed_everything_takes_every_accepted_seed_and_keeps_small_ones_as_they_were():
    for seed in (2**32, SEED_MAX):
        seed_everything(seed)
        first = (random.random(), np.random.random(), torch.rand(1).item())
        seed_everything(seed)
        assert (random.random(), np.random.random(), torch.rand(1).item()) == first
    seed_everything(7)
    ours = np.random.random()
    np.random.seed(7)
    assert np.random.random() == ours  # runs seeded before large seeds existed are bit-identical
