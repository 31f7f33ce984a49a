"""Batch features (data/features.py): a feature defined in this file alone reaches ``Batch.extras`` through the
registry (computed on the uncorrupted ids, deterministic, resumable, moved with the batch), the config lists
it, accepts its older boolean spelling, and refuses unknown names; an add-on's data needs add it."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch

from leanbert.batch import Batch
from leanbert.config import ConfigError, from_dict
from leanbert.data.config import DataConfig
from leanbert.data.features import FEATURES, FeatureSpec, register_feature, upgrade_feature_flags
from leanbert.data.loader import build_loader
from leanbert.data.tokenizer import load_tokenizer
from leanbert.objectives.registry import ADDONS, AddonConfig, AddonSpec, DataNeeds
from leanbert.pretrain_config import load_pretrain_config


@dataclass
class Plain:
    """An extra that is not a tensor: moved by its own ``to``."""

    ids: torch.Tensor

    def to(self, device, non_blocking: bool = False) -> Plain:
        return Plain(self.ids.to(device, non_blocking=non_blocking))


def build_plain(config, tokenizer):
    assert config.path and tokenizer.pad_id is not None  # the builder sees the data config and tokenizer
    return lambda ids: Plain(torch.from_numpy(ids.copy()))  # (B, T) the ids before masking


@pytest.fixture
def plain_feature(monkeypatch):
    monkeypatch.setitem(FEATURES, "plain", FeatureSpec(name="plain", build=build_plain))


def test_a_registered_feature_reaches_the_batch_before_masking_and_resumes(plain_feature, dataset_dir,
                                                                            wordpiece_dir):
    tok = load_tokenizer(wordpiece_dir)
    config = DataConfig(path=str(dataset_dir), seq_len=32, valid_split="", features=["plain"])
    loader = build_loader(config, tok, batch_size=4, prefetch=0)
    plain = build_loader(DataConfig(path=str(dataset_dir), seq_len=32, valid_split="", masking="none"), tok,
                         batch_size=4, prefetch=0)
    batches = [b for _, b in zip(range(2), loader)]
    for batch, raw in zip(batches, plain):
        assert set(batch.extras) == {"plain"}
        assert torch.equal(batch.extras["plain"].ids, raw.input_ids)  # uncorrupted
        assert not torch.equal(batch.input_ids, raw.input_ids)  # while the inputs were masked
    state = loader.state_dict()
    resumed = build_loader(config, tok, batch_size=4, prefetch=0)
    resumed.load_state_dict(state)
    assert torch.equal(next(iter(resumed)).extras["plain"].ids, next(iter(loader)).extras["plain"].ids)
    moved = batches[0].to("meta")
    assert moved.extras["plain"].ids.device.type == "meta" and moved.input_ids.device.type == "meta"


def test_batch_moves_tensor_extras_and_leaves_other_values():
    ids = torch.zeros(2, 3, dtype=torch.long)
    batch = Batch(ids, ids, ids, extras={"t": torch.ones(2), "name": "kept", "n": 3}).to("meta")
    assert batch.extras["t"].device.type == "meta" and batch.extras["name"] == "kept" and batch.extras["n"] == 3


def test_config_lists_features_and_reads_the_older_boolean_key(plain_feature):
    assert from_dict(DataConfig, {"plain": True}).features == ["plain"]
    assert from_dict(DataConfig, {"plain": False}).features == []
    assert from_dict(DataConfig, {"features": ["plain"], "plain": True}).features == ["plain"]
    assert upgrade_feature_flags({"seq_len": 8}) == {"seq_len": 8}  # no flag: untouched, no features key
    with pytest.raises(ConfigError, match="data.plain=1 must be true or false"):
        from_dict(DataConfig, {"plain": 1}, prefix="data.")
    with pytest.raises(ConfigError, match="data.features: 'plane' is not a batch feature; choose from .*plain"):
        DataConfig(features=["plane"])
    with pytest.raises(ConfigError, match="names a feature twice"):
        DataConfig(features=["plain", "plain"])
    with pytest.raises(ConfigError, match="must be a list of feature names"):
        DataConfig(features="plain")
    with pytest.raises(ValueError, match="already registered"):
        register_feature(FeatureSpec(name="plain", build=lambda config, tokenizer: None))


@dataclass
class NeedsPlainConfig(AddonConfig):
    pass


def test_an_addon_that_reads_a_feature_gets_it_listed(plain_feature, monkeypatch):
    monkeypatch.setitem(ADDONS, "needs_plain", AddonSpec(
        group="needs_plain", config_class=NeedsPlainConfig, wrap=lambda objective, *_: objective,
        flops_per_token=lambda *_: 0.0, data=DataNeeds(features=frozenset({"plain"}))))
    config, _ = load_pretrain_config(None, ["needs_plain.enabled=true"])
    assert config.data.features[-1] == "plain"
    assert "plain" not in load_pretrain_config(None, ["needs_plain.enabled=false"])[0].data.features
    with pytest.raises(ConfigError, match="data.plain=False does not fit needs_plain.enabled=true"):
        load_pretrain_config(None, ["needs_plain.enabled=true", "data.plain=false"])
    with pytest.raises(ConfigError, match=r"data.features=\[\] does not fit x, which needs data.features"):
        DataNeeds(features=frozenset({"plain"})).check(DataConfig(), "x")
