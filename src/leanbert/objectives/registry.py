"""The objective registry: one entry per objective says everything the rest of the system needs to know.

An entry (``ObjectiveSpec``) carries the objective's class, its ``objective.*`` config dataclass, the data
pipeline settings it implies (``DataNeeds``), derived evaluation metrics, its training FLOPs per token
(required), the role of the network that is kept (fine-tuned, exported, counted by compare), the validation
metric compare reads, and the capabilities it provides to add-ons. How
its metrics aggregate is declared by the class itself (``metric_weights``, read by the training loop) and
exposed here. Adding an objective = one file with the class, its config and one ``register_objective(...)``
call, imported once (objectives/__init__.py imports the built-in ones).

Add-ons (``AddonSpec``) wrap whatever objective was built (TNF wraps any of them); each has its own top-level
config group (``tnf.enabled``, ...) that the pretraining config accepts next to the four core groups, declares
its FLOPs per token (added to the objective's) and the capabilities it requires: a combination the objective
cannot serve is refused at config time (``check_addons``), never at its first step.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from leanbert.config import ConfigError, from_dict
from leanbert.model.config import ModelConfig
from leanbert.objectives.base import Objective
from leanbert.objectives.config import ObjectiveConfig

DEFAULT_OBJECTIVE = "mlm"


@dataclass(frozen=True)
class DataNeeds:
    """The ``data.*`` settings an objective (or add-on) implies.

    implied:  key -> value, filled in where the user did not set the key.
    required: the implied keys a user may not contradict (NSP/SOP need sentence labels; MLM-only and ELECTRA
              would silently waste half-length segments). The others may differ on purpose: ELECTRA with
              BERT's 80/10/10 masking is an ablation in the paper.
    refused:  key -> values the objective cannot train on (an MLM objective refuses ``masking: none``, which
              builds no targets), refused before a run starts rather than failing at its first batch.
    features: batch features it reads (``Batch.extras``, data/features.py), added to ``data.features``; a
              user's ``data.<feature>: false`` contradicts it.
    """

    implied: Mapping[str, Any] = field(default_factory=dict)
    required: frozenset[str] = frozenset()
    refused: Mapping[str, frozenset] = field(default_factory=dict)
    features: frozenset[str] = frozenset()

    def apply(self, data: dict[str, Any]) -> dict[str, Any]:
        """Fill the implied settings into a raw ``data`` dict where the user did not set them, and add the
        needed features (in place)."""
        for key, value in self.implied.items():
            data.setdefault(key, value)
        listed = data.get("features") or []
        if self.features and isinstance(listed, list | tuple):  # another value: DataConfig refuses it
            data["features"] = list(listed) + sorted(self.features - set(listed))
        return data

    def check(self, data: Any, who: str) -> None:
        """Refuse a contradicted required setting or a refused value. ``data`` is a DataConfig or a raw dict;
        ``who`` names the objective in the message (``objective.name='mlm+sop'``)."""
        for key, values in sorted(self.refused.items()):
            value = data.get(key) if isinstance(data, dict) else getattr(data, key, None)
            if value in values:
                raise ConfigError(f"data.{key}={value!r} does not fit {who}, which cannot train on it")
        for key in sorted(self.required):
            value = data.get(key) if isinstance(data, dict) else getattr(data, key, None)
            want = self.implied[key]
            if value is not None and value != want:
                raise ConfigError(f"data.{key}={value!r} does not fit {who}, which needs data.{key}={want!r}")
        for name in sorted(self.features):  # a raw dict gets them added: only an explicit false contradicts
            if isinstance(data, dict):
                contradicted, shown = data.get(name) is False, f"data.{name}=False"
            else:
                contradicted, shown = name not in data.features, f"data.features={data.features!r}"
            if contradicted:
                raise ConfigError(f"{shown} does not fit {who}, which needs data.features to include {name!r}")


# MLM objectives need targets: data.masking none builds none
NEEDS_MLM_TARGETS: Mapping[str, frozenset] = {"masking": frozenset({"none"})}

# (model config, objective config, data config) -> training FLOPs per real token (helpers in leanbert.flops)
FlopsFn = Callable[[ModelConfig, Any, Any], float]
# aggregated evaluation metrics -> extra metrics computed from them
DerivedFn = Callable[[Mapping[str, float]], dict[str, float]]
# (model config, add-on config, data config, objective config) -> the FLOPs per real token the add-on adds
AddonFlopsFn = Callable[[ModelConfig, Any, Any, Any], float]

# What every objective provides to add-ons: ``networks()[kept]`` is a live LeanBertModel whose forward runs in
# every step, so an add-on can attach embedding hooks to it and read its last hidden state.
KEPT_HIDDEN = "kept_hidden"


@dataclass(frozen=True)
class ObjectiveSpec:
    """One objective. ``objective_class(model_config, config)`` builds it with fresh networks.

    flops_per_token: required (``register_objective`` refuses an entry without it).
    kept:            the role in ``networks()`` / ``saved_models()`` that is fine-tuned, exported and counted
                     by compare; RUN/model/roles.json names it.
    compare_metric:  the validation metric compare plots and judges (``val_<compare_metric>``, lower is
                     better); None: compare refuses the objective.
    provides:        capabilities add-ons may require (``AddonSpec.requires``).
    """

    name: str
    objective_class: Callable[[ModelConfig, Any], Objective]
    config_class: type[ObjectiveConfig]
    data: DataNeeds = field(default_factory=DataNeeds)
    flops_per_token: FlopsFn | None = None
    derived_metrics: DerivedFn | None = None
    kept: str = "model"
    compare_metric: str | None = "mlm_loss"
    provides: frozenset[str] = frozenset({KEPT_HIDDEN})

    @property
    def metric_weights(self) -> dict[str, str]:
        """Mean metric -> the count it is a mean over, where that is not ``<group>_count``."""
        return dict(getattr(self.objective_class, "metric_weights", {}))


OBJECTIVES: dict[str, ObjectiveSpec] = {}


def register_objective(spec: ObjectiveSpec) -> ObjectiveSpec:
    """Add ``spec`` under ``spec.name`` (re-registering the same entry is a no-op)."""
    if spec.flops_per_token is None:
        raise ValueError(f"objective {spec.name!r}: its entry must declare flops_per_token (compare budgets and "
                         f"MFU count it)")
    known = OBJECTIVES.get(spec.name)
    if known is not None and known != spec:
        raise ValueError(f"objective {spec.name!r} is already registered by {known.objective_class!r}")
    OBJECTIVES[spec.name] = spec
    return spec


def objective_spec(name: Any) -> ObjectiveSpec:
    if not isinstance(name, str) or name not in OBJECTIVES:
        raise ConfigError(f"objective.name={name!r} is not allowed; choose one of {', '.join(OBJECTIVES)}")
    return OBJECTIVES[name]


def objective_config_from_dict(raw: Any) -> ObjectiveConfig:
    """A raw ``objective`` mapping -> the named objective's config (unknown keys: the message lists the
    objective's own keys)."""
    if not isinstance(raw, dict):
        raise ConfigError("objective must be a mapping: name plus that objective's keys")
    spec = objective_spec(raw.get("name", DEFAULT_OBJECTIVE))
    return from_dict(spec.config_class, {**raw, "name": spec.name}, prefix="objective.")


