"""``ObjectiveConfig``: the base of every objective's ``objective.*`` keys.

Each objective declares its own dataclass (``MaskedLMConfig`` in mlm.py, ``ElectraConfig`` in electra.py, ...)
that adds its keys to ``name``, so ``objective.temperature`` exists only for objectives that sample. The
registry (registry.py) maps ``objective.name`` to that class and validates a raw ``objective`` mapping with it.
"""

from __future__ import annotations

from dataclasses import dataclass

from leanbert.config import check_number


@dataclass
class ObjectiveConfig:
    """name: the registry entry (``leanbert.objectives.registry.OBJECTIVES``) this config belongs to."""

    name: str = ""


def check_weights(config: ObjectiveConfig, *names: str) -> None:
    """Loss weights are numbers >= 0; the error names the key (``objective.mlm_weight``)."""
    for name in names:
        check_number(f"objective.{name}", getattr(config, name), 0)
