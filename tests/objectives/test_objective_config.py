"""Per-objective configs and the registry: validation, the data settings each objective implies, and ELECTRA's
generator-size rule."""

from __future__ import annotations

import pytest

from helpers import tiny_config
from leanbert.config import ConfigError
from leanbert.data.config import DataConfig
from leanbert.objectives import (
    OBJECTIVES,
    ElectraConfig,
    MaskedLMConfig,
    build_objective,
    objective_config,
    objective_config_from_dict,
    objective_spec,
)
from leanbert.objectives.electra import discriminator_config, generator_config, generator_shape
from leanbert.presets import model_config
from leanbert.pretrain_config import pretrain_config_from_dict


def test_builtin_objectives_are_registered():
    assert {"mlm", "mlm+nsp", "mlm+sop", "electra"} <= set(OBJECTIVES)  # tests may register more
    assert objective_spec("electra").metric_weights == {"rtd_precision": "rtd_predicted",
                                                        "rtd_recall": "rtd_replaced"}
    assert objective_spec("mlm").metric_weights == {}


@pytest.mark.parametrize("fields, message", [
    (dict(name="bert"), r"objective.name='bert' is not allowed; choose one of .*mlm\+sop"),
    (dict(name=["mlm"]), r"objective.name=\['mlm'\] is not allowed"),
    (dict(name="electra", temperature=0.0), r"objective.temperature=0.0 must be a number > 0"),
    (dict(name="electra", rtd_weight=-1.0), r"objective.rtd_weight=-1.0 must be a number >= 0"),
    (dict(name="electra", generator_fraction=1.5), r"objective.generator_fraction=1.5 must be in \(0, 1\]"),
    (dict(name="electra", generator_fraction=0), r"objective.generator_fraction=0.0 must be a number > 0"),
    (dict(name="electra", generator_hidden_size=-8), r"objective.generator_hidden_size=-8 must be an integer"),
    (dict(name="mlm", mlm_weight=True), r"objective.mlm_weight=True must be a number"),
    (dict(name="mlm+sop", sentence_weight=-2), r"objective.sentence_weight=-2.0 must be a number >= 0"),
])
def test_bad_values_are_refused_with_the_key(fields, message):
    with pytest.raises(ConfigError, match=message):
        objective_config(**fields)


def test_keys_are_validated_per_objective():
    with pytest.raises(ConfigError, match=r"unknown key objective.weight; allowed keys: name, mlm_weight$"):
        objective_config_from_dict({"name": "mlm", "weight": 2})
    # temperature exists only for objectives that sample
    with pytest.raises(ConfigError, match=r"unknown key objective.temperature"):
        objective_config_from_dict({"name": "mlm+sop", "temperature": 2.0})
    cfg = objective_config_from_dict({"name": "electra", "rtd_weight": 20})
    assert isinstance(cfg, ElectraConfig) and cfg.rtd_weight == 20.0 and isinstance(cfg.rtd_weight, float)
    assert objective_config_from_dict({}) == MaskedLMConfig(name="mlm", mlm_weight=1.0)  # the default objective
    with pytest.raises(ConfigError, match="objective must be a mapping"):
        objective_config_from_dict(["mlm"])


def test_build_objective_refuses_another_objectives_config():
    with pytest.raises(ConfigError, match=r"objective.name='electra' takes a ElectraConfig, got a "
                                          r"MaskedLMConfig"):
        build_objective(MaskedLMConfig(name="electra"), tiny_config())


@pytest.mark.parametrize("name, pairs, masking", [
    ("mlm", "none", "bert"), ("mlm+nsp", "nsp", "bert"), ("mlm+sop", "sop", "bert"),
    ("electra", "none", "electra"),
])
def test_data_needs(name, pairs, masking):
    needs = objective_spec(name).data
    assert dict(needs.implied) == {"pairs": pairs, "masking": masking}
    # defaults fill only what the user left out, and the result is a valid DataConfig the objective accepts
    raw = needs.apply({"seq_len": 64})
    data = DataConfig(**raw)
    assert (data.pairs, data.masking) == (pairs, masking)
    needs.check(data, f"objective.name={name!r}")
    assert needs.apply({"masking": "bert"})["masking"] == "bert"


def test_check_data_refuses_pairs_that_do_not_fit():
    with pytest.raises(ConfigError, match=r"data.pairs='none' does not fit objective.name='mlm\+sop', "
                                          r"which needs data.pairs='sop'"):
        objective_spec("mlm+sop").data.check(DataConfig(pairs="none"), "objective.name='mlm+sop'")
    with pytest.raises(ConfigError, match="data.pairs='nsp'"):
        objective_spec("electra").data.check({"pairs": "nsp"}, "objective.name='electra'")
    objective_spec("electra").data.check(DataConfig(masking="bert"), "electra")  # a masking ablation is allowed


def test_generator_size_rule_electra_small():
    disc = model_config("electra-small")
    gen = generator_config(disc, ElectraConfig())
    assert (gen.hidden_size, gen.num_heads, gen.intermediate_size) == (64, 1, 256)
    assert gen.num_layers == disc.num_layers == 12
    assert gen.embedding_size == disc.embedding_size == 128
    assert gen.family == "electra" and gen.heads == ["mlm"]
    assert (gen.vocab_size, gen.max_positions, gen.type_vocab_size) == (disc.vocab_size, disc.max_positions,
                                                                        disc.type_vocab_size)
    assert discriminator_config(disc).heads == ["rtd"]


def test_generator_size_rule_base_and_overrides():
    base = model_config("electra-base")
    gen = generator_config(base, ElectraConfig())
    assert (gen.hidden_size, gen.num_heads, gen.intermediate_size, gen.embedding_size) == (192, 3, 768, 768)
    gen = generator_config(base, ElectraConfig(generator_fraction=1 / 3))  # the paper's base
    assert (gen.hidden_size, gen.num_heads) == (256, 4)
    gen = generator_config(base, ElectraConfig(generator_hidden_size=200))
    assert (gen.hidden_size, gen.num_heads, gen.intermediate_size) == (200, 2, 800)


@pytest.mark.parametrize("disc_hidden, fraction", [(32, 0.25), (100, 0.3), (312, 0.25), (1000, 0.37), (4096, 1 / 3),
                                                   (1024, 1.0)])
def test_generator_shape_keeps_heads_dividing_hidden(disc_hidden, fraction):
    hidden, heads, ffn = generator_shape(disc_hidden, fraction)
    assert hidden % heads == 0 and heads == max(1, hidden // 64) and ffn == 4 * hidden
    assert abs(hidden - fraction * disc_hidden) <= max(heads, 1)  # rounded to the nearest multiple of heads


def test_generator_copies_encoder_switches():
    disc = tiny_config(family="albert", embedding_size=16, sharing="all", num_groups=2, hidden_act="gelu_new")
    gen = generator_config(disc, ElectraConfig())
    assert (gen.sharing, gen.num_groups, gen.hidden_act, gen.embedding_size) == ("all", 2, "gelu_new", 16)
    assert (gen.hidden_size, gen.num_heads) == (8, 1)


@pytest.mark.parametrize("name", ["mlm", "mlm+nsp", "mlm+sop", "electra"])
def test_mlm_objectives_refuse_masking_none_before_a_run(name):
    """data.masking=none builds no MLM targets: refused by the config, not at the first batch."""
    with pytest.raises(ConfigError, match=r"data.masking='none' does not fit objective.name="):
        pretrain_config_from_dict({"objective": {"name": name}, "data": {"masking": "none"}})
