"""The typed config of ``leanbert distill``: a YAML file (``--config``) and/or dotted ``key=value`` overrides.

Groups, both stages::

    student:  {init: preset | teacher-layers | MODEL_DIR, preset: tinybert-4l-312d, keep_every: 2}
    model:    {hidden_size: 256, ...}          # ModelConfig overrides of the student preset (init=preset only)
    distill:  {layer_map: uniform | top | bottom | [g(1), ..., g(M)], features: [attention, hidden],
               matches: [{student: 2, teacher: 6, feature: hidden, loss: mse, weight: 1.0}, ...],
               embedding_weight, attention_weight, hidden_weight, shared_projection}
general:  data: DataConfig (a prepared corpus; data.masking is always none), train: TrainConfig (pretrain's)
task:     data: {max_seq_len, max_train_examples}, train: finetune's train.* keys except lr and epochs, which
          are per step: distill.intermediate_epochs / intermediate_lr (step 1: embedding + attention + hidden)
          and distill.prediction_epochs / prediction_lr (step 2), plus distill.temperature and
          distill.hard_label_weight for the prediction layer.

``distill.matches`` lists the matches explicitly (TextBrewer style); without it they are generated from
``layer_map`` and ``features`` (matches.py). ``resolved_matches`` expands them for a teacher and student depth:
config.yaml and ``--print-config`` show the expanded list.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import leanbert.addons  # noqa: F401  (their batch features: older config.yaml files name them in data)
from leanbert.config import (
    ConfigError,
    apply_overrides,
    check_integer,
    check_number,
    from_dict,
    load_config_file,
    to_dict,
)
from leanbert.data.config import DataConfig
from leanbert.distill.labels import parse_label_map
from leanbert.distill.matches import FEATURES, STRATEGIES, LayerMatch, generate_matches, parse_matches
from leanbert.distill.student import INITS
from leanbert.finetune.config import FinetuneConfig, FinetuneTrainConfig
from leanbert.model.config import ModelConfig
from leanbert.presets import PRESETS
from leanbert.tasks.recipe import FinetuneDataConfig, Recipe
from leanbert.train.config import TrainConfig

GROUPS = ("student", "model", "distill", "data", "train")
GENERAL_FEATURES = ("attention", "hidden")  # the reference's general distillation: no embedding term
TASK_FEATURES = ("embedding", "attention", "hidden")  # task step 1, intermediate layers
PER_STEP_KEYS = ("lr", "epochs")  # task stage: given per step as distill.* keys


@dataclass
class StudentConfig:
    """init:       preset (a fresh student), teacher-layers (DistilBERT's: every keep_every-th teacher layer), or
                a model directory (e.g. a general-distillation run) to start from.
    preset:     the shape for init=preset (see `leanbert params`); model.* keys change it.
    keep_every: init=teacher-layers: keep teacher layers k, 2k, ..., N (k must divide N)."""

    init: str = "preset"
    preset: str = "tinybert-4l-312d"
    keep_every: int = 2

    def __post_init__(self) -> None:
        if not isinstance(self.init, str) or not self.init:
            raise ConfigError(f"student.init={self.init!r}: choose {', '.join(INITS)} or a model directory")
        if self.preset not in PRESETS:
            raise ConfigError(f"student.preset={self.preset!r} is not a preset; choose one of "
                              f"{', '.join(PRESETS)}")
        check_integer("student.keep_every", self.keep_every, 1)


@dataclass
class DistillConfig:
    """layer_map:         uniform (g(m) = floor(m N / M)), top, bottom, or an explicit list [g(1), ..., g(M)].
    features:          which features the generated matches cover (default: the stage's, see GROUPS above).
    matches:           an explicit list of matches instead of layer_map + features.
    *_weight:          the generated matches' weight per feature.
    shared_projection: one student->teacher projection for embeddings and hidden states (the reference code's
                       fit_dense) instead of the paper's separate W_e and W_h."""

    layer_map: str | list[int] = "uniform"
    features: list[str] | None = None
    matches: list[dict[str, Any]] | None = None
    embedding_weight: float = 1.0
    attention_weight: float = 1.0
    hidden_weight: float = 1.0
    shared_projection: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.layer_map, str) and self.layer_map not in STRATEGIES:
            raise ConfigError(f"distill.layer_map={self.layer_map!r}: choose {', '.join(STRATEGIES)} or a list "
                              "of teacher layers, one per student layer")
        for feature in self.features or []:
            if feature not in FEATURES:
                raise ConfigError(f"distill.features: {feature!r} is not one of {', '.join(FEATURES)}")
        if self.features is not None and not self.features:
            raise ConfigError("distill.features=[] leaves nothing to distil")
        for name in ("embedding_weight", "attention_weight", "hidden_weight"):
            check_number(f"distill.{name}", getattr(self, name), 0.0)


@dataclass
class TaskDistillConfig(DistillConfig):
    """Task stage (TinyBERT sec. 3.3): step 1 distils the intermediate layers, step 2 the prediction layer.
    The paper trains 10 epochs, then 3 at lr 3e-5 on augmented data; the defaults are sized for a CPU
    (3 + 3 epochs). intermediate_epochs=0 skips step 1.
    temperature:       soft cross-entropy temperature (the paper: 1).
    hard_label_weight: share of the gold-label loss in step 2 (0 = the teacher's logits alone); rows from
                       --unlabeled get the teacher's loss alone.
    teacher_cache:     compute the teacher's outputs for every training row once (teacher_cache.py) instead of
                       at every step; OUT_DIR/teacher-cache keeps them for a rerun.
    cache_budget_mb:   disk budget for the cached intermediate features of step 1 (the logits are always
                       cached); beyond it the teacher recomputes those features at each step."""

    intermediate_epochs: float = 3.0
    intermediate_lr: float = 1e-4
    prediction_epochs: float = 3.0
    prediction_lr: float = 5e-5
    temperature: float = 1.0
    hard_label_weight: float = 0.0
    teacher_cache: bool = True
    cache_budget_mb: float = 2048.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.teacher_cache, bool):
            raise ConfigError(f"distill.teacher_cache={self.teacher_cache!r} must be true or false")
        check_number("distill.cache_budget_mb", self.cache_budget_mb, 0.0)
        check_number("distill.intermediate_epochs", self.intermediate_epochs, 0.0)
        check_number("distill.prediction_epochs", self.prediction_epochs, 0.0, low_open=True)
        check_number("distill.intermediate_lr", self.intermediate_lr, 0.0, low_open=True)
        check_number("distill.prediction_lr", self.prediction_lr, 0.0, low_open=True)
        check_number("distill.temperature", self.temperature, 0.0, low_open=True)
        check_number("distill.hard_label_weight", self.hard_label_weight, 0.0, 1.0)


