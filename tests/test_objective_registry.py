"""Adding an objective or an add-on touches no other file: a toy objective (its class and config plus one
registration) and a toy add-on, both defined here, pretrain through ``leanbert.pretrain.pretrain``."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import yaml
from torch import nn

from leanbert.batch import IGNORE_INDEX, Batch
from leanbert.config import ConfigError
from leanbert.data.prepare import prepare_dataset
from leanbert.data.tokenizer import train_tokenizer
from leanbert.model.config import ModelConfig
from leanbert.model.model import LeanBertModel
from leanbert.objectives import (
    ADDONS,
    AddonConfig,
    AddonSpec,
    DataNeeds,
    Objective,
    ObjectiveConfig,
    ObjectiveSpec,
    Output,
    register_objective,
)
from leanbert.objectives.registry import training_flops_per_token
from leanbert.pretrain import pretrain
from leanbert.pretrain_config import load_pretrain_config


@dataclass
class ToyConfig(ObjectiveConfig):
    name: str = "toy"
    scale: float = 1.0


class ToyObjective(Objective):
    """MLM written from scratch, with a metric whose count is not ``toy_count``: ``toy_accuracy`` is a mean over
    ``toy_batches`` (one per batch), so a logging interval of 3 steps must report toy_batches = 3 (summed)."""

    metric_weights = {"toy_accuracy": "toy_batches"}

    def __init__(self, model_config: ModelConfig, config: ToyConfig):
        super().__init__()
        self.config = config
        self.model = LeanBertModel(dataclasses.replace(model_config, heads=["mlm"]))

    def forward(self, batch: Batch) -> Output:
        positions = batch.labels != IGNORE_INDEX  # (B, T)
        out = self.model(batch.input_ids, batch.attention_mask, batch.token_type_ids, mlm_positions=positions)
        targets = batch.labels[positions]  # (N,)
        loss = F.cross_entropy(out.mlm_logits.float(), targets)
        accuracy = (out.mlm_logits.argmax(-1) == targets).float().mean()
        metrics = {"toy_loss": loss.detach(), "toy_accuracy": accuracy, "toy_batches": torch.ones(())}
        return Output(loss=self.config.scale * loss, metrics=metrics)

    def networks(self) -> dict[str, nn.Module]:
        return {"model": self.model}


register_objective(ObjectiveSpec(
    name="toy", objective_class=ToyObjective, config_class=ToyConfig,
    data=DataNeeds(implied={"pairs": "none", "masking": "bert"}, required=frozenset({"pairs"})),
    flops_per_token=lambda model_config, config, data: 6.0 * model_config.hidden_size,
    derived_metrics=lambda metrics: {"toy_error": 1.0 - metrics["toy_accuracy"]}))


@dataclass
class LossScaleConfig(AddonConfig):
    factor: float = 1.0


class LossScale(Objective):
    """A toy add-on: wraps any objective, multiplies its loss and reports the factor."""

    def __init__(self, inner: Objective, config: LossScaleConfig, model_config: ModelConfig, kept: str):
        super().__init__()
        self.inner, self.factor = inner, config.factor
        self.metric_weights = dict(getattr(inner, "metric_weights", {}))

    def forward(self, batch: Batch) -> Output:
        out = self.inner(batch)
        return Output(loss=self.factor * out.loss, metrics={**out.metrics, "scale_factor": self.factor})

    def networks(self) -> dict[str, nn.Module]:
        return self.inner.networks()


@pytest.fixture
def loss_scale_addon(monkeypatch):
    monkeypatch.setitem(ADDONS, "loss_scale", AddonSpec(group="loss_scale", config_class=LossScaleConfig,
                                                        wrap=LossScale, flops_per_token=lambda *_: 0.0))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, shared_data) -> Path:
    root = tmp_path_factory.mktemp("toy-data")
    lines = (Path(shared_data) / "corpus" / "movie-reviews.txt").read_text(encoding="utf-8").splitlines()[:400]
    (root / "corpus.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    train_tokenizer([str(root / "corpus.txt")], root / "tok", vocab_size=400, lowercase=True)
    prepare_dataset([str(root / "corpus.txt")], root / "tok", root / "data", valid_fraction=0.1, progress=False)
    return root / "data"


def _settings(data: Path, *extra: str) -> list[str]:
    return ["model.preset=bert-tiny", "model.hidden_size=32", "model.num_heads=2", "model.intermediate_size=64",
            "model.num_layers=1", f"data.path={data}", "data.seq_len=32", "train.batch_size=4", "train.max_steps=3",
            "train.log_every=3", "train.eval_every=3", "train.eval_batches=2", "train.checkpoint_every=0",
            "train.device=cpu", *extra]


def _lines(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_toy_objective_pretrains_from_this_file_alone(tmp_path, dataset):
    config, _ = load_pretrain_config(None, _settings(dataset, "objective.name=toy", "objective.scale=2"))
    assert config.objective == ToyConfig(name="toy", scale=2.0) and config.data.masking == "bert"
    result = pretrain(config, tmp_path / "run", progress=False)
    assert result.loop.step == 3 and (tmp_path / "run" / "model" / "config.json").is_file()

    train_line, = [r for r in _lines(tmp_path / "run") if "loss" in r]
    assert train_line["toy_batches"] == 3.0  # a declared weight is a count: summed over the interval
    assert train_line["loss"] == pytest.approx(2.0 * train_line["toy_loss"], rel=1e-5)  # objective.scale
    val = [r for r in _lines(tmp_path / "run") if "val_toy_loss" in r]
    assert [r["step"] for r in val] == [0, 3]
    for row in val:
        assert row["val_toy_error"] == pytest.approx(1.0 - row["val_toy_accuracy"])  # derived metric
        assert "val_toy_batches" not in row  # counts are not validation metrics
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert saved["objective"] == {"name": "toy", "scale": 2.0}  # name + the objective's own keys
    assert training_flops_per_token(config.model_config(), config.objective, config.data) == 6.0 * 32


def test_toy_objective_keys_are_its_own(dataset):
    with pytest.raises(ConfigError, match=r"unknown key objective.temperature; allowed keys: name, scale"):
        load_pretrain_config(None, _settings(dataset, "objective.name=toy", "objective.temperature=2"))
    with pytest.raises(ConfigError, match=r"data.pairs='sop' does not fit objective.name='toy'"):
        load_pretrain_config(None, _settings(dataset, "objective.name=toy", "data.pairs=sop"))


def test_addon_wraps_the_objective_through_its_own_group(tmp_path, dataset, loss_scale_addon):
    with pytest.raises(ConfigError, match=r"unknown key loss_scale.power; allowed keys: enabled, factor"):
        load_pretrain_config(None, _settings(dataset, "loss_scale.power=2"))
    off, _ = load_pretrain_config(None, _settings(dataset, "objective.name=toy"))
    assert off.addons == {} and "loss_scale" not in off.to_dict()  # a group the config does not name

    config, _ = load_pretrain_config(None, _settings(dataset, "objective.name=toy", "loss_scale.enabled=true",
                                                     "loss_scale.factor=3"))
    assert config.addons == {"loss_scale": LossScaleConfig(enabled=True, factor=3.0)}
    pretrain(config, tmp_path / "run", progress=False)
    train_line, = [r for r in _lines(tmp_path / "run") if "loss" in r]
    assert train_line["scale_factor"] == 3.0
    assert train_line["loss"] == pytest.approx(3.0 * train_line["toy_loss"], rel=1e-5)
    assert train_line["toy_batches"] == 3.0  # the wrapper passes the inner objective's metric weights on
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert saved["loss_scale"] == {"enabled": True, "factor": 3.0}


def test_unpad_false_switches_unpadding_off_in_every_network(tmp_path, dataset, monkeypatch):
    """train.unpad is an impl setting that reaches the built objective (the toy's network here)."""
    import leanbert.model.padding as padding

    calls = []
    monkeypatch.setattr(padding, "set_unpadding", lambda module, enabled: calls.append((type(module), enabled)))
    config, _ = load_pretrain_config(None, _settings(dataset, "objective.name=toy", "train.max_steps=1",
                                                     "train.unpad=false"))
    pretrain(config, tmp_path / "off", progress=False)
    assert calls == [(ToyObjective, False)]
    config, _ = load_pretrain_config(None, _settings(dataset, "objective.name=toy", "train.max_steps=1"))
    pretrain(config, tmp_path / "on", progress=False)
    assert calls == [(ToyObjective, False)]  # the default keeps unpadding on: nothing to switch
