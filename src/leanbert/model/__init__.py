"""The model package: torch, the standard library and the config schema only, so a remote-code export can ship
it as it is (``export/remote_bundle.py``).

``config.py`` holds ``ModelConfig``; ``registries.py`` the position schemes and heads (``heads/`` holds the built-in heads), which each component
registers from its own file. Importing this face imports the built-in components (the ``positions`` package
imports every scheme in its folder), so ``ModelConfig`` validation sees every position scheme and head: any
``import leanbert.model.<x>`` runs this face first.
"""

from leanbert.model.config import ModelConfig
from leanbert.model.heads import HEADS, register_head
from leanbert.model.model import LeanBertModel, ModelOutput
from leanbert.model.positions import POSITION_SCHEMES, PositionSchemeSpec, register_position_scheme

__all__ = ["HEADS", "POSITION_SCHEMES", "LeanBertModel", "ModelConfig", "ModelOutput", "PositionSchemeSpec",
           "register_head", "register_position_scheme"]
