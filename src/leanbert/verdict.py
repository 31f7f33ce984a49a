"""Is A better than B over a few seeds? One stated rule, used by every report that compares two models.

The rule: with the seeds' sample standard deviations s_a, s_b (ddof = 1) over n_a, n_b runs, the difference of
means d = mean_a - mean_b has the standard error se = sqrt(s_a^2 / n_a + s_b^2 / n_b). A is a ``win`` when
d > 2 se, a ``loss`` when d < -2 se, and a ``tie`` otherwise (the difference is inside the seeds' noise).
With a single run on either side its noise is unknown, so the outcome is ``cannot tell`` whatever d is.

Two standard errors is roughly a 95% interval for d; with two or three seeds it is a rough screen, not a test.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

WIN, LOSS, TIE, CANNOT_TELL = "win", "loss", "tie", "cannot tell"
STANDARD_ERRORS = 2.0  # |d| must exceed this many standard errors to count

RULE = (f"a difference of means counts only when it exceeds {STANDARD_ERRORS:g} standard errors "
        "sqrt(s_a²/n_a + s_b²/n_b) (s: the seeds' sample standard deviations, n: the seeds); a smaller "
        "difference is a tie, and with a single seed on either side the noise is unknown, so the result is "
        "\"cannot tell\"")


@dataclass(frozen=True)
class Comparison:
    """The outcome for A against B: ``win``, ``loss``, ``tie`` or ``cannot tell``."""

    outcome: str
    difference: float  # mean_a - mean_b
    standard_error: float | None  # of the difference; None with a single run on either side
    runs: tuple[int, int]  # (n_a, n_b)


def _mean_and_variance(values: Sequence[float], name: str) -> tuple[float, float | None]:
    if not values:
        raise ValueError(f"{name} has no values to compare")
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"{name} holds a value that is not finite: {list(values)}")
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, None
    return mean, sum((v - mean) ** 2 for v in values) / (len(values) - 1)


def compare(a: Sequence[float], b: Sequence[float]) -> Comparison:
    """Compare the per-seed results ``a`` with ``b`` (higher is better) by the module's rule."""
    mean_a, var_a = _mean_and_variance(a, "a")
    mean_b, var_b = _mean_and_variance(b, "b")
    difference = mean_a - mean_b
    runs = (len(a), len(b))
    if var_a is None or var_b is None:
        return Comparison(CANNOT_TELL, difference, None, runs)
    se = math.sqrt(var_a / len(a) + var_b / len(b))
    if difference > STANDARD_ERRORS * se:
        outcome = WIN
    elif difference < -STANDARD_ERRORS * se:
        outcome = LOSS
    else:
        outcome = TIE
    return Comparison(outcome, difference, se, runs)
