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
