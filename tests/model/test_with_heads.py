"""model.with_heads: the one way an encoder gets new heads (fine-tuning, task distillation)."""

from __future__ import annotations

import pytest
import torch

from helpers import tiny_config
from leanbert.model.model import LeanBertModel, with_heads


def test_encoder_is_copied_and_the_new_head_is_seeded():
    torch.manual_seed(1)
    source = LeanBertModel(tiny_config(heads=["mlm"]))
    first = with_heads(source, ["classifier"], seed=7, dropout=0.3, num_labels=3)
    again = with_heads(source, ["classifier"], seed=7, num_labels=3)
    other = with_heads(source, ["classifier"], seed=8, num_labels=3)
    assert first.config.heads == ["classifier"] and first.config.num_labels == 3
    assert first.config.hidden_dropout == 0.3 == first.config.attention_dropout
    assert again.config.hidden_dropout == source.config.hidden_dropout
    for name, value in source.state_dict().items():
        if name.startswith("encoder."):
            assert torch.equal(first.state_dict()[name], value), name
    head = {k: v for k, v in first.state_dict().items() if k.startswith("heads.")}
    assert head and all(torch.equal(v, again.state_dict()[k]) for k, v in head.items())
    assert not all(torch.equal(v, other.state_dict()[k]) for k, v in head.items())


def test_a_shape_change_is_a_bug_not_a_silent_partial_copy():
    source = LeanBertModel(tiny_config(heads=["mlm"]))
    with pytest.raises(RuntimeError):
        with_heads(source, ["classifier"], seed=0, num_layers=source.config.num_layers + 1)