def objective_config(name: str = DEFAULT_OBJECTIVE, **fields: Any) -> ObjectiveConfig:
    """``objective_config("electra", temperature=3.0)``: validated like ``objective.*`` keys."""
    return objective_config_from_dict({"name": name, **fields})


def build_objective(config: ObjectiveConfig, model_config: ModelConfig) -> Objective:
    """The objective named by ``config.name``, with freshly initialised networks."""
    spec = objective_spec(config.name)
    if not isinstance(config, spec.config_class):
        raise ConfigError(f"objective.name={config.name!r} takes a {spec.config_class.__name__}, "
                          f"got a {type(config).__name__}")
    return spec.objective_class(model_config, config)


# -- add-ons: wrappers around the built objective, each with its own top-level config group ---------------


@dataclass
class AddonConfig:
    """Base of an add-on's config group; ``enabled`` switches it on (``tnf.enabled=true``)."""

    enabled: bool = False


@dataclass(frozen=True)
class AddonSpec:
    """group:           the config group (e.g. ``tnf``).
    wrap:            wrap(objective, config, model_config, kept) -> the wrapped objective; ``kept`` is the role
                     of ``objective.networks()`` the add-on works on (the objective's ``ObjectiveSpec.kept``).
                     Embedding hooks go on that live network with ``LeanBertModel.attached_embedding_hook``
                     (hooks compose; an add-on never replaces another's).
    flops_per_token: required: the training FLOPs per real token the add-on adds (0 with a reason is fine).
    requires:        capabilities the objective must provide (``ObjectiveSpec.provides``); a combination that
                     lacks one is refused at config time, naming both."""

    group: str
    config_class: type[AddonConfig]
    wrap: Callable[[Objective, Any, ModelConfig, str], Objective]
    flops_per_token: AddonFlopsFn
    data: DataNeeds = field(default_factory=DataNeeds)
    requires: frozenset[str] = frozenset()


ADDONS: dict[str, AddonSpec] = {}


def register_addon(spec: AddonSpec) -> AddonSpec:
    if not callable(spec.flops_per_token):
        raise ValueError(f"add-on {spec.group!r}: its entry must declare flops_per_token")
    known = ADDONS.get(spec.group)
    if known is not None and known != spec:
        raise ValueError(f"add-on group {spec.group!r} is already registered")
    ADDONS[spec.group] = spec
    return spec


def check_addons(objective_name: str, addons: Mapping[str, AddonConfig]) -> None:
    """Refuse, at config time, an enabled add-on that needs a capability the objective does not provide."""
    spec = objective_spec(objective_name)
    for group, config in addons.items():
        missing = sorted(ADDONS[group].requires - spec.provides) if config.enabled else []
        if missing:
            raise ConfigError(f"{group}.enabled=true does not work with objective.name={objective_name!r}: "
                              f"{group} needs {', '.join(missing)}, which {objective_name} does not provide")


def apply_addons(objective: Objective, addons: Mapping[str, AddonConfig], model_config: ModelConfig,
                 kept: str = "model") -> Objective:
    """Wrap ``objective`` with every enabled add-on. The first one the config lists is the outermost wrapper:
    its forward runs first, so its embedding hook is attached first and runs first (config order)."""
    enabled = [(group, config) for group, config in addons.items() if config.enabled]
    for group, config in reversed(enabled):
        objective = ADDONS[group].wrap(objective, config, model_config, kept)
    return objective


def training_flops_per_token(model_config: ModelConfig, objective_config: Any, data_config: Any,
                             addons: Mapping[str, AddonConfig] | None = None) -> float:
    """Training FLOPs per real token for ``model_config`` trained with ``objective_config`` (plus the enabled
    ``addons``) on sequences of ``data_config.seq_len`` (masked fraction from ``data_config``), from the
    registry entries."""
    spec = objective_spec(objective_config.name)
    total = spec.flops_per_token(model_config, objective_config, data_config)
    for group, config in (addons or {}).items():
        if config.enabled:
            total += ADDONS[group].flops_per_token(model_config, config, data_config, objective_config)
    return total
