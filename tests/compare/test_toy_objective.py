"""A toy objective defined here (no edit to src/) with its own compare metric and kept network (ARCHITECTURE.md
3.2, T3): compare reads its curve from ``val_<compare_metric>`` and fine-tuning starts from its kept role."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch.nn.functional as F
from torch import nn

from compare.tiny_compare import TINY_BASE, write_spec
from leanbert.batch import IGNORE_INDEX
from leanbert.cli import main
from leanbert.compare.entry_run import entry_dir
from leanbert.compare.plan import plan_comparison
from leanbert.compare.spec import parse_spec
from leanbert.config import ConfigError
from leanbert.finetune.source import resolve_model_dir
from leanbert.model.model import LeanBertModel
from leanbert.model_dir import load_model
from leanbert.objectives import OBJECTIVES, DataNeeds, Objective, ObjectiveConfig, ObjectiveSpec, Output


@dataclass
class TwoNetConfig(ObjectiveConfig):
    name: str = "two_net"


class TwoNet(Objective):
    """MLM on two networks: ``encoder`` (kept) and a half-depth ``helper``; reports no ``mlm_loss`` at all, only
    ``toy_loss`` (the encoder's) and ``helper_loss``."""

    def __init__(self, model_config, config: TwoNetConfig):
        super().__init__()
        self.encoder = LeanBertModel(dataclasses.replace(model_config, heads=["mlm"]))
        self.helper = LeanBertModel(dataclasses.replace(model_config, heads=["mlm"], num_layers=1))

    def forward(self, batch) -> Output:
        positions = batch.labels != IGNORE_INDEX  # (B, T)
        targets = batch.labels[positions]  # (N,)
        losses = [F.cross_entropy(net(batch.input_ids, batch.attention_mask, batch.token_type_ids,
                                      mlm_positions=positions).mlm_logits.float(), targets)
                  for net in (self.encoder, self.helper)]
        return Output(loss=losses[0] + losses[1],
                      metrics={"toy_loss": losses[0].detach(), "helper_loss": losses[1].detach()})

    def networks(self) -> dict[str, nn.Module]:
        return {"encoder": self.encoder, "helper": self.helper}


SPEC = ObjectiveSpec(name="two_net", objective_class=TwoNet, config_class=TwoNetConfig,
                     data=DataNeeds(implied={"pairs": "none", "masking": "bert"}, required=frozenset({"pairs"})),
                     flops_per_token=lambda model_config, config, data: 1.0, kept="encoder",
                     compare_metric="toy_loss")


@pytest.fixture(scope="module")
def compared(tmp_path_factory, tiny_data, tiny_task) -> Path:
    root = tmp_path_factory.mktemp("compare-toy")
    spec = write_spec(root / "spec.yaml", {
        "data": str(tiny_data), "budget": {"steps": 4}, "base": TINY_BASE, "baseline": "mlm",
        "entries": [{"name": "mlm", "objective.name": "mlm"}, {"name": "two", "objective.name": "two_net"}],
        "evaluate": {"valid_marks": 2, "finetune": [{**tiny_task, "seeds": 1, "overrides": {
            "train.max_steps": 2, "data.max_seq_len": 32}}]}})
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(OBJECTIVES, "two_net", SPEC)
        assert main(["compare", str(spec), "--out", str(root / "out"), "--no-progress"]) == 0
    return root / "out"


def _validation(run: Path, key: str) -> list[tuple[int, float]]:
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    return [(r["step"], r[key]) for r in rows if key in r]


def test_compare_reads_each_objectives_own_validation_metric(compared):
    results = json.loads((compared / "results.json").read_text())
    for name, key in (("mlm", "val_mlm_loss"), ("two", "val_toy_loss")):
        run = entry_dir(compared, name) / "seed-0" / "pretrain"
        (curve,) = results["curves"][name]
        expected = _validation(run, key)
        assert len(expected) >= 2
        assert [(p["step"], p["valid_loss"]) for p in curve] == expected


def test_finetuning_and_counting_start_from_the_kept_role(compared):
    run = entry_dir(compared, "two") / "seed-0" / "pretrain"
    roles = json.loads((run / "model" / "roles.json").read_text())
    assert roles == {"kept": "encoder", "path": "encoder", "roles": ["encoder", "helper"]}
    assert resolve_model_dir(run, run, log=lambda *_: None) == run / "model" / "encoder"
    encoder = load_model(run / "model" / "encoder")
    results = json.loads((compared / "results.json").read_text())
    assert results["entries"]["two"]["parameters"] == sum(p.numel() for p in encoder.parameters())
    assert encoder.config.num_layers == TINY_BASE["model.num_layers"]  # not the 1-layer helper


def test_an_objective_without_a_compare_metric_is_refused_when_planning(tmp_path, tiny_data, monkeypatch):
    spec = write_spec(tmp_path / "spec.yaml", {
        "data": str(tiny_data), "budget": {"steps": 4}, "base": TINY_BASE, "baseline": "mlm",
        "entries": [{"name": "mlm", "objective.name": "mlm"}, {"name": "two", "objective.name": "two_net"}]})
    monkeypatch.setitem(OBJECTIVES, "two_net", dataclasses.replace(SPEC, compare_metric=None))
    with pytest.raises(ConfigError, match=r"entry two: objective.name='two_net' declares no validation metric"):
        plan_comparison(parse_spec(spec))
