"""The comparison rule of leanbert.verdict on made-up numbers: win, loss, tie, and one seed."""

from __future__ import annotations

import math

import pytest

from leanbert.verdict import CANNOT_TELL, LOSS, RULE, TIE, WIN, compare


def test_inside_the_seed_noise_is_a_tie():
    # the demo run that printed "pretraining helped": 0.7406 ± 0.0008 vs 0.7392 ± 0.0072 (2 seeds each)
    a, b = [0.7400, 0.74117], [0.7341, 0.7443]
    result = compare(a, b)
    assert result.outcome == TIE and result.runs == (2, 2)
    assert result.difference == pytest.approx(sum(a) / 2 - sum(b) / 2)
    s_a, s_b = abs(a[0] - a[1]) / math.sqrt(2), abs(b[0] - b[1]) / math.sqrt(2)  # ddof=1 with two values
    assert result.standard_error == pytest.approx(math.sqrt(s_a**2 / 2 + s_b**2 / 2))


def test_win_and_loss_need_more_than_two_standard_errors():
    a, b = [0.80, 0.81, 0.82], [0.70, 0.71, 0.72]  # s = 0.01 each: se = 0.01 * sqrt(2 / 3) = 0.0082
    assert compare(a, b).outcome == WIN and compare(b, a).outcome == LOSS
    assert compare(a, b).difference == pytest.approx(0.10)
    # the boundary sits at 2 standard errors: just above is a win, just below a tie
    se = 0.01 * math.sqrt(2 / 3)
    assert compare([v + 2.01 * se for v in b], b).outcome == WIN
    assert compare([v + 1.99 * se for v in b], b).outcome == TIE
    assert compare([v - 1.99 * se for v in b], b).outcome == TIE


def test_one_seed_cannot_tell():
    assert compare([0.9], [0.5]).outcome == CANNOT_TELL  # a big gap, but its noise is unknown
    assert compare([0.9], [0.5, 0.52]).outcome == CANNOT_TELL
    result = compare([0.75, 0.76], [0.70])
    assert result.outcome == CANNOT_TELL and result.standard_error is None
    assert result.difference == pytest.approx(0.055)


def test_zero_spread_and_bad_input():
    assert compare([0.8, 0.8], [0.7, 0.7]).outcome == WIN  # no noise at all: any difference counts
    assert compare([0.8, 0.8], [0.8, 0.8]).outcome == TIE
    with pytest.raises(ValueError, match="no values"):
        compare([], [0.5])
    with pytest.raises(ValueError, match="not finite"):
        compare([0.5, float("nan")], [0.5, 0.6])
    assert "2 standard errors" in RULE and "cannot tell" in RULE
