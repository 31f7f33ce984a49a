"""A comparison spec (``leanbert compare SPEC.yaml``): a dataset, one budget, shared overrides and the entries.

::

    data: runs/data-wp                  # a prepared dataset (`leanbert prepare`)
    budget: {flops: 2.0e13}             # or {minutes: 10} or {steps: 2000}: the same for every entry
    base: {model.preset: bert-mini, data.seq_len: 128, train.batch_size: 32}   # shared pretraining overrides
    seeds: [0]                          # pretraining seeds (train.seed), each entry runs once per seed
    baseline: mlm                       # the entry every other one is judged against (default: the first)
    entries:
      - {name: mlm, objective.name: mlm}
      - {name: electra, objective.name: electra}
    evaluate:
      valid_marks: 10                   # validations of the MLM loss per run, at evenly spaced FLOPs
      finetune: [{task: sst2, data: ../shared/data/glue, seeds: 3, overrides: {train.epochs: 1}}]
      probe: [{task: sst2, data: ../shared/data/glue, max_train: 2000}]

Everything is checked here, before any run starts: unknown keys, a missing dataset or task file, and every
entry's pretraining config (each entry's overrides go through the same validation as ``leanbert pretrain``).
Errors are one line naming the spec file and the key.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from leanbert.config import ConfigError, check_integer, check_number, check_seed, load_config_file
from leanbert.tasks.sequence_data import load_task_data

SPEC_KEYS = ("data", "budget", "base", "seeds", "baseline", "entries", "evaluate")
BUDGET_KINDS = ("flops", "minutes", "steps")
EVALUATE_KEYS = ("valid_marks", "finetune", "probe")
TASK_KEYS = ("task", "name", "data", "train", "dev", "text_columns", "label_column", "regression")
FINETUNE_KEYS = TASK_KEYS + ("seeds", "overrides")
PROBE_KEYS = TASK_KEYS + ("max_train", "max_seq_len")
# set by the comparison itself: an entry may not change them, or the budgets would no longer be equal
RESERVED = {"data.path": "the spec's `data`", "train.seed": "the spec's `seeds`",
            "train.eval_every": "evaluate.valid_marks"}
BUDGET_RESERVED = {"flops": ("train.max_steps", "train.max_minutes"), "steps": ("train.max_steps",
                                                                               "train.max_minutes"),
                   "minutes": ("train.max_minutes",)}
MAX_SEEDS = 1000  # `seeds: K` runs every entry K times
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class TaskRef:
    """A downstream task (fine-tuning or probe): GLUE name + folder, or custom files."""

    name: str  # unique label: directory names, table columns
    task: str
    data: str | None = None
    train: str | None = None
    dev: str | None = None
    text_columns: str | None = None
    label_column: str | None = None
    regression: bool = False
    seeds: tuple[int, ...] = (0,)  # fine-tuning seeds
    overrides: tuple[str, ...] = ()  # fine-tuning key=value settings
    max_train: int = 0  # probe: first N training examples (0 = all)
    max_seq_len: int = 128  # probe

    def load(self):
        return load_task_data(self.task, data=self.data, train=self.train, dev=self.dev,
                              text_columns=self.text_columns, label_column=self.label_column,
                              regression=self.regression)


@dataclass(frozen=True)
class Entry:
    name: str
    overrides: dict[str, Any]  # dotted pretraining keys -> values, base's included


@dataclass
class CompareSpec:
    path: Path
    data: str
    budget_kind: str
    budget_value: float
    base: dict[str, Any]
    seeds: tuple[int, ...]
    baseline: str
    entries: list[Entry]
    valid_marks: int = 10
    finetune: list[TaskRef] = field(default_factory=list)
    probe: list[TaskRef] = field(default_factory=list)

    def entry(self, name: str) -> Entry:
        for entry in self.entries:
            if entry.name == name:
                return entry
        raise ConfigError(f"{self.path}: no entry named {name!r}; entries: "
                          f"{', '.join(e.name for e in self.entries)}")

    def to_dict(self) -> dict[str, Any]:
        """What DIR/spec.json records: a continued comparison must mean the same experiment."""
        def task(t: TaskRef) -> dict[str, Any]:
            return {k: (list(v) if isinstance(v, tuple) else v) for k, v in t.__dict__.items()}

        return {"data": self.data, "budget": {self.budget_kind: self.budget_value}, "base": self.base,
                "seeds": list(self.seeds), "baseline": self.baseline,
                "entries": {e.name: e.overrides for e in self.entries},
                "evaluate": {"valid_marks": self.valid_marks, "finetune": [task(t) for t in self.finetune],
                             "probe": [task(t) for t in self.probe]}}


def flatten(section: Any, where: str, prefix: str = "") -> dict[str, Any]:
    """``{model: {preset: x}}`` or ``{model.preset: x}`` -> ``{"model.preset": x}``."""
    if not isinstance(section, dict):
        raise ConfigError(f"{where} must be a mapping of dotted keys (model.preset: bert-mini)")
    out: dict[str, Any] = {}
    for key, value in section.items():
        if not isinstance(key, str) or not key:
            raise ConfigError(f"{where}: key {key!r} must be a dotted name such as train.lr")
        full = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, where, f"{full}."))
        elif "." not in full:
            raise ConfigError(f"{where}: key {full!r} must name a group and a key, e.g. objective.name")
        else:
            out[full] = value
    return out


def _unknown(section: dict[str, Any], allowed: tuple[str, ...], where: str) -> None:
    unknown = [k for k in section if k not in allowed]
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}; allowed keys: {', '.join(allowed)}")


def _int_list(value: Any, where: str) -> tuple[int, ...]:
    """An int K (seeds 0..K-1, K <= MAX_SEEDS) or a list of distinct seeds (``check_seed``)."""
    if isinstance(value, int) and not isinstance(value, bool):
        check_integer(where, value, 1, MAX_SEEDS)  # every seed is a whole run: a count is never huge
        return tuple(range(value))
    if not isinstance(value, list) or not value:
        raise ConfigError(f"{where}={value!r} must be a count or a non-empty list of seeds (integers >= 0)")
    for seed in value:
        check_seed(f"{where} entry", seed)
    if len(set(value)) != len(value):
        raise ConfigError(f"{where}={value!r} repeats a seed")
    return tuple(value)


def _budget(raw: Any, where: str) -> tuple[str, float]:
    if not isinstance(raw, dict) or len(raw) != 1 or next(iter(raw)) not in BUDGET_KINDS:
        raise ConfigError(f"{where}: budget must be one of {{flops: N}}, {{minutes: N}}, {{steps: N}}; "
                          f"got {raw!r}")
    kind, value = next(iter(raw.items()))
    if isinstance(value, str):  # YAML 1.1 reads 2e13 (no dot) as a string
        try:
            value = float(value)
        except ValueError:
            pass
    check_number(f"{where}: budget.{kind}", value, 0, low_open=True)  # nan and inf included
    if kind == "steps":
        if not float(value).is_integer():
            raise ConfigError(f"{where}: budget.steps={value!r} must be a whole number")
        check_integer(f"{where}: budget.steps", int(value), 1)
    return kind, float(value)


def _task(raw: Any, where: str, allowed: tuple[str, ...]) -> TaskRef:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be a mapping with at least `task`")
    _unknown(raw, allowed, where)
    if not isinstance(raw.get("task"), str):
        raise ConfigError(f"{where}: `task` is required (a GLUE task name such as sst2, or custom)")
    fields: dict[str, Any] = {"task": raw["task"], "name": str(raw.get("name", raw["task"]))}
    for key in ("data", "train", "dev", "text_columns", "label_column"):
        if raw.get(key) is not None:
            fields[key] = str(raw[key])
    if "regression" in raw:
        if not isinstance(raw["regression"], bool):
            raise ConfigError(f"{where}: regression must be true or false")
        fields["regression"] = raw["regression"]
    if "seeds" in raw:
        fields["seeds"] = _int_list(raw["seeds"], f"{where}: seeds")
    if "overrides" in raw:
        overrides = flatten(raw["overrides"], f"{where}: overrides")
        if "train.seeds" in overrides:
            raise ConfigError(f"{where}: set the fine-tuning seeds with `seeds`, not train.seeds")
        fields["overrides"] = tuple(f"{k}={json.dumps(v)}" for k, v in overrides.items())
    for key in ("max_train", "max_seq_len"):
        if key in raw:
            value = raw[key]
            if isinstance(value, bool) or not isinstance(value, int) or value < (0 if key == "max_train" else 8):
                raise ConfigError(f"{where}: {key}={value!r} must be a whole number"
                                  + (" >= 0" if key == "max_train" else " >= 8"))
            fields[key] = value
    if not NAME_PATTERN.match(fields["name"]):
        raise ConfigError(f"{where}: name {fields['name']!r} must be letters, digits, '.', '_' or '-'")
    return TaskRef(**fields)


def _tasks(raw: Any, where: str, allowed: tuple[str, ...]) -> list[TaskRef]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ConfigError(f"{where} must be a list of tasks")
    tasks = [_task(item, f"{where}[{i}]", allowed) for i, item in enumerate(raw)]
    names = [t.name for t in tasks]
    if len(set(names)) != len(names):
        raise ConfigError(f"{where}: two tasks are named the same; give each a distinct `name`")
    return tasks


def _entries(raw: Any, base: dict[str, Any], where: str) -> list[Entry]:
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f"{where}: entries must be a non-empty list of {{name: ..., <overrides>}}")
    entries = []
    for i, item in enumerate(raw):
        at = f"{where}: entries[{i}]"
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise ConfigError(f"{at} must be a mapping with a `name` and pretraining overrides")
        name = item["name"]
        if not NAME_PATTERN.match(name):
            raise ConfigError(f"{at}: name {name!r} must be letters, digits, '.', '_' or '-' (a directory name)")
        own = flatten({k: v for k, v in item.items() if k != "name"}, f"{at} ({name})")
        entries.append(Entry(name, {**base, **own}))
    names = [e.name for e in entries]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate:
        raise ConfigError(f"{where}: two entries are named {duplicate!r}")
    return entries


def _check_reserved(overrides: dict[str, Any], budget_kind: str, where: str) -> None:
    for key in overrides:
        if key in RESERVED:
            raise ConfigError(f"{where}: {key} is set by {RESERVED[key]}; remove it")
        if key in BUDGET_RESERVED[budget_kind]:
            raise ConfigError(f"{where}: {key} is set by the budget ({budget_kind}), the same for every entry; "
                              f"remove it")


def parse_spec(path: str | Path) -> CompareSpec:
    """Read and check the spec's structure (the entries' configs are checked by ``plan.plan_comparison``)."""
    path = Path(path)
    raw = load_config_file(path)  # errors name the file
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a compare spec must be a mapping with data, budget and entries")
    _unknown(raw, SPEC_KEYS, str(path))
    for key in ("data", "budget", "entries"):
        if key not in raw:
            raise ConfigError(f"{path}: `{key}` is required")
    if not isinstance(raw["data"], str) or not raw["data"]:
        raise ConfigError(f"{path}: data must be the path of a prepared dataset (`leanbert prepare --out`)")
    data = Path(raw["data"])
    if not data.is_absolute():  # relative to where the command runs, like every other path argument
        data = Path.cwd() / data
    if not (data / "manifest.json").is_file():
        raise ConfigError(f"{path}: data: {raw['data']} is not a prepared dataset (no manifest.json there; "
                          f"make one with `leanbert prepare`)")
    kind, value = _budget(raw["budget"], str(path))
    base = flatten(raw.get("base") or {}, f"{path}: base")
    entries = _entries(raw["entries"], base, str(path))
    for entry in entries:
        _check_reserved(entry.overrides, kind, f"{path}: entry {entry.name}")
    seeds = _int_list(raw.get("seeds", [0]), f"{path}: seeds")
    baseline = raw.get("baseline", entries[0].name)
    if baseline not in [e.name for e in entries]:
        raise ConfigError(f"{path}: baseline {baseline!r} is not an entry; entries: "
                          f"{', '.join(e.name for e in entries)}")
    evaluate = raw.get("evaluate") or {}
    if not isinstance(evaluate, dict):
        raise ConfigError(f"{path}: evaluate must be a mapping with valid_marks, finetune, probe")
    _unknown(evaluate, EVALUATE_KEYS, f"{path}: evaluate")
    marks = evaluate.get("valid_marks", 10)
    if isinstance(marks, bool) or not isinstance(marks, int) or marks < 1:
        raise ConfigError(f"{path}: evaluate.valid_marks={marks!r} must be a whole number >= 1")
    return CompareSpec(path=path, data=str(data.resolve()), budget_kind=kind, budget_value=value, base=base,
                       seeds=seeds, baseline=baseline, entries=entries, valid_marks=marks,
                       finetune=_tasks(evaluate.get("finetune"), f"{path}: evaluate.finetune", FINETUNE_KEYS),
                       probe=_tasks(evaluate.get("probe"), f"{path}: evaluate.probe", PROBE_KEYS))
