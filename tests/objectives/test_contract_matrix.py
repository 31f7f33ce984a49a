"""The objective / add-on contract, end to end: every objective x add-on set x position scheme either trains
(2 pretraining steps) or is refused at config time with one ConfigError naming both; a toy add-on defined
here (no edit to src/) composes with TNF on every objective (ARCHITECTURE.md 3.2, T2)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from leanbert.addons.tnf.rare_words import RareWordSettings, build_rare_word_table, write_rare_word_table
from leanbert.config import ConfigError
from leanbert.data.prepare import prepare_dataset
from leanbert.data.tokenizer import load_tokenizer, train_tokenizer
from leanbert.model.positions import POSITION_SCHEMES
from leanbert.model_dir import ROLES_FILE, load_model
from leanbert.objectives import (
    ADDONS,
    OBJECTIVES,
    AddonConfig,
    AddonSpec,
    ObjectiveWrapper,
    Output,
    objective_spec,
    training_flops_per_token,
)
from leanbert.pretrain import pretrain
from leanbert.pretrain_config import load_pretrain_config

BUILT_IN = sorted(name for name, spec in OBJECTIVES.items() if spec.objective_class.__module__.startswith("leanbert."))
TOY_FLOPS = 7.0
BUILT_TOYS: list[ToyAddon] = []  # the test reads the one its run built


@dataclass
class ToyConfig(AddonConfig):
    scale: float = 1.25


class ToyAddon(ObjectiveWrapper):
    """Scales the kept network's input embeddings, counts its forwards (``toy_calls``) and records where its
    hook sat among the hooks attached to that network."""

    def __init__(self, inner, config: ToyConfig, model_config, kept: str):
        super().__init__(inner)
        self.kept, self.scale = inner.networks()[kept], config.scale
        self.seen_hooks: list[list[str]] = []
        BUILT_TOYS.append(self)

    def forward(self, batch) -> Output:
        calls = []

        def hook(x: torch.Tensor) -> torch.Tensor:
            self.seen_hooks.append([h.__qualname__ for h in self.kept.attached_embedding_hooks])
            return x * self.scale

        handle = self.kept.register_forward_hook(lambda *_: calls.append(1))
        try:
            with self.kept.attached_embedding_hook(hook):
                out = self.inner(batch)
        finally:
            handle.remove()
        return Output(loss=out.loss, metrics={**out.metrics, "toy_calls": torch.tensor(float(len(calls)))})


@dataclass
class NeedyConfig(AddonConfig):
    pass


@pytest.fixture
def toy_addons(monkeypatch):
    monkeypatch.setitem(ADDONS, "toy", AddonSpec(group="toy", config_class=ToyConfig, wrap=ToyAddon,
                                                 flops_per_token=lambda *_: TOY_FLOPS))
    monkeypatch.setitem(ADDONS, "needy", AddonSpec(group="needy", config_class=NeedyConfig, wrap=ToyAddon,
                                                   flops_per_token=lambda *_: 0.0,
                                                   requires=frozenset({"toy_capability"})))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, shared_data) -> Path:
    root = tmp_path_factory.mktemp("matrix-data")
    lines = (Path(shared_data) / "corpus" / "movie-reviews.txt").read_text(encoding="utf-8").splitlines()[:200]
    (root / "corpus.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    train_tokenizer([str(root / "corpus.txt")], root / "tok", vocab_size=300, lowercase=True)
    prepare_dataset([str(root / "corpus.txt")], root / "tok", root / "data", valid_fraction=0.0, progress=False)
    table = build_rare_word_table(root / "data", load_tokenizer(root / "tok"), RareWordSettings(2, 30, 200))
    write_rare_word_table(root / "data", table)
    return root / "data"


def _settings(data: Path, objective: str, position: str, addons: tuple[str, ...]) -> list[str]:
    settings = ["model.preset=bert-tiny", "model.hidden_size=16", "model.num_heads=2", "model.intermediate_size=32",
                "model.num_layers=1", f"model.position={position}", f"objective.name={objective}",
                f"data.path={data}", "data.seq_len=32", "train.batch_size=4", "train.max_steps=2",
                "train.log_every=1", "train.eval_every=0", "train.checkpoint_every=0", "train.warmup_steps=0",
                "train.schedule=constant", "train.device=cpu"]
    if objective == "mcbert":
        settings += ["objective.controller_divider=2"]
    for group in addons:  # the config lists the add-ons in this order
        settings += [f"{group}.enabled=true"]
        if group == "tnf":
            settings += ["tnf.min_count=2", "tnf.max_count=30", "tnf.max_words=200", "tnf.window=2"]
    return settings


def _train_rows(run: Path) -> list[dict]:
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    return [r for r in rows if "loss" in r]


def _check_kept_model(run: Path, objective: str) -> None:
    roles = json.loads((run / "model" / ROLES_FILE).read_text())
    assert roles["kept"] == objective_spec(objective).kept
    model = load_model(run / "model" / roles["path"])
    ids = torch.tensor([[2, 10, 11, 12, 3]])
    with torch.no_grad():
        assert torch.isfinite(model(ids, torch.ones_like(ids)).last_hidden_state).all()


@pytest.mark.parametrize("position", sorted(POSITION_SCHEMES))
@pytest.mark.parametrize("objective", BUILT_IN)
@pytest.mark.parametrize("addons", [(), ("tnf",)], ids=["alone", "tnf"])
def test_every_objective_addon_and_position_scheme_trains_or_is_refused_at_config_time(
        tmp_path, dataset, objective, position, addons):
    try:
        config, _ = load_pretrain_config(None, _settings(dataset, objective, position, addons))
    except ConfigError as err:  # refused: one line naming the objective and the add-on
        assert "\n" not in str(err) and objective in str(err) and all(g in str(err) for g in addons)
        return
    pretrain(config, tmp_path / "run", progress=False)
    rows = _train_rows(tmp_path / "run")
    assert [r["step"] for r in rows] == [1, 2] and all(torch.isfinite(torch.tensor(r["loss"])) for r in rows)
    if addons:
        assert rows[-1]["tnf_notes_filled"] > 0  # the notes went into the live kept network's dictionary
    _check_kept_model(tmp_path / "run", objective)


@pytest.mark.parametrize("objective", BUILT_IN)
@pytest.mark.parametrize("addons", [("toy",), ("toy", "tnf")], ids=["toy", "toy+tnf"])
def test_a_toy_addon_composes_with_every_objective_and_tnf(tmp_path, dataset, toy_addons, objective, addons):
    config, _ = load_pretrain_config(None, _settings(dataset, objective, "absolute", addons))
    model_config = config.model_config(vocab_size=300, pad_token_id=0)
    alone = training_flops_per_token(model_config, config.objective, config.data)
    with_addons = training_flops_per_token(model_config, config.objective, config.data, config.addons)
    assert with_addons == alone + TOY_FLOPS  # TNF declares 0 model FLOPs (addons/tnf/addon.py says why)

    pretrain(config, tmp_path / "run", progress=False)
    rows = _train_rows(tmp_path / "run")
    assert all(torch.isfinite(torch.tensor(r["loss"])) and r["toy_calls"] > 0 for r in rows)
    toy = BUILT_TOYS[-1]
    if "tnf" in addons:
        assert rows[-1]["tnf_notes_filled"] > 0
        # both hooks ran on the kept network, the toy's first (the config lists it first)
        assert all(len(seen) == 2 and "ToyAddon" in seen[0] and "TakingNotes" in seen[1]
                   for seen in toy.seen_hooks)
    else:
        assert all(len(seen) == 1 for seen in toy.seen_hooks)
    _check_kept_model(tmp_path / "run", objective)


@pytest.mark.parametrize("objective", BUILT_IN)
def test_an_addon_needing_what_the_objective_lacks_is_refused_at_config_time(dataset, toy_addons, objective):
    with pytest.raises(ConfigError) as err:
        load_pretrain_config(None, _settings(dataset, objective, "absolute", ("needy",)))
    message = str(err.value)
    assert "needy.enabled=true" in message and f"objective.name={objective!r}" in message
    assert "toy_capability" in message and "\n" not in message
