"""The model package's registries: position schemes and heads, filled by the components themselves.

A leaf module: it imports no component and neither the config nor the package face, so ``model/config.py``
validates against it and every component registers into it, with no import circle. The package face
(``leanbert/model/__init__.py``) imports the built-in components; any ``import leanbert.model.<x>`` runs that
face first, so validation always sees them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import nn


@dataclass(frozen=True)
class PositionSchemeSpec:
    """scheme_class(config) builds the module; options: the dataclass of ``model.position_options``.
    hf_reason(options): why transformers' own BERT/ALBERT/ELECTRA classes cannot hold the scheme (so the export
        needs remote code), or None.
    shareable_across_widths(options): whether ELECTRA's narrower generator may use the discriminator's module
        (False when it holds per-head or hidden-width parts)."""

    name: str
    scheme_class: Callable[[Any], nn.Module]  # called with the ModelConfig
    options: type
    hf_reason: Callable[[Any], str | None]
    shareable_across_widths: Callable[[Any], bool]


POSITION_SCHEMES: dict[str, PositionSchemeSpec] = {}


def register_position_scheme(spec: PositionSchemeSpec) -> PositionSchemeSpec:
    known = POSITION_SCHEMES.get(spec.name)
    if known is not None and known != spec:
        raise ValueError(f"position scheme {spec.name!r} is already registered by {known.scheme_class!r}")
    POSITION_SCHEMES[spec.name] = spec
    return spec


# What LeanBertModel can hand a head: hidden (B, T, H); pooled (B, H) or None; word_embeddings (V, E), the
# input table; input_ids, attention_mask, token_type_ids (B, T) as given; mlm_positions (B, T) bool or None;
# plus any tensor the caller passes in ``head_inputs`` (e.g. candidate ids).
# ModelOutput fields that are not head outputs.
RESERVED_OUTPUTS = ("last_hidden_state", "pooler_output", "hidden_states", "attention_scores", "extra")


@dataclass(frozen=True)
class HeadSpec:
    """``head_class(config)`` is called with the named ``inputs`` (positionally, in this order); its result
    becomes ``ModelOutput.<output>``. ``hf_names``: per family, the head's sub-module -> transformers' module
    name in that family's pretraining class (how import/export rename its weights)."""

    head_class: type[nn.Module]
    inputs: tuple[str, ...]
    output: str
    hf_names: dict[str, dict[str, str]] = field(default_factory=dict)


HEADS: dict[str, HeadSpec] = {}


def register_head(name: str, head_class: type[nn.Module], inputs: tuple[str, ...], output: str,
                  hf_names: dict[str, dict[str, str]] | None = None) -> None:
    """Make ``name`` a valid ``model.heads`` entry. ``output`` may be an existing ModelOutput field (``logits``,
    ``mlm_logits``, ...) or a new name, carried in ``ModelOutput.extra`` and readable as an attribute."""
    if name in HEADS:
        raise ValueError(f"head {name!r} is already registered")
    if output in RESERVED_OUTPUTS:
        raise ValueError(f"head {name!r}: output {output!r} is a ModelOutput field that heads do not fill")
    HEADS[name] = HeadSpec(head_class, tuple(inputs), output, dict(hf_names or {}))
