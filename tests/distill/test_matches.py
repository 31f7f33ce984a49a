"""Layer-mapping tables and match validation."""

from __future__ import annotations

import pytest
import torch

from helpers import random_inputs, tiny_config
from leanbert.config import ConfigError
from leanbert.distill.matches import LayerMatch, generate_matches, layer_map, parse_matches, select_feature
from leanbert.model.model import LeanBertModel


@pytest.mark.parametrize("strategy, student, teacher, expected", [
    ("uniform", 4, 12, [3, 6, 9, 12]),      # TinyBERT-4 from BERT-base: g(m) = 3m
    ("uniform", 6, 12, [2, 4, 6, 8, 10, 12]),
    ("uniform", 4, 6, [1, 3, 4, 6]),         # floor(m * 6 / 4): the last layer always maps to the last
    ("uniform", 3, 6, [2, 4, 6]),
    ("top", 4, 12, [9, 10, 11, 12]),
    ("bottom", 4, 12, [1, 2, 3, 4]),
    ("uniform", 2, 2, [1, 2]),
    ([2, 2, 5], 3, 6, [2, 2, 5]),
])
def test_layer_map_tables(strategy, student, teacher, expected):
    assert layer_map(strategy, student, teacher) == expected


def test_reference_indices_for_12_to_4():
    """The reference reads teacher attentions at i*3+2 and hidden states at i*3 (0-based lists, hidden list
    starting with the embeddings): the same layers as our g(m) = 3m."""
    matches = generate_matches("uniform", 4, 12)
    scores = [f"att{i}" for i in range(12)]
    hidden = [f"hid{i}" for i in range(13)]
    teacher_attention = [select_feature(hidden, scores, m.feature, m.teacher) for m in matches
                         if m.feature == "attention"]
    teacher_hidden = [select_feature(hidden, scores, m.feature, m.teacher) for m in matches
                      if m.feature in ("embedding", "hidden")]
    assert teacher_attention == [f"att{i * 3 + 2}" for i in range(4)]
    assert teacher_hidden == [f"hid{i * 3}" for i in range(5)]


def test_generated_matches_list():
    matches = generate_matches("uniform", 2, 4, weights={"attention": 0.5})
    assert [m.as_dict() for m in matches] == [
        {"student": 0, "teacher": 0, "feature": "embedding", "loss": "mse", "weight": 1.0},
        {"student": 1, "teacher": 2, "feature": "attention", "loss": "mse", "weight": 0.5},
        {"student": 1, "teacher": 2, "feature": "hidden", "loss": "mse", "weight": 1.0},
        {"student": 2, "teacher": 4, "feature": "attention", "loss": "mse", "weight": 0.5},
        {"student": 2, "teacher": 4, "feature": "hidden", "loss": "mse", "weight": 1.0},
    ]
    assert [m.feature for m in generate_matches("top", 1, 3, features=("hidden",))] == ["hidden"]
    # the expanded list parses back to itself
    assert parse_matches([m.as_dict() for m in matches], 2, 4) == matches


def test_select_feature_reads_real_model_outputs():
    model = LeanBertModel(tiny_config(num_layers=3)).eval()
    ids, mask, _ = random_inputs()
    out = model(input_ids=ids, attention_mask=mask, output_hidden_states=True, output_attention_scores=True)
    assert select_feature(out.hidden_states, out.attention_scores, "embedding", 0) is out.hidden_states[0]
    assert torch.equal(select_feature(out.hidden_states, out.attention_scores, "hidden", 3), out.last_hidden_state)
    assert select_feature(out.hidden_states, out.attention_scores, "attention", 1).shape == (3, 4, 17, 17)


@pytest.mark.parametrize("raw, message", [
    ([{"student": 5, "teacher": 6, "feature": "hidden"}],
     r"distill.matches\[0\]: student layer 5 is out of range for feature hidden; the student has 4 layers, "
     r"valid: 1..4"),
    ([{"student": 1, "teacher": 3, "feature": "hidden"}, {"student": 2, "teacher": 13, "feature": "attention"}],
     r"distill.matches\[1\]: teacher layer 13 .* the teacher has 12 layers, valid: 1..12"),
    ([{"student": 0, "teacher": 0, "feature": "attention"}], r"student layer 0 .* valid: 1..4"),
    ([{"student": 1, "teacher": 0, "feature": "embedding"}], r"valid: 0 \(the embedding layer\)"),
    ([{"student": 1, "teacher": 3, "feature": "logits"}], r"feature='logits' is not allowed"),
    ([{"student": 1, "teacher": 3, "feature": "hidden", "loss": "cos"}], r"loss='cos' is not allowed"),
    ([{"student": 1, "teacher": 3, "feature": "hidden", "weight": -1}], r"weight=-1; expected"),
    ([{"student": 1, "teacher": 3, "feature": "hidden", "layer": 2}], r"unknown key 'layer'"),
    ([{"student": 1, "feature": "hidden"}], r"missing key 'teacher'"),
    ([{"student": "1", "teacher": 3, "feature": "hidden"}], r"student layer '1' is out of range"),
    ([{"student": 1, "teacher": 3, "feature": "hidden"}, {"student": 1, "teacher": 3, "feature": "hidden"}],
     r"matches\[1\]: repeats distill.matches\[0\]"),
    ([], r"non-empty list"),
    (["hidden"], r"expected a mapping"),
])
def test_bad_matches_name_the_match_and_the_valid_range(raw, message):
    with pytest.raises(ConfigError, match=message):
        parse_matches(raw, 4, 12)


@pytest.mark.parametrize("strategy, student, teacher, message", [
    ("middle", 4, 12, r"'middle' is not allowed"),
    ("uniform", 6, 4, r"more layers \(6\) than the teacher \(4\)"),
    ([3, 6, 9], 4, 12, r"expected 4 teacher layers"),
    ([3, 6, 9, 13], 4, 12, r"\[3\]: student layer 4 maps to 13; expected a teacher layer in 1..12"),
])
def test_bad_layer_maps(strategy, student, teacher, message):
    with pytest.raises(ConfigError, match=message):
        layer_map(strategy, student, teacher)


def test_unknown_feature_in_generation():
    with pytest.raises(ConfigError, match="'prediction' is not one of"):
        generate_matches("uniform", 2, 4, features=("prediction",))
    assert LayerMatch(1, 2, "hidden").loss == "mse"
