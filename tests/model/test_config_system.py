import dataclasses
import subprocess
import sys

import pytest

from leanbert.config import ConfigError, apply_overrides, from_dict, load_config_file, parse_value
from leanbert.model.config import ModelConfig


def test_overrides_parse_yaml_scalars_without_eval():
    data = apply_overrides({}, ["train.lr=1e-3", "model.num_layers=4", "model.heads=[mlm, sop]", "x.flag=true",
                                "model.family=albert", "y.code=__import__('os')"])
    assert data["train"]["lr"] == 1e-3 and data["model"]["num_layers"] == 4
    assert data["model"]["heads"] == ["mlm", "sop"] and data["x"]["flag"] is True
    assert data["y"]["code"] == "__import__('os')"  # stays a string
    assert parse_value("0.5") == 0.5 and parse_value("bert-base") == "bert-base"


# The shape every encoder has, plus each component's choice and its options (ARCHITECTURE 2.3, bar B11): a
# method's own knob belongs in position_options / head_options, never at the top level.
CORE_FIELDS = {"vocab_size", "embedding_size", "hidden_size", "num_layers", "num_heads", "intermediate_size",
               "hidden_act", "hidden_dropout", "attention_dropout", "max_positions", "type_vocab_size",
               "layer_norm_eps", "initializer_range", "sharing", "num_groups", "position", "position_options",
               "family", "pad_token_id", "heads", "head_options", "num_labels"}


def test_model_config_holds_only_the_core_shape_and_component_choices():
    assert {f.name for f in dataclasses.fields(ModelConfig)} <= CORE_FIELDS


def test_the_schema_and_the_vocabulary_check_load_without_the_model_package():
    # leanbert.config imports nothing of leanbert.model (no circle), and `leanbert tokenizer`, which checks a
    # vocabulary size in memory_check, starts without torch
    probe = ("import sys, leanbert.config, leanbert.memory_check, leanbert.commands.tokenizer_cmd\n"
             "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('leanbert.model')))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "[]"


def test_unknown_key_lists_allowed_keys():
    with pytest.raises(ConfigError, match=r"unknown key model\.hiden_size; allowed keys: vocab_size"):
        from_dict(ModelConfig, {"hiden_size": 3}, prefix="model.")


def test_wrong_type_names_key():
    with pytest.raises(ConfigError, match=r"model\.num_layers='four' must be an integer"):
        from_dict(ModelConfig, {"num_layers": "four"}, prefix="model.")


def test_bad_override_syntax():
    with pytest.raises(ConfigError, match="must look like key=value"):
        apply_overrides({}, ["train.lr"])


def test_config_file_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [unclosed\n")
    with pytest.raises(ConfigError, match="bad.yaml: not valid YAML"):
        load_config_file(bad)
    listy = tmp_path / "list.yaml"
    listy.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="list.yaml: the top level must be a mapping"):
        load_config_file(listy)
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config_file(tmp_path / "missing.yaml")
