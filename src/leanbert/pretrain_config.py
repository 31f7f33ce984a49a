"""``PretrainConfig``: the experiment a pretraining run is (model + objective + data + train + add-ons).

A pretraining config is a YAML file with four groups, changed by dotted overrides on the command line::

    model:     {preset: electra-small, hidden_size: 128, ...}   # any ModelConfig field as model.<field>
    objective: {name: electra, temperature: 1.0, ...}            # name + that objective's own keys
    data:      {path: data/wiki, seq_len: 128, ...}              # DataConfig
    train:     {batch_size: 128, lr: 5e-4, ...}                  # TrainConfig

plus one group per registered add-on (``tnf: {enabled: true, ...}``), present only when the config names it.
``objective.name`` picks the registry entry whose dataclass validates the other ``objective.*`` keys. The
objective implies some data settings (ALBERT's SOP needs sentence-order pairs, ELECTRA masks 85/15): they are
filled in when the user did not set them, and contradictions are refused.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import leanbert.addons  # noqa: F401  (registers the built-in add-ons' config groups and batch features)
from leanbert.config import ConfigError, apply_overrides, from_dict, load_config_file, parse_value, to_dict
from leanbert.data.config import DataConfig
from leanbert.model.config import ModelConfig
from leanbert.objectives import (
    ADDONS,
    ObjectiveConfig,
    objective_config,
    objective_config_from_dict,
    objective_spec,
)
from leanbert.objectives.registry import DEFAULT_OBJECTIVE, check_addons
from leanbert.presets import PRESETS, model_config
from leanbert.train.config import TrainConfig

CORE_GROUPS = ("model", "objective", "data", "train")


def config_groups() -> tuple[str, ...]:
    """The four core groups, then every registered add-on's group."""
    return CORE_GROUPS + tuple(ADDONS)


@dataclass
class PretrainConfig:
    """model: {"preset": name, <ModelConfig field>: value, ...}; the other groups are typed configs; addons:
    group -> add-on config, for the add-on groups the config names."""

    model: dict[str, Any] = field(default_factory=lambda: {"preset": "bert-mini"})
    objective: ObjectiveConfig = field(default_factory=objective_config)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    addons: dict[str, Any] = field(default_factory=dict)

    def model_config(self, **fields: Any) -> ModelConfig:
        """The encoder config: preset, then the ``model.*`` fields, then ``fields`` (e.g. the tokenizer's
        vocab_size) for keys the user did not set."""
        user = {k: v for k, v in self.model.items() if k != "preset"}
        return model_config(self.model["preset"], **{**fields, **user})

    def to_dict(self) -> dict[str, Any]:
        core = {"model": dict(self.model), "objective": to_dict(self.objective), "data": to_dict(self.data),
                "train": to_dict(self.train)}
        return {**core, **{group: to_dict(config) for group, config in self.addons.items()}}


def _check_model_section(model: Any) -> dict[str, Any]:
    if not isinstance(model, dict):
        raise ConfigError("model must be a mapping: preset plus any model field (model.hidden_size=...)")
    model = ModelConfig.upgrade_legacy(dict(model))  # old flat position keys -> model.position_options
    allowed = ["preset"] + [f for f in ModelConfig.__dataclass_fields__]
    unknown = [k for k in model if k not in allowed]
    if unknown:
        raise ConfigError(f"unknown key model.{unknown[0]}; allowed keys: {', '.join(allowed)}")
    if "heads" in model:
        raise ConfigError("model.heads is chosen by the objective (objective.name); remove it")
    if "preset" not in model:
        raise ConfigError(f"model.preset is required; choose one of {', '.join(PRESETS)}")
    model_config(model["preset"], **{k: v for k, v in model.items() if k != "preset"})  # validate now
    return model


def pretrain_config_from_dict(raw: dict[str, Any]) -> PretrainConfig:
    """Validate a nested dict (YAML + overrides) into a PretrainConfig; errors name the key."""
    if not isinstance(raw, dict):
        raise ConfigError("a pretraining config must be a mapping with groups model, objective, data, train")
    groups = config_groups()
    unknown = [k for k in raw if k not in groups]
    if unknown:
        raise ConfigError(f"unknown group {unknown[0]!r}; allowed groups: {', '.join(groups)}")
    objective = objective_config_from_dict(raw.get("objective") or {})
    addons = {group: from_dict(ADDONS[group].config_class, raw[group] or {}, prefix=f"{group}.")
              for group in raw if group in ADDONS}
    check_addons(objective.name, addons)  # a combination the objective cannot serve: refused here, not mid-run
    data_raw = raw.get("data") or {}
    if not isinstance(data_raw, dict):
        raise ConfigError("data must be a mapping of data fields")
    data_raw = dict(data_raw)
    # the objective (and enabled add-ons) imply data settings: filled in where unset, contradictions refused
    needs = [(objective_spec(objective.name).data, f"objective.name={objective.name!r}")]
    needs += [(ADDONS[group].data, f"{group}.enabled=true") for group, cfg in addons.items() if cfg.enabled]
    for need, who in needs:
        need.check(data_raw, who)
        need.apply(data_raw)
    data = from_dict(DataConfig, data_raw, prefix="data.")
    train = from_dict(TrainConfig, raw.get("train") or {}, prefix="train.")
    model = _check_model_section(raw.get("model") or {"preset": "bert-mini"})
    config = PretrainConfig(model=model, objective=objective, data=data, train=train, addons=addons)
    max_positions = config.model_config().max_positions
    if data.seq_len > max_positions:
        raise ConfigError(f"data.seq_len={data.seq_len} exceeds model.max_positions={max_positions}")
    return config


def _start_switched_objective_from_defaults(raw: dict[str, Any], overrides: list[str]) -> None:
    """An ``objective.name=`` override naming another objective than the file's starts that objective from its
    own defaults: the file's other ``objective.*`` keys belong to the file's objective (a recipe's
    ``generator_fraction`` means nothing to mlm+sop). Later ``objective.*`` overrides still apply."""
    names = [item.partition("=")[2] for item in overrides if item.partition("=")[0].strip() == "objective.name"]
    section = raw.get("objective")
    if not names or not isinstance(section, dict):
        return
    if parse_value(names[-1]) != section.get("name", DEFAULT_OBJECTIVE):
        raw["objective"] = {}


def load_pretrain_config(path: str | Path | None, overrides: list[str] | None = None,
                         base: dict[str, Any] | None = None) -> tuple[PretrainConfig, dict[str, Any]]:
    """YAML file (or ``base``) + ``key=value`` overrides -> (validated config, the raw nested dict)."""
    raw = copy.deepcopy(base) if base is not None else {}
    groups = config_groups()
    if path is not None:
        raw = load_config_file(path)
        for group in groups:
            if raw.get(group) is None:
                raw.pop(group, None)
    overrides = list(overrides or [])
    _start_switched_objective_from_defaults(raw, overrides)
    apply_overrides(raw, overrides, allowed_roots=groups)
    try:
        return pretrain_config_from_dict(raw), raw
    except ConfigError as err:
        where = f"{path}: " if path is not None else ""
        raise ConfigError(f"{where}{err}") from None
