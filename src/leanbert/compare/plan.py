"""From a spec to what each entry runs: its validated pretraining config per seed and its budget.

Budget accounting. A step of entry e trains on ``batch_size x seq_len`` token positions and costs
``step_flops_e = flops_per_token_e x batch_size x seq_len`` model FLOPs (``training_flops_per_token``: every
network the objective runs, e.g. ELECTRA's generator and discriminator, plus each enabled add-on's declared
FLOPs). A FLOPs budget B gives each entry
``max_steps_e = floor(B / step_flops_e)`` steps, so every entry stops within one of its own steps below B;
``spent = steps x step_flops`` is what the report calls FLOPs (the FLOPs over the real, unpadded tokens are
recorded next to it). A ``steps`` budget sets ``train.max_steps``; a ``minutes`` budget sets
``train.max_minutes`` and keeps the entry's ``train.max_steps`` as the schedule's length (and a cap).

Validation lands on regular marks: ``train.eval_every = ceil(max_steps / valid_marks)``, so every entry is
validated at step 0, every 1/valid_marks of its budget (rounded up to whole steps: the same fraction of the
budget for every entry, the same FLOPs within one step of the interval) and at its last step. Checkpoints are
written at the same steps unless the spec sets ``train.checkpoint_every``, so an interrupted entry loses at
most one interval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from leanbert.compare.spec import CompareSpec, Entry
from leanbert.config import ConfigError
from leanbert.data.config import DataConfig
from leanbert.data.loader import resolve_tokenizer
from leanbert.errors import UserError
from leanbert.finetune.config import finetune_config
from leanbert.objectives.registry import objective_spec, training_flops_per_token
from leanbert.pretrain_config import PretrainConfig, load_pretrain_config


@dataclass(frozen=True)
class Budget:
    """One entry's share of the budget."""

    flops_per_token: float
    tokens_per_step: int  # token positions per optimizer step (batch_size x seq_len)
    max_steps: int
    max_minutes: float  # 0 = no time limit
    eval_every: int

    @property
    def step_flops(self) -> float:
        return self.flops_per_token * self.tokens_per_step

    def flops_at(self, step: int) -> float:
        return step * self.step_flops


@dataclass
class EntryPlan:
    name: str
    overrides: dict[str, Any]
    budget: Budget
    configs: dict[int, PretrainConfig]  # pretraining seed -> config
    raw: dict[int, dict[str, Any]]  # pretraining seed -> the nested dict the config came from


def nested(overrides: dict[str, Any]) -> dict[str, Any]:
    """``{"model.preset": x}`` -> ``{"model": {"preset": x}}`` (values keep their YAML types)."""
    out: dict[str, Any] = {}
    for key, value in overrides.items():
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"{key}: {part!r} is not a group of keys")
            node = child
        node[parts[-1]] = value
    return out


def entry_config(spec: CompareSpec, entry: Entry, train: dict[str, Any]) -> tuple[PretrainConfig, dict]:
    """The entry's pretraining config with ``train`` keys set by the comparison; errors name the entry."""
    raw = nested({**entry.overrides, "data.path": spec.data, **{f"train.{k}": v for k, v in train.items()}})
    try:
        return load_pretrain_config(None, [], base=raw)
    except (ConfigError, UserError) as err:
        raise ConfigError(f"{spec.path}: entry {entry.name}: {err}") from None


def budget_for(spec: CompareSpec, entry: Entry, config: PretrainConfig, vocab_size: int, pad_id: int) -> Budget:
    model_config = config.model_config(vocab_size=vocab_size, pad_token_id=pad_id)
    if objective_spec(config.objective.name).compare_metric is None:
        raise ConfigError(f"{spec.path}: entry {entry.name}: objective.name={config.objective.name!r} declares no "
                          f"validation metric to compare (its registry entry's compare_metric is None)")
    try:
        per_token = training_flops_per_token(model_config, config.objective, config.data, config.addons)
    except ConfigError as err:
        raise ConfigError(f"{spec.path}: entry {entry.name}: {err}") from None
    tokens = config.train.batch_size * config.data.seq_len
    minutes = 0.0
    if spec.budget_kind == "flops":
        steps = math.floor(spec.budget_value / (per_token * tokens))
        if steps < 1:
            raise ConfigError(f"{spec.path}: budget.flops={spec.budget_value:.3g} is less than one step of entry "
                              f"{entry.name} ({per_token * tokens:.3g} FLOPs); raise the budget")
    elif spec.budget_kind == "steps":
        steps = int(spec.budget_value)
    else:
        steps, minutes = config.train.max_steps, spec.budget_value
    return Budget(flops_per_token=per_token, tokens_per_step=tokens, max_steps=steps, max_minutes=minutes,
                  eval_every=math.ceil(steps / spec.valid_marks))


def plan_entry(spec: CompareSpec, entry: Entry, vocab_size: int, pad_id: int) -> EntryPlan:
    """Check the entry's overrides, size its budget, and build its config for every pretraining seed."""
    # sizing pass: the budget decides max_steps, so the default must not trip checks against it (warm-up)
    sizing = {} if spec.budget_kind == "minutes" else {"max_steps": 2**31 - 1}
    first, _ = entry_config(spec, entry, {"seed": spec.seeds[0], **sizing})
    budget = budget_for(spec, entry, first, vocab_size, pad_id)
    train: dict[str, Any] = {"max_steps": budget.max_steps, "max_minutes": budget.max_minutes,
                             "eval_every": budget.eval_every}
    if "train.checkpoint_every" not in entry.overrides:
        train["checkpoint_every"] = budget.eval_every
    configs, raws = {}, {}
    for seed in spec.seeds:
        configs[seed], raws[seed] = entry_config(spec, entry, {**train, "seed": seed})
    return EntryPlan(entry.name, entry.overrides, budget, configs, raws)


def plan_comparison(spec: CompareSpec) -> dict[str, EntryPlan]:
    """Every entry's plan, in spec order; also loads every evaluation task once (missing files, bad columns
    and bad fine-tuning overrides are reported now, not after an hour of pretraining)."""
    try:
        tokenizer = resolve_tokenizer(DataConfig(path=spec.data))
    except (ConfigError, UserError) as err:
        raise ConfigError(f"{spec.path}: data: {err}") from None
    plans = {e.name: plan_entry(spec, e, tokenizer.vocab_size, tokenizer.pad_id) for e in spec.entries}
    positions = {name: plan.configs[spec.seeds[0]].model_config().max_positions for name, plan in plans.items()}
    for kind, tasks in (("finetune", spec.finetune), ("probe", spec.probe)):
        for task in tasks:
            where = f"{spec.path}: evaluate.{kind} {task.name}"
            try:
                data = task.load()
                seq_len = task.max_seq_len
                if kind == "finetune":
                    config = finetune_config(data.spec.recipe, [*task.overrides, f"train.seeds={list(task.seeds)}"])
                    seq_len = config.data.max_seq_len
            except (ConfigError, UserError) as err:
                raise ConfigError(f"{where}: {err}") from None
            if kind == "probe" and data.spec.regression:
                raise ConfigError(f"{where}: a linear probe needs a classification task")
            short = next((name for name, n in positions.items() if n < seq_len), None)
            if short is not None:
                key = "data.max_seq_len" if kind == "finetune" else "max_seq_len"
                raise ConfigError(f"{where}: {key}={seq_len} exceeds entry {short}'s model.max_positions="
                                  f"{positions[short]}; set {key} (at most {positions[short]})")
    return plans
