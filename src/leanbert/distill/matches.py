"""Which student layer learns from which teacher layer: TinyBERT's mapping n = g(m) expanded into declarative
matches as TextBrewer writes them (``{student: 2, teacher: 6, feature: hidden, loss: mse, weight: 1.0}``).

Layer numbering (one convention for every feature, both models):
* layer 0 is the embedding layer: ``feature: embedding`` matches student 0 with teacher 0 (g(0) = 0);
* layers 1..M (student) and 1..N (teacher) are the Transformer layers, counted from 1;
* ``hidden`` at layer m is that layer's output, ``hidden_states[m]`` (``hidden_states[0]`` = embeddings);
* ``attention`` at layer m is the PRE-softmax score matrix inside layer m, ``attention_scores[m - 1]``.
So one g serves both features. The reference code (12 -> 4, counting from 0) reads teacher attentions at
i*3+2 and hidden states at i*3: its attention list has no embedding entry while its hidden list does, and
both are g(m) = 3m here (attention_scores[3m - 1], hidden_states[3m]); tests pin that table.

Strategies (Jiao et al., 2020, sec. 4.4): ``uniform`` g(m) = floor(m * N / M) (3m for 12 -> 4; the last
student layer always learns from the last teacher layer), ``top`` g(m) = N - M + m, ``bottom`` g(m) = m, or an
explicit list [g(1), ..., g(M)].
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from leanbert.config import ConfigError

FEATURES = ("embedding", "attention", "hidden")
LOSSES = ("mse",)
STRATEGIES = ("uniform", "top", "bottom")
_KEYS = ("student", "teacher", "feature", "loss", "weight")


@dataclass(frozen=True)
class LayerMatch:
    """One term of the distillation loss: ``weight`` * ``loss`` between the student's ``feature`` at layer
    ``student`` and the teacher's at layer ``teacher`` (numbering in the module docstring)."""

    student: int
    teacher: int
    feature: str
    loss: str = "mse"
    weight: float = 1.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def layer_map(strategy: str | Sequence[int], student_layers: int, teacher_layers: int,
              where: str = "distill.layer_map") -> list[int]:
    """[g(1), ..., g(M)] for M = ``student_layers`` and N = ``teacher_layers``; errors name ``where``."""
    m_layers, n_layers = student_layers, teacher_layers
    if m_layers < 1 or n_layers < 1:
        raise ConfigError(f"{where}: the student ({m_layers}) and teacher ({n_layers}) need at least one layer")
    if isinstance(strategy, str):
        if strategy not in STRATEGIES:
            raise ConfigError(f"{where}={strategy!r} is not allowed; choose one of {', '.join(STRATEGIES)} "
                              "or a list of teacher layers")
        if m_layers > n_layers:
            raise ConfigError(f"{where}={strategy}: the student has more layers ({m_layers}) than the teacher "
                              f"({n_layers}); give an explicit list of {m_layers} teacher layers")
        if strategy == "uniform":
            return [m * n_layers // m_layers for m in range(1, m_layers + 1)]
        if strategy == "top":
            return [n_layers - m_layers + m for m in range(1, m_layers + 1)]
        return list(range(1, m_layers + 1))
    mapping = list(strategy)
    if len(mapping) != m_layers:
        raise ConfigError(f"{where}: expected {m_layers} teacher layers (one per student layer 1..{m_layers}), "
                          f"found {len(mapping)}")
    for m, n in enumerate(mapping, start=1):
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= n_layers:
            raise ConfigError(f"{where}[{m - 1}]: student layer {m} maps to {n!r}; expected a teacher layer "
                              f"in 1..{n_layers}")
    return mapping


def generate_matches(strategy: str | Sequence[int], student_layers: int, teacher_layers: int,
                     features: Sequence[str] = FEATURES, weights: Mapping[str, float] | None = None
                     ) -> list[LayerMatch]:
    """The matches a mapping implies: embedding 0 <-> 0, then attention and/or hidden m <-> g(m) for each
    student layer m (TinyBERT's intermediate-layer distillation when ``features`` holds all three)."""
    for feature in features:
        if feature not in FEATURES:
            raise ConfigError(f"distill.features: {feature!r} is not one of {', '.join(FEATURES)}")
    weights = dict(weights or {})
    mapping = layer_map(strategy, student_layers, teacher_layers)
    matches = []
    if "embedding" in features:
        matches.append(LayerMatch(0, 0, "embedding", weight=float(weights.get("embedding", 1.0))))
    for m, n in enumerate(mapping, start=1):
        for feature in ("attention", "hidden"):
            if feature in features:
                matches.append(LayerMatch(m, n, feature, weight=float(weights.get(feature, 1.0))))
    return matches


def _valid_layers(feature: str, layers: int) -> range:
    return range(0, 1) if feature == "embedding" else range(1, layers + 1)


def _describe(valid: range) -> str:
    return "0 (the embedding layer)" if valid.stop == 1 else f"{valid.start}..{valid.stop - 1}"


def parse_match(raw: Any, student_layers: int, teacher_layers: int, where: str) -> LayerMatch:
    """One match from a config mapping, checked against both models' depths; ``where`` names it in errors
    (e.g. ``distill.matches[3]``)."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: expected a mapping like {{student: 2, teacher: 6, feature: hidden}}, "
                          f"found {raw!r}")
    unknown = [k for k in raw if k not in _KEYS]
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}; allowed: {', '.join(_KEYS)}")
    missing = [k for k in ("student", "teacher", "feature") if k not in raw]
    if missing:
        raise ConfigError(f"{where}: missing key {missing[0]!r}")
    feature = raw["feature"]
    if feature not in FEATURES:
        raise ConfigError(f"{where}: feature={feature!r} is not allowed; choose one of {', '.join(FEATURES)}")
    loss = raw.get("loss", "mse")
    if loss not in LOSSES:
        raise ConfigError(f"{where}: loss={loss!r} is not allowed; choose one of {', '.join(LOSSES)}")
    weight = raw.get("weight", 1.0)
    if isinstance(weight, bool) or not isinstance(weight, int | float) or not math.isfinite(weight) \
            or weight < 0:
        raise ConfigError(f"{where}: weight={weight!r}; expected a finite number >= 0")
    layers = {}
    for side, depth in (("student", student_layers), ("teacher", teacher_layers)):
        value = raw[side]
        valid = _valid_layers(feature, depth)
        if isinstance(value, bool) or not isinstance(value, int) or value not in valid:
            raise ConfigError(f"{where}: {side} layer {value!r} is out of range for feature {feature}; the "
                              f"{side} has {depth} layers, valid: {_describe(valid)}")
        layers[side] = value
    return LayerMatch(layers["student"], layers["teacher"], feature, loss, float(weight))


def parse_matches(raw: Any, student_layers: int, teacher_layers: int,
                  where: str = "distill.matches") -> list[LayerMatch]:
    """A config's list of matches, each checked (``parse_match``); duplicates are refused."""
    if not isinstance(raw, list | tuple) or not raw:
        raise ConfigError(f"{where}: expected a non-empty list of matches, found {raw!r}")
    matches = [parse_match(item, student_layers, teacher_layers, f"{where}[{i}]") for i, item in enumerate(raw)]
    seen: dict[tuple[int, int, str], int] = {}
    for i, match in enumerate(matches):
        key = (match.student, match.teacher, match.feature)
        if key in seen:
            raise ConfigError(f"{where}[{i}]: repeats {where}[{seen[key]}] (student {match.student}, teacher "
                              f"{match.teacher}, {match.feature}); merge them into one weight")
        seen[key] = i
    return matches


def select_feature(hidden_states: Sequence[Any], attention_scores: Sequence[Any] | None, feature: str,
                   layer: int) -> Any:
    """The tensor a match compares, from a model output's ``hidden_states`` (embeddings first) and
    ``attention_scores`` (one per layer): see the numbering in the module docstring."""
    if feature == "attention":
        if attention_scores is None:
            raise ValueError("attention matches need output_attention_scores=True")
        return attention_scores[layer - 1]
    if feature == "embedding":
        return hidden_states[0]
    return hidden_states[layer]
