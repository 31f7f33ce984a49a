"""Position schemes, chosen by ``ModelConfig.position`` through ``POSITION_SCHEMES`` and owned by the encoder.

- ``base.py``: the ``PositionScheme`` protocol (input term, attention bias, attention scale);
- ``relative.py``: T5 relative buckets, which any scheme's options may ask for;
- one file per scheme (``absolute.py``, ...), each registering itself.

Adding a scheme = one file here with a ``PositionScheme`` subclass, its options dataclass (the
``model.position_options.*`` keys, validated in its ``__post_init__``) and one ``register_position_scheme``
call; this package imports every module of its folder, so nothing else names it. (A scheme may also live
outside the package, registered from its own file.) ``ModelConfig`` validates ``model.position`` and
``model.position_options`` against the registry; what other code must know about a scheme is asked from its
entry (``hf_reason``, ``shareable_across_widths``), never from its name.
"""

from __future__ import annotations

import importlib
import pkgutil

from leanbert.model.positions.absolute import AbsoluteOptions, AbsolutePositions
from leanbert.model.positions.base import PositionScheme, build_position_scheme
from leanbert.model.registries import POSITION_SCHEMES, PositionSchemeSpec, register_position_scheme

__all__ = ["POSITION_SCHEMES", "AbsoluteOptions", "AbsolutePositions", "PositionScheme", "PositionSchemeSpec",
           "build_position_scheme", "register_position_scheme"]


def import_schemes() -> None:
    """Import every module of this folder, so each scheme registers itself. In the remote-code export this file
    is a flat module with no folder to list; the export imports every shipped module itself
    (``export/remote_bundle.py``)."""
    for found in pkgutil.iter_modules(getattr(__spec__, "submodule_search_locations", None) or ()):
        importlib.import_module(f"{__name__}.{found.name}")


import_schemes()