@dataclass
class GeneralConfig:
    student: StudentConfig = field(default_factory=StudentConfig)
    model: dict[str, Any] = field(default_factory=dict)
    distill: DistillConfig = field(default_factory=DistillConfig)
    data: DataConfig = field(default_factory=lambda: DataConfig(masking="none"))
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)


@dataclass
class TaskConfig:
    student: StudentConfig = field(default_factory=StudentConfig)
    model: dict[str, Any] = field(default_factory=dict)
    distill: TaskDistillConfig = field(default_factory=TaskDistillConfig)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    label_map: dict[str, str] = field(default_factory=dict)  # data.label_map: task label -> teacher label

    def step(self, epochs: float, lr: float) -> FinetuneConfig:
        """The task job's config for one step."""
        return dataclasses.replace(self.finetune, train=dataclasses.replace(self.finetune.train, epochs=epochs,
                                                                            lr=lr))

    def to_dict(self) -> dict[str, Any]:
        out = {"student": to_dict(self.student), "model": dict(self.model), "distill": to_dict(self.distill),
               **self.finetune.to_dict()}
        if self.label_map:
            out["data"]["label_map"] = dict(self.label_map)
        return out


def _check_model_group(model: Any, student: StudentConfig) -> dict[str, Any]:
    if not isinstance(model, dict):
        raise ConfigError("model must be a mapping of student model fields (model.hidden_size=...)")
    allowed = [f.name for f in dataclasses.fields(ModelConfig) if f.name not in ("heads", "num_labels")]
    unknown = [k for k in model if k not in allowed]
    if unknown:
        raise ConfigError(f"unknown key model.{unknown[0]}; allowed keys: {', '.join(allowed)}")
    if model and student.init != "preset":
        raise ConfigError(f"model.{next(iter(model))} changes a preset student, but student.init="
                          f"{student.init!r}; drop the model.* keys or use student.init=preset")
    return dict(model)


def _raw_config(path: str | Path | None, overrides: list[str], base: dict[str, Any] | None) -> dict[str, Any]:
    raw = copy.deepcopy(base) if base is not None else {}
    if path is not None:
        raw = load_config_file(path)
    if not isinstance(raw, dict):
        raise ConfigError(f"a distillation config is a mapping with groups {', '.join(GROUPS)}")
    apply_overrides(raw, list(overrides or []), allowed_roots=GROUPS)
    unknown = [k for k in raw if k not in GROUPS]
    if unknown:
        raise ConfigError(f"unknown group {unknown[0]!r}; allowed groups: {', '.join(GROUPS)}")
    return {k: (v if v is not None else {}) for k, v in raw.items()}


