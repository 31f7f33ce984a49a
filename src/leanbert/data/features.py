"""Batch features: extra per-batch data an objective or add-on asks the pretraining stream for.

A feature is computed from a batch's uncorrupted token ids (before masking) by a producer its owner registers
here; the stream puts the result into ``Batch.extras[name]``. ``data.features: [name, ...]`` asks for them
(an entry's ``DataNeeds.features`` adds its own). A producer is a pure function of the ids (and of files
it read once when built), so determinism and exact resume of the stream are unchanged.

Each feature may also be switched on by its own name as a boolean key, ``data.<name>: true`` (what configs
and run directories written before ``data.features`` existed say); ``upgrade_feature_flags`` turns those
keys into list entries.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from leanbert.config import ConfigError

# ids: (B, T) int64 numpy array, uncorrupted (read it, never write it) -> the value stored in
# Batch.extras[name]: tensors, or an object with .to(device, non_blocking=...) such as a dataclass of tensors
FeatureProducer = Callable[[Any], Any]


@dataclass(frozen=True)
class FeatureSpec:
    """name:  the entry of ``data.features`` and the key of ``Batch.extras``.
    build: build(data_config, tokenizer) -> the producer for one stream (train or valid); it may read files
           of ``data_config.path`` and refuse missing or stale ones with a UserError."""

    name: str
    build: Callable[[Any, Any], FeatureProducer]


FEATURES: dict[str, FeatureSpec] = {}


def register_feature(spec: FeatureSpec) -> FeatureSpec:
    """Add ``spec`` under ``spec.name`` (re-registering the same entry is a no-op)."""
    known = FEATURES.get(spec.name)
    if known is not None and known != spec:
        raise ValueError(f"batch feature {spec.name!r} is already registered")
    FEATURES[spec.name] = spec
    return spec


def check_feature_names(names: Any, key: str = "data.features") -> None:
    """Refuse anything but a list of distinct registered feature names."""
    if not isinstance(names, list | tuple) or not all(isinstance(n, str) for n in names):
        raise ConfigError(f"{key}={names!r} must be a list of feature names")
    for name in names:
        if name not in FEATURES:
            known = ", ".join(sorted(FEATURES)) or "none registered"
            raise ConfigError(f"{key}: {name!r} is not a batch feature; choose from {known}")
    if len(set(names)) != len(names):
        raise ConfigError(f"{key}={list(names)!r} names a feature twice")


def upgrade_feature_flags(data: dict[str, Any], prefix: str = "data.") -> dict[str, Any]:
    """A copy of a raw ``data`` mapping where ``<feature>: true/false`` keys became ``features`` entries
    (``features`` is then always present, so an old run directory's config compares equal to today's)."""
    flags = [key for key in data if key in FEATURES]
    if not flags:
        return data
    data = dict(data)
    features = list(data.get("features") or [])
    for key in flags:
        value = data.pop(key)
        if not isinstance(value, bool):
            raise ConfigError(f"{prefix}{key}={value!r} must be true or false")
        if value and key not in features:
            features.append(key)
    data["features"] = features
    return data


def build_producers(config: Any, tokenizer: Any) -> dict[str, FeatureProducer]:
    """The producers of ``config.features``, in that order."""
    check_feature_names(list(config.features))
    return {name: FEATURES[name].build(config, tokenizer) for name in config.features}
