"""Position options moved from flat ModelConfig fields (relative_buckets, ...) into ``model.position_options``,
validated by the scheme's own options class. What older versions wrote keeps loading: model directories saved
by the previous main (legacy/, with the outputs that version computed), YAML recipes and CLI keys in the old
form, and a run's config.yaml when it is resumed."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from leanbert.config import ConfigError
from leanbert.model.config import ModelConfig
from leanbert.model_dir import load_model
from leanbert.pretrain import load_run_config
from leanbert.pretrain_config import load_pretrain_config

LEGACY = Path(__file__).with_name("legacy")
CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def test_model_config_holds_no_scheme_specific_field():
    fields = {f.name for f in dataclasses.fields(ModelConfig)}
    assert "position_options" in fields
    assert not fields & {"relative_buckets", "relative_max_distance", "untie_cls", "cls_theta"}


@pytest.mark.parametrize("name, options", [
    ("tupe-r-learned", {"relative_buckets": 8, "relative_max_distance": 16, "untie_cls": True,
                        "cls_theta": "learned"}),
    ("bert-r-tied-cls", {"relative_buckets": 8, "relative_max_distance": 12, "untie_cls": False}),
])
def test_model_directories_saved_by_the_previous_version_load_with_the_same_outputs(name, options):
    model = load_model(LEGACY / name).eval()
    assert model.config.position_options == options  # cls_theta dropped for absolute: it had no effect there
    expected = load_file(str(LEGACY / name / "expected.safetensors"))
    with torch.no_grad():
        out = model(expected["input_ids"], expected["attention_mask"])
    keep = expected["attention_mask"].bool()
    torch.testing.assert_close(out.last_hidden_state[keep], expected["last_hidden_state"][keep], rtol=0, atol=1e-6)
    torch.testing.assert_close(out.logits, expected["logits"], rtol=0, atol=1e-6)


def _model(config) -> ModelConfig:
    return config.model_config(vocab_size=100, pad_token_id=0)


def test_old_yaml_recipes_and_keys_resolve_like_the_new_ones(tmp_path):
    old, _ = load_pretrain_config(CONFIGS / "tupe-cpu.yaml", ["data.path=x"])  # flat keys, as shipped
    assert _model(old).position_options == {"relative_buckets": 32, "relative_max_distance": 128,
                                            "untie_cls": True, "cls_theta": "derived"}
    raw = yaml.safe_load((CONFIGS / "tupe-cpu.yaml").read_text())
    raw["model"]["position_options"] = {k: raw["model"].pop(k) for k in ("relative_buckets", "relative_max_distance",
                                                                         "untie_cls", "cls_theta")}
    (tmp_path / "new.yaml").write_text(yaml.safe_dump(raw))
    new, _ = load_pretrain_config(tmp_path / "new.yaml", ["data.path=x"])
    assert _model(new) == _model(old)
    # the README's baselines: old keys on the command line, and the other scheme dropping TUPE's own key
    tupe_a, _ = load_pretrain_config(CONFIGS / "tupe-cpu.yaml", ["data.path=x", "model.relative_buckets=0"])
    assert _model(tupe_a).position_options["relative_buckets"] == 0
    bert_a, _ = load_pretrain_config(CONFIGS / "tupe-cpu.yaml", ["data.path=x", "model.position=absolute",
                                                                 "model.relative_buckets=0"])
    assert _model(bert_a).position_options == {"relative_buckets": 0, "relative_max_distance": 128,
                                               "untie_cls": True}
    tupe_new, _ = load_pretrain_config(tmp_path / "new.yaml", ["data.path=x",
                                                               "model.position_options.cls_theta=learned"])
    assert _model(tupe_new).scheme_options.cls_theta == "learned"


def test_an_old_key_contradicting_the_new_one_is_refused(tmp_path):
    (tmp_path / "new.yaml").write_text(yaml.safe_dump({"model": {"preset": "bert-mini", "position": "tupe",
                                                                 "position_options": {"relative_buckets": 32}}}))
    with pytest.raises(ConfigError, match=r"model.relative_buckets=0 \(an old key\) contradicts "
                                          r"model.position_options.relative_buckets=32"):
        load_pretrain_config(tmp_path / "new.yaml", ["data.path=x", "model.relative_buckets=0"])


def test_a_run_written_with_flat_keys_resumes_with_the_same_resolved_model(tmp_path):
    old, _ = load_pretrain_config(CONFIGS / "tupe-cpu.yaml", ["data.path=x"])
    saved = old.to_dict()  # the raw model section with flat keys, as an older version wrote config.yaml
    saved["model"] = {**saved["model"], "relative_buckets": 32, "cls_theta": "derived"}
    saved["model"].pop("position_options", None)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(saved))
    config, upgraded = load_run_config(None, [], tmp_path, resume=True)
    assert "relative_buckets" not in upgraded["model"]
    assert upgraded["model"]["position_options"]["relative_buckets"] == 32
    assert _model(config) == _model(old)