def _group(raw: dict[str, Any], name: str) -> dict[str, Any]:
    value = raw.get(name, {})
    if not isinstance(value, dict):
        raise ConfigError(f"{name} must be a mapping of {name}.* keys")
    return dict(value)


def _named(path: str | Path | None, err: ConfigError) -> ConfigError:
    return ConfigError(f"{path}: {err}") if path is not None else err


def load_general_config(path: str | Path | None, overrides: list[str],
                        base: dict[str, Any] | None = None) -> GeneralConfig:
    """``--config`` (or a saved config.yaml as ``base``) + overrides -> a validated GeneralConfig."""
    try:
        raw = _raw_config(path, overrides, base)
        data = _group(raw, "data")
        if data.get("masking", "none") != "none":
            raise ConfigError(f"data.masking={data['masking']!r}: distillation reads plain text; it must be none")
        if data.get("pairs", "none") != "none":
            raise ConfigError(f"data.pairs={data['pairs']!r}: distillation reads plain text; it must be none")
        data.update(masking="none", pairs="none")
        student = from_dict(StudentConfig, _group(raw, "student"), prefix="student.")
        return GeneralConfig(
            student=student, model=_check_model_group(raw.get("model", {}), student),
            distill=from_dict(DistillConfig, _group(raw, "distill"), prefix="distill."),
            data=from_dict(DataConfig, data, prefix="data."),
            train=from_dict(TrainConfig, _group(raw, "train"), prefix="train."))
    except ConfigError as err:
        raise _named(path, err) from None


def load_task_config(recipe: Recipe, path: str | Path | None, overrides: list[str],
                     data_config: type[FinetuneDataConfig] = FinetuneDataConfig) -> TaskConfig:
    """The task's recipe (batch size, sequence length, warm-up, ...) + ``--config`` + overrides;
    ``data_config``: the task type's ``data.*`` class."""
    try:
        raw = _raw_config(path, overrides, None)
        train = _group(raw, "train")
        for key in PER_STEP_KEYS:
            if key in train:
                raise ConfigError(f"train.{key} is set per step in the task stage: use "
                                  f"distill.intermediate_{key} and distill.prediction_{key}")
        defaults = {k: v for k, v in recipe.overrides().items() if k.removeprefix("train.") not in PER_STEP_KEYS}
        finetune: dict[str, dict[str, Any]] = {"train": {}, "data": {}}
        for key, value in defaults.items():
            group, name = key.split(".")
            finetune[group][name] = value
        finetune["train"].update(train)
        finetune["data"].update(_group(raw, "data"))
        label_map = parse_label_map(finetune["data"].pop("label_map", None))
        seeds = finetune["train"].get("seeds")
        if seeds is not None and not isinstance(seeds, list):
            raise ConfigError(f"train.seeds={seeds!r} must be a list, e.g. train.seeds=[0] or [0,1,2]")
        student = from_dict(StudentConfig, _group(raw, "student"), prefix="student.")
        return TaskConfig(
            student=student, model=_check_model_group(raw.get("model", {}), student),
            distill=from_dict(TaskDistillConfig, _group(raw, "distill"), prefix="distill."),
            finetune=FinetuneConfig(train=from_dict(FinetuneTrainConfig, finetune["train"], prefix="train."),
                                    data=from_dict(data_config, finetune["data"], prefix="data.")),
            label_map=label_map)
    except ConfigError as err:
        raise _named(path, err) from None


def resolved_matches(distill: DistillConfig, default_features: tuple[str, ...], student_layers: int,
                     teacher_layers: int) -> list[LayerMatch]:
    """The matches for these depths: ``distill.matches`` checked, or generated from layer_map + features."""
    if distill.matches is not None:
        return parse_matches(distill.matches, student_layers, teacher_layers)
    weights = {"embedding": distill.embedding_weight, "attention": distill.attention_weight,
               "hidden": distill.hidden_weight}
    return generate_matches(distill.layer_map, student_layers, teacher_layers,
                            distill.features or default_features, weights)


def with_matches(resolved: dict[str, Any], matches: list[LayerMatch]) -> dict[str, Any]:
    """A config dict whose ``distill.matches`` is the expanded list (what config.yaml and --print-config show)."""
    out = copy.deepcopy(resolved)
    out["distill"]["matches"] = [m.as_dict() for m in matches]
    return out
