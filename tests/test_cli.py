"""The CLI accepts key=value settings anywhere on the line, for every verb, and rejects unknown flags."""

import json

import pytest

from leanbert.cli import main


def test_settings_after_options_are_overrides(capsys):
    assert main(["params", "albert-base", "--json", "sharing=attention"]) == 0
    assert 63e6 < json.loads(capsys.readouterr().out)["total"] < 65e6


def test_unknown_flag_is_an_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["params", "albert-base", "--bogus"])
    assert exit_info.value.code == 2 and "unrecognized arguments: --bogus" in capsys.readouterr().err


def test_settings_for_a_verb_without_overrides_are_refused(capsys):
    with pytest.raises(SystemExit):
        main(["export", "a", "b", "train.lr=1"])
    assert "unrecognized arguments: train.lr=1" in capsys.readouterr().err
