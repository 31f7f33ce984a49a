"""Position schemes: chosen by name from ``POSITION_SCHEMES``, owned by the encoder; the default ``absolute``
keeps BERT's parameter name. (A scheme with an attention bias is tested in test_encoder.py.)"""

import pytest
import torch

from helpers import tiny_config
from leanbert.config import ConfigError
from leanbert.model.model import LeanBertModel
from leanbert.model.positions import POSITION_SCHEMES, AbsoluteOptions, AbsolutePositions, PositionSchemeSpec


def test_absolute_scheme_keeps_bert_parameter_names():
    model = LeanBertModel(tiny_config())
    assert isinstance(model.encoder.position_scheme, AbsolutePositions)
    assert model.encoder.embeddings.position_embeddings is model.encoder.position_scheme
    keys = [k for k in model.state_dict() if "position" in k]
    assert keys == ["encoder.embeddings.position_embeddings.weight"]
    assert model.encoder.position_scheme.attention_bias(17) is None


def test_unknown_scheme_is_a_config_error_listing_the_registered_ones(monkeypatch):
    monkeypatch.setitem(POSITION_SCHEMES, "toy_bias", PositionSchemeSpec(
        "toy_bias", AbsolutePositions, AbsoluteOptions, hf_reason=lambda o: None,
        shareable_across_widths=lambda o: True))
    registered = ", ".join(POSITION_SCHEMES)  # absolute, ..., toy_bias
    assert registered.startswith("absolute") and registered.endswith("toy_bias")
    with pytest.raises(ConfigError, match=f"model.position='rope' is not allowed; choose one of {registered}$"):
        tiny_config(position="rope")


def test_too_long_input_names_max_positions():
    ids = torch.ones(1, 41, dtype=torch.long)
    with pytest.raises(ValueError, match="sequence length 41 exceeds model.max_positions=40"):
        LeanBertModel(tiny_config())(ids)
