"""The model package: torch, the standard library and the config schema only, so a remote-code export can ship
it as it is (``export/remote_bundle.py``).

Importing it registers the built-in components, so ``ModelConfig`` validation sees every position scheme and
head (``leanbert.config`` asks this face for the registries).
"""

from leanbert.model.heads import HEADS, register_head
from leanbert.model.positions import POSITION_SCHEMES, PositionSchemeSpec, register_position_scheme
from leanbert.model.task_heads import SpanHead  # noqa: F401  (registers the task heads: span, token, choice)
from leanbert.model.tupe import TupePositions  # registers the built-in "tupe" scheme

__all__ = ["HEADS", "POSITION_SCHEMES", "PositionSchemeSpec", "TupePositions", "register_head",
           "register_position_scheme"]
