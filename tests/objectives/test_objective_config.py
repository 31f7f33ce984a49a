"""ObjectiveConfig validation, the data settings each objective implies, and ELECTRA's generator-size rule."""

from __future__ import annotations

import pytest

from helpers import tiny_config
from leanbert.config import ConfigError, from_dict
from leanbert.data.config import DataConfig
from leanbert.objectives.config import (
    ObjectiveConfig,
    discriminator_config,
    generator_config,
    generator_shape,
)
from leanbert.presets import model_config


@pytest.mark.parametrize("fields, message", [
    (dict(name="bert"), "objective.name"),
    (dict(name="electra", temperature=0.0), "objective.temperature"),
    (dict(rtd_weight=-1.0), "objective.rtd_weight"),
    (dict(generator_fraction=1.5), "objective.generator_fraction"),
    (dict(generator_fraction=0), "objective.generator_fraction"),
    (dict(generator_hidden_size=-8), "objective.generator_hidden_size"),
    (dict(mlm_weight=True), "objective.mlm_weight"),
])
def test_bad_values_are_refused_with_the_key(fields, message):
    with pytest.raises(ConfigError, match=message):
        ObjectiveConfig(**fields)


def test_from_dict_names_unknown_keys():
    with pytest.raises(ConfigError, match="unknown key.*objective.*weight"):
        from_dict(ObjectiveConfig, {"name": "mlm", "weight": 2}, prefix="objective.")
    cfg = from_dict(ObjectiveConfig, {"name": "electra", "rtd_weight": 20}, prefix="objective.")
    assert cfg.rtd_weight == 20.0 and isinstance(cfg.rtd_weight, float)


@pytest.mark.parametrize("name, pairs, masking", [
    ("mlm", "none", "bert"), ("mlm+nsp", "nsp", "bert"), ("mlm+sop", "sop", "bert"), ("electra", "none", "electra"),
])
def test_data_defaults(name, pairs, masking):
    cfg = ObjectiveConfig(name=name)
    assert cfg.data_defaults() == {"pairs": pairs, "masking": masking}
    # defaults fill only what the user left out, and the result is a valid DataConfig the objective accepts
    raw = cfg.apply_data_defaults({"seq_len": 64})
    data = DataConfig(**raw)
    assert (data.pairs, data.masking) == (pairs, masking)
    cfg.check_data(data)
    assert cfg.apply_data_defaults({"masking": "bert"})["masking"] == "bert"


def test_check_data_refuses_pairs_that_do_not_fit():
    with pytest.raises(ConfigError, match="data.pairs='none'.*needs data.pairs='sop'"):
        ObjectiveConfig(name="mlm+sop").check_data(DataConfig(pairs="none"))
    with pytest.raises(ConfigError, match="data.pairs='nsp'"):
        ObjectiveConfig(name="electra").check_data({"pairs": "nsp"})
    ObjectiveConfig(name="electra").check_data(DataConfig(masking="bert"))  # a masking ablation is allowed


def test_generator_size_rule_electra_small():
    disc = model_config("electra-small")
    gen = generator_config(disc, ObjectiveConfig(name="electra"))
    assert (gen.hidden_size, gen.num_heads, gen.intermediate_size) == (64, 1, 256)
    assert gen.num_layers == disc.num_layers == 12
    assert gen.embedding_size == disc.embedding_size == 128
    assert gen.family == "electra" and gen.heads == ["mlm"]
    assert (gen.vocab_size, gen.max_positions, gen.type_vocab_size) == (disc.vocab_size, disc.max_positions,
                                                                        disc.type_vocab_size)
    assert discriminator_config(disc).heads == ["rtd"]


def test_generator_size_rule_base_and_overrides():
    base = model_config("electra-base")
    gen = generator_config(base, ObjectiveConfig(name="electra"))
    assert (gen.hidden_size, gen.num_heads, gen.intermediate_size, gen.embedding_size) == (192, 3, 768, 768)
    gen = generator_config(base, ObjectiveConfig(name="electra", generator_fraction=1 / 3))  # the paper's base
    assert (gen.hidden_size, gen.num_heads) == (256, 4)
    gen = generator_config(base, ObjectiveConfig(name="electra", generator_hidden_size=200))
    assert (gen.hidden_size, gen.num_heads, gen.intermediate_size) == (200, 2, 800)


@pytest.mark.parametrize("disc_hidden, fraction", [(32, 0.25), (100, 0.3), (312, 0.25), (1000, 0.37), (4096, 1 / 3),
                                                   (1024, 1.0)])
def test_generator_shape_keeps_heads_dividing_hidden(disc_hidden, fraction):
    hidden, heads, ffn = generator_shape(disc_hidden, fraction)
    assert hidden % heads == 0 and heads == max(1, hidden // 64) and ffn == 4 * hidden
    assert abs(hidden - fraction * disc_hidden) <= max(heads, 1)  # rounded to the nearest multiple of heads


def test_generator_copies_encoder_switches():
    disc = tiny_config(family="albert", embedding_size=16, sharing="all", num_groups=2, hidden_act="gelu_new")
    gen = generator_config(disc, ObjectiveConfig(name="electra"))
    assert (gen.sharing, gen.num_groups, gen.hidden_act, gen.embedding_size) == ("all", 2, "gelu_new", 16)
    assert (gen.hidden_size, gen.num_heads) == (8, 1)
