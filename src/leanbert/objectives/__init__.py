"""Pretraining objectives: each wraps its networks and turns a ``Batch`` into ``Output(loss, metrics)``.

Every objective registers itself (registry.py): ``build_objective(objective_config("electra"), model_config)``
picks the class by name; the objective sets the model heads itself (``heads`` of ``model_config`` is ignored).
Importing this package imports every module in it, which registers the built-in objectives: a new one is one
file and no edit here. Add-ons (TNF, ...) live in leanbert.addons, one floor up.
"""

from __future__ import annotations

import importlib
import pkgutil

from leanbert.objectives.base import Objective, ObjectiveWrapper, Output
from leanbert.objectives.config import ObjectiveConfig
from leanbert.objectives.electra import Electra, ElectraConfig
from leanbert.objectives.metrics import aggregate_metrics
from leanbert.objectives.mlm import MaskedLM, MaskedLMConfig
from leanbert.objectives.pairs import MaskedLMWithPairs, PairsConfig
from leanbert.objectives.registry import (
    ADDONS,
    OBJECTIVES,
    AddonConfig,
    AddonSpec,
    DataNeeds,
    ObjectiveSpec,
    apply_addons,
    build_objective,
    check_addons,
    objective_config,
    objective_config_from_dict,
    objective_spec,
    register_addon,
    register_objective,
    training_flops_per_token,
)

__all__ = ["ADDONS", "OBJECTIVES", "AddonConfig", "AddonSpec", "DataNeeds", "Electra", "ElectraConfig",
           "MaskedLM", "MaskedLMConfig", "MaskedLMWithPairs", "Objective", "ObjectiveConfig", "ObjectiveSpec",
           "ObjectiveWrapper", "Output", "PairsConfig", "aggregate_metrics", "apply_addons", "build_objective",
           "check_addons", "objective_config", "objective_config_from_dict", "objective_spec",
           "register_addon", "register_objective", "training_flops_per_token"]

for _found in pkgutil.iter_modules(__path__):  # each objective's module registers itself
    importlib.import_module(f"{__name__}.{_found.name}")
