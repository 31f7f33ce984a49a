"""Property-based tests (hypothesis) for the config file parser and the dotted ``key=value`` overrides."""

from __future__ import annotations

import datetime
import json

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from leanbert.config import ConfigError, apply_overrides, load_config_file, parse_value

KEY = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True).filter(
    lambda k: k not in ("y", "n", "yes", "no", "on", "off", "true", "false", "null"))
SCALAR = st.one_of(st.integers(-2**70, 2**70), st.booleans(),
                   st.floats(allow_nan=False, allow_infinity=False, width=64), KEY)
TREE = st.recursive(st.dictionaries(KEY, SCALAR, max_size=4),
                    lambda inner: st.dictionaries(KEY, st.one_of(SCALAR, inner), max_size=4), max_leaves=12)
FAST = settings(max_examples=60, deadline=None)


@FAST
@given(st.integers(-2**80, 2**80))
def test_integers_parse_exactly(n):
    assert parse_value(str(n)) == n and type(parse_value(str(n))) is int


@FAST
@given(st.floats(allow_nan=False, allow_infinity=False, width=64))
def test_floats_parse_exactly(x):
    assert parse_value(repr(x)) == x


@FAST
@given(st.lists(st.integers(0, 2**63), max_size=5))
def test_lists_parse_as_lists(items):
    assert parse_value(json.dumps(items)) == items


@FAST
@given(st.text(max_size=40))
def test_any_text_parses_to_plain_data(text):
    """Never raises, never builds objects: YAML plain data only (tags are refused by the safe loader)."""
    value = parse_value(text)
    plain = str | int | float | bool | list | dict | bytes | datetime.date | type(None)  # YAML timestamps: dates
    assert isinstance(value, plain)


@FAST
@given(st.lists(KEY, min_size=1, max_size=4), SCALAR)
def test_override_sets_exactly_that_key(path, value):
    data = {"other": {"kept": 1}}
    if path[0] == "other":
        path = ["group", *path]
    text = json.dumps(value) if not isinstance(value, str) else value
    apply_overrides(data, [".".join(path) + "=" + text])
    node = data
    for part in path[:-1]:
        node = node[part]
    assert node[path[-1]] == value and data["other"] == {"kept": 1}


@FAST
@given(KEY, KEY, st.integers(), st.integers())
def test_the_last_override_wins(group, key, first, second):
    data = apply_overrides({}, [f"{group}.{key}={first}", f"{group}.{key}={second}"])
    assert data == {group: {key: second}}


@FAST
@given(st.text(max_size=30))
def test_overrides_fail_only_with_config_error(item):
    try:
        apply_overrides({"train": {"lr": 1.0}}, [item])
    except ConfigError:
        pass


@FAST
@given(TREE)
def test_yaml_round_trip(tmp_path_factory, tree):
    path = tmp_path_factory.mktemp("cfg") / "c.yaml"
    path.write_text(yaml.safe_dump(tree), encoding="utf-8")
    assert load_config_file(path) == tree


@FAST
@given(st.dictionaries(KEY, st.integers(), min_size=1, max_size=5), st.data())
def test_a_repeated_key_is_refused_with_its_line(tmp_path_factory, mapping, data):
    key = data.draw(st.sampled_from(sorted(mapping)))
    lines = [f"{k}: {v}" for k, v in mapping.items()] + [f"{key}: 0"]
    path = tmp_path_factory.mktemp("cfg") / "c.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"duplicate key '{key}' at line {len(lines)}"):
        load_config_file(path)
