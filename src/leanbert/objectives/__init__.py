"""Pretraining objectives: each wraps its networks and turns a ``Batch`` into ``Output(loss, metrics)``.

``build_objective(ObjectiveConfig(name=...), model_config)`` picks the class by name; the objective sets the
model heads itself (``config.heads`` of ``model_config`` is ignored).
"""

from __future__ import annotations

from leanbert.config import ModelConfig
from leanbert.objectives.base import Objective, Output
from leanbert.objectives.config import ObjectiveConfig
from leanbert.objectives.electra import Electra
from leanbert.objectives.metrics import aggregate_metrics
from leanbert.objectives.mlm import MaskedLM
from leanbert.objectives.pairs import MaskedLMWithPairs

OBJECTIVE_CLASSES: dict[str, type[Objective]] = {
    "mlm": MaskedLM,
    "mlm+nsp": MaskedLMWithPairs,
    "mlm+sop": MaskedLMWithPairs,
    "electra": Electra,
}


def build_objective(objective_config: ObjectiveConfig, model_config: ModelConfig) -> Objective:
    """The objective named by ``objective_config.name``, with freshly initialised networks."""
    return OBJECTIVE_CLASSES[objective_config.name](model_config, objective_config)


__all__ = ["Electra", "MaskedLM", "MaskedLMWithPairs", "Objective", "ObjectiveConfig", "Output",
           "aggregate_metrics", "build_objective"]
