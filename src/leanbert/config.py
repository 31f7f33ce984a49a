"""Typed configs: dataclasses validated in ``__post_init__``, loaded from YAML/JSON dicts, and changed with
dotted ``key=value`` overrides (``train.lr=1e-3``). Nothing here evaluates config text as code.

Every config class is a plain dataclass; the helpers below work for any of them, including nested ones
(a field whose type is another dataclass). The encoder's own config, ``ModelConfig``, lives in the model package
(``leanbert.model.config``): this module imports nothing of it, so the model package can import this one.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from leanbert.paths import why_not_regular

T = TypeVar("T")


class ConfigError(ValueError):
    """A config value or key is wrong; the message names the key and what is allowed."""


def check_choice(name: str, value: Any, allowed: tuple) -> None:
    if value not in allowed:
        raise ConfigError(f"{name}={value!r} is not allowed; choose one of {', '.join(map(str, allowed))}")


def check_number(name: str, value: Any, low: float, high: float | None = None, low_open: bool = False) -> None:
    """``value`` must be a finite number (not a bool, nan or inf) >= low (> low if ``low_open``) and <= high
    when given. Every numeric setting goes through here, so no budget, rate or weight can be nan or inf."""
    bad = isinstance(value, bool) or not isinstance(value, int | float)
    finite = not bad and math.isfinite(value)
    if finite:
        bad = value < low or (low_open and value == low) or (high is not None and value > high)
    if bad or not finite:
        bounds = f"{'>' if low_open else '>='} {low}" + (f" and <= {high}" if high is not None else "")
        what = "a number" if bad else "a finite number"
        raise ConfigError(f"{name}={value!r} must be {what} {bounds}")


INT64_MAX = 2**63 - 1  # torch, numpy and the samplers take no larger integer (a seed of 2**70 overflows)
SEED_MAX = INT64_MAX  # every seed consumer takes it: torch (uint64), numpy SeedSequence, seed_everything


def check_integer(name: str, value: Any, low: int, high: int = INT64_MAX) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"{name}={value!r} must be an integer >= {low}")
    if value > high:
        raise ConfigError(f"{name}={value!r} must be an integer <= {high}")


def check_seed(name: str, value: Any) -> None:
    """The one rule for every seed (train.seed, train.seeds, compare's seeds, augment --seed): an integer in
    [0, SEED_MAX]."""
    check_integer(name, value, 0, SEED_MAX)


def check_probability(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
        raise ConfigError(f"{name}={value!r} must be a probability in [0, 1]")


# ---------------------------------------------------------------------------------------------------------
# Generic dict <-> dataclass machinery


def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _is_dataclass_type(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _coerce(key: str, value: Any, tp: Any) -> Any:
    """Check ``value`` against the annotation ``tp`` (ints widen to floats); raise ConfigError if wrong."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(tp)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(key, value, option)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(errors[0] if errors else f"{key}={value!r} has the wrong type")
    if origin in (list, tuple):
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{key}={value!r} must be a list")
        (item_type, *_) = typing.get_args(tp) or (Any,)
        return [_coerce(f"{key}[{i}]", v, item_type) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}={value!r} must be a mapping")
        return dict(value)
    if tp is Any:
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}={value!r} must be true or false")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}={value!r} must be an integer")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{key}={value!r} must be a number")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}={value!r} must be a string")
        return value
    if _is_dataclass_type(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{key} must be a mapping of {tp.__name__} fields")
        return from_dict(tp, value, prefix=key + ".")
    return value


def from_dict(cls: type[T], data: dict[str, Any], prefix: str = "") -> T:
    """Build ``cls`` from a plain dict; unknown keys and wrong types raise ConfigError naming the key."""
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix or cls.__name__} must be a mapping, got {type(data).__name__}")
    upgrade = getattr(cls, "upgrade_legacy", None)
    if upgrade is not None:  # a class that renamed keys still reads what older versions wrote
        data = upgrade(data)
    hints = _field_types(cls)
    names = [f.name for f in dataclasses.fields(cls) if f.init]
    unknown = [k for k in data if k not in names]
    if unknown:
        raise ConfigError(f"unknown key {prefix}{unknown[0]}; allowed keys: {', '.join(names)}")
    kwargs = {k: _coerce(prefix + k, v, hints[k]) for k, v in data.items()}
    return cls(**kwargs)


def to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


def parse_value(text: str) -> Any:
    """The value half of ``key=value``: YAML scalar/list syntax (``1e-3``, ``true``, ``[a, b]``), no code."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    # YAML 1.1 reads "1e-3" as a string; accept it as a float since users type it everywhere.
    if isinstance(value, str):
        try:
            return float(value) if any(c in value for c in ".eE") and value.strip() else value
        except ValueError:
            return value
    return value


def apply_overrides(data: dict[str, Any], overrides: list[str], allowed_roots: tuple[str, ...] | None = None,
                    ) -> dict[str, Any]:
    """Apply ``a.b.c=value`` strings to a nested dict (in place) and return it.

    Validation happens when the dict is turned into dataclasses, so a wrong key is reported with the list of
    allowed keys there.
    """
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {item!r} must look like key=value (e.g. train.lr=1e-3)")
        parts = key.strip().split(".")
        if allowed_roots is not None and parts[0] not in allowed_roots:
            raise ConfigError(f"override {item!r}: unknown group {parts[0]!r}; "
                              f"allowed: {', '.join(allowed_roots)}")
        node = data
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"override {item!r}: {part!r} is not a group of keys")
            node = child
        node[parts[-1]] = parse_value(raw)
    return data


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key repeated in one mapping (plain YAML keeps the last silently)."""

    def construct_mapping(self, node, deep=False):
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *base` keys may be overridden on purpose
                continue
            key = self.construct_object(key_node, deep=deep)
            line = key_node.start_mark.line + 1
            try:
                if key in seen:
                    raise ConfigError(f"duplicate key {key!r} at line {line} (first at line {seen[key]})")
            except TypeError:  # an unhashable key: SafeLoader reports it below
                break
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def _refuse_duplicate_json_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    for key in keys:
        if keys.count(key) > 1:
            raise ConfigError(f"duplicate key {key!r}")
    return dict(pairs)


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML or JSON config file into a dict, with errors naming the file. A key given twice in one
    mapping is refused (naming the key and line) instead of the last one silently winning."""
    path = Path(path)
    reason = why_not_regular(path)
    if reason is not None:
        raise ConfigError(f"cannot read config file {path}: {reason}")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"cannot read config file {path}: {os.strerror(err.errno) if err.errno else err}"
                          ) from None
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    try:
        if path.suffix == ".json":
            data = json.loads(text, object_pairs_hook=_refuse_duplicate_json_keys)
        else:
            data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None
    except (yaml.YAMLError, json.JSONDecodeError) as err:
        raise ConfigError(f"{path}: not valid {'JSON' if path.suffix == '.json' else 'YAML'}: {err}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys, got {type(data).__name__}")
    return data

