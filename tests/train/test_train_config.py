"""TrainConfig / PretrainConfig: YAML + overrides, objective-implied data settings, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from leanbert.config import ConfigError
from leanbert.pretrain import check_resume_compatible
from leanbert.pretrain_config import load_pretrain_config
from leanbert.train.config import TrainConfig

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def _load(overrides, path=None):
    preset = [] if path is not None else ["model.preset=bert-mini"]
    return load_pretrain_config(path, preset + overrides)[0]


def test_unknown_train_key_lists_allowed_keys():
    with pytest.raises(ConfigError) as err:
        _load(["train.learning_rate=1e-3"])
    message = str(err.value)
    assert "train.learning_rate" in message
    for key in ("batch_size", "grad_accum", "max_steps", "max_minutes", "lr", "warmup_steps", "schedule",
                "optimizer", "weight_decay", "clip_norm", "precision", "compile", "seed", "checkpoint_every",
                "eval_every", "log_every"):
        assert key in message


def test_unknown_model_key_and_group_are_named():
    with pytest.raises(ConfigError, match=r"unknown key model\.hidden; allowed keys: preset, vocab_size"):
        _load(["model.hidden=3"])
    with pytest.raises(ConfigError, match=r"unknown group 'optim'.*model, objective, data, train"):
        _load(["optim.lr=3"])
    with pytest.raises(ConfigError, match="unknown preset 'bert-huge'"):
        _load(["model.preset=bert-huge"])


@pytest.mark.parametrize("override,pattern", [
    ("train.schedule=step", r"train.schedule='step' is not allowed; choose one of linear, cosine, constant"),
    ("train.optimizer=sgd", "adamw, lamb"),
    ("train.precision=fp16", "fp32, bf16"),
    ("train.lr=0", r"train.lr=0.0 must be a number > 0"),
    ("train.batch_size=10", r"batch_size=10 must be divisible by train.grad_accum=4"),
    ("train.warmup_steps=5000", "exceeds train.max_steps"),
    ("train.compile=maybe", "must be true or false"),
    ("model.hidden_size=102", "divisible by model.num_heads"),
    ("data.seq_len=1024", "exceeds model.max_positions=512"),
])
def test_bad_values_have_clear_messages(override, pattern):
    with pytest.raises(ConfigError, match=pattern):
        _load(["train.grad_accum=4", "train.batch_size=16", override])


def test_objective_implies_data_settings():
    assert _load(["objective.name=mlm+sop"]).data.pairs == "sop"
    assert _load(["objective.name=mlm+nsp"]).data.pairs == "nsp"
    electra = _load(["objective.name=electra"])
    assert (electra.data.pairs, electra.data.masking) == ("none", "electra")
    assert _load(["objective.name=electra", "data.masking=bert"]).data.masking == "bert"  # an ablation
    with pytest.raises(ConfigError, match=r"data.pairs='none' does not fit objective.name='mlm\+sop'"):
        _load(["objective.name=mlm+sop", "data.pairs=none"])


def test_model_section_preset_plus_fields():
    config = _load(["model.preset=albert-base", "model.num_layers=4", "model.hidden_size=192",
                    "model.num_heads=3", "model.intermediate_size=768"])
    model = config.model_config(vocab_size=8000)
    assert (model.sharing, model.embedding_size, model.num_layers, model.vocab_size) == ("all", 128, 4, 8000)
    assert config.model_config(vocab_size=8000).hidden_act == "gelu_new"
    with pytest.raises(ConfigError, match="chosen by the objective"):
        _load(["model.heads=[mlm]"])


@pytest.mark.parametrize("name", ["smoke", "electra-cpu", "albert-cpu", "electra-small", "albert-base-sop"])
def test_shipped_recipes_load(name):
    config = _load(["data.path=somewhere"], CONFIGS / f"{name}.yaml")
    assert config.data.path == "somewhere"
    assert config.train.micro_batch_size(1) >= 1


def test_yaml_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  lr: [1, 2\n")
    with pytest.raises(ConfigError, match="bad.yaml: not valid YAML"):
        load_pretrain_config(bad, [])
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text(yaml.safe_dump({"train": {"max_step": 3}}))
    with pytest.raises(ConfigError, match=r"wrong.yaml: unknown key '?train.max_step'?; allowed keys: batch_size"):
        load_pretrain_config(wrong, [])


def test_micro_batch_must_split_over_processes():
    config = TrainConfig(batch_size=12, grad_accum=2)
    assert config.micro_batch_size(3) == 2
    with pytest.raises(ConfigError, match=r"divisible by train.grad_accum \(2\) x world size \(4\) = 8"):
        config.micro_batch_size(4)


def test_resume_allows_budgets_but_not_experiment_changes():
    saved = {"model": {"hidden_size": 64}, "train": {"lr": 1e-3, "max_minutes": 10.0}}
    ok = check_resume_compatible(saved, {"model": {"hidden_size": 64}, "train": {"lr": 1e-3, "max_minutes": 20.0}},
                                 Path("run/config.yaml"))
    assert ok == ["train.max_minutes: 10.0 -> 20.0"]
    with pytest.raises(ConfigError, match=r"train.lr: 0.001 -> 0.002"):
        check_resume_compatible(saved, {"model": {"hidden_size": 64}, "train": {"lr": 2e-3, "max_minutes": 10.0}},
                                Path("run/config.yaml"))


def test_every_train_setting_is_tagged_and_resume_follows_the_tags():
    from leanbert.train.config import KINDS, TrainConfig, resumable_keys, setting_kind

    assert all(setting_kind(f) in KINDS for f in TrainConfig.__dataclass_fields__)
    assert (setting_kind("lr"), setting_kind("max_steps"), setting_kind("log_every"), setting_kind("unpad")) == (
        "experiment", "budget", "logging", "impl")
    # exactly the budget, logging and speed keys; precision is impl but changes every loss value
    assert set(resumable_keys()) == {"max_steps", "max_minutes", "log_every", "eval_every", "eval_batches",
                                     "eval_at_start", "checkpoint_every", "keep_checkpoints", "tensorboard",
                                     "compile", "device", "unpad"}
    saved = {"train": {"unpad": True, "precision": "fp32", "seed": 0}}
    assert check_resume_compatible(saved, {"train": {"unpad": False, "precision": "fp32", "seed": 0}},
                                   Path("run/config.yaml")) == ["train.unpad: True -> False"]
    for key, value in (("precision", "bf16"), ("seed", 1)):
        with pytest.raises(ConfigError, match=f"train.{key}: "):
            check_resume_compatible(saved, {"train": {**saved["train"], key: value}}, Path("run/config.yaml"))


def test_objective_keys_are_per_objective_and_a_switched_name_starts_from_defaults():
    smoke = CONFIGS / "smoke.yaml"  # objective: {name: electra, generator_fraction: 0.5}
    config = _load([], smoke)
    assert (config.objective.name, config.objective.generator_fraction) == ("electra", 0.5)
    assert _load(["objective.name=electra"], smoke).objective.generator_fraction == 0.5  # same objective: kept
    switched = _load(["objective.name=mlm+sop", "objective.sentence_weight=0.5"], smoke)
    assert switched.to_dict()["objective"] == {"name": "mlm+sop", "mlm_weight": 1.0, "sentence_weight": 0.5}
    with pytest.raises(ConfigError, match=r"unknown key objective.temperature; allowed keys: name, mlm_weight$"):
        _load(["objective.name=mlm", "objective.temperature=2"])
    with pytest.raises(ConfigError, match=r"objective.name='bert' is not allowed; choose one of mlm"):
        _load(["objective.name=bert"])
