"""The numpy metrics against scikit-learn and scipy, on random data and on edge cases."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy import stats
from sklearn import metrics as skm

import leanbert.tasks.metrics as M
from leanbert.tasks.glue import GLUE_TASKS


@pytest.mark.parametrize("seed", range(5))
def test_classification_metrics_match_sklearn(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 400))
    y = rng.integers(0, 2, n)
    p = np.where(rng.random(n) < 0.7, y, rng.integers(0, 2, n))
    assert M.accuracy(p, y) == pytest.approx(skm.accuracy_score(y, p), abs=1e-12)
    assert M.f1(p, y) == pytest.approx(skm.f1_score(y, p), abs=1e-12)
    assert M.mcc(p, y) == pytest.approx(skm.matthews_corrcoef(y, p), abs=1e-12)
    k = int(rng.integers(3, 6))  # multi-class MCC (MNLI-like)
    y3, p3 = rng.integers(0, k, n), rng.integers(0, k, n)
    p3 = np.where(rng.random(n) < 0.5, y3, p3)
    assert M.mcc(p3, y3) == pytest.approx(skm.matthews_corrcoef(y3, p3), abs=1e-12)
    assert M.accuracy(p3, y3) == pytest.approx(skm.accuracy_score(y3, p3), abs=1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_correlations_match_scipy(seed):
    rng = np.random.default_rng(100 + seed)
    n = int(rng.integers(3, 500))
    y = rng.uniform(0, 5, n)
    p = y + rng.normal(0, rng.uniform(0.1, 3), n)
    assert M.pearson(p, y) == pytest.approx(stats.pearsonr(p, y)[0], abs=1e-10)
    assert M.spearman(p, y) == pytest.approx(stats.spearmanr(p, y)[0], abs=1e-10)
    # Heavy ties (STS-B scores are mostly multiples of 0.2): tie-averaged ranks as scipy.
    yt, pt = np.round(y) / 2, np.round(p)
    assert M.spearman(pt, yt) == pytest.approx(stats.spearmanr(pt, yt)[0], abs=1e-10)
    np.testing.assert_allclose(M.rank_average(pt), stats.rankdata(pt))


def test_degenerate_classification_like_sklearn():
    y = np.array([0, 1, 1, 0, 1])
    const = np.ones(5, dtype=int)
    assert M.mcc(const, y) == skm.matthews_corrcoef(y, const) == 0.0
    assert M.mcc(y, const) == skm.matthews_corrcoef(const, y) == 0.0
    zeros = np.zeros(5, dtype=int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert M.f1(zeros, zeros) == skm.f1_score(zeros, zeros) == 0.0
    assert M.mcc(y, y) == 1.0 and M.mcc(1 - y, y) == -1.0
    assert M.f1(y, y) == 1.0 and M.accuracy(1 - y, y) == 0.0


def test_constant_correlations_are_zero():
    y = np.array([1.0, 2.0, 3.5, 0.2])
    assert M.pearson(np.full(4, 2.5), y) == 0.0
    assert M.spearman(y, np.full(4, 2.5)) == 0.0
    # A constant whose mean is not exactly representable must not come out as +-1.
    assert M.pearson([0.1, 0.1, 0.1], [1.0, 2.0, 3.0]) == 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert math.isnan(stats.pearsonr(np.full(4, 2.5), y)[0])  # what scipy does instead
    assert M.pearson(y, 3 * y + 1) == pytest.approx(1.0) and M.spearman(y, -y) == pytest.approx(-1.0)


def test_bad_inputs():
    with pytest.raises(ValueError, match="equal length"):
        M.accuracy([1, 0], [1])
    with pytest.raises(ValueError, match="zero examples"):
        M.f1([], [])
    with pytest.raises(ValueError, match="finite"):
        M.pearson([1.0, float("nan")], [1.0, 2.0])
    with pytest.raises(ValueError, match="unknown metric 'auc'"):
        M.compute_metrics(["auc"], [1], [1])


def test_split_metrics_and_task_specs():
    y = np.array([0, 1, 2, 0])
    mnli = GLUE_TASKS["mnli"].compute_metrics({"matched": (y, y), "mismatched": (np.zeros(4, int), y)})
    assert mnli == {"accuracy_matched": 1.0, "accuracy_mismatched": 0.5}
    assert list(mnli) == GLUE_TASKS["mnli"].metric_names
    s = np.array([0.0, 1.0, 2.5, 4.0])
    stsb = GLUE_TASKS["stsb"].compute_metrics({"dev": (s * 2, s)})
    assert stsb == {"pearson": pytest.approx(1.0), "spearman": pytest.approx(1.0)}
    mrpc = GLUE_TASKS["mrpc"].compute_metrics({"dev": ([1, 1, 0, 0], [1, 0, 0, 1])})
    assert mrpc == {"f1": 0.5, "accuracy": 0.5}
    assert GLUE_TASKS["rte"].label_name(1) == "not_entailment"
    assert GLUE_TASKS["stsb"].label_name(3.25) == "3.25"


def test_aggregate_seeds():
    runs = [{"accuracy": 0.8, "f1": 0.7}, {"accuracy": 0.9, "f1": 0.75}, {"accuracy": 0.85, "f1": 0.8}]
    agg = M.aggregate_seeds(runs)
    assert agg["accuracy_mean"] == pytest.approx(0.85)
    assert agg["accuracy_std"] == pytest.approx(np.std([0.8, 0.9, 0.85], ddof=1))
    assert agg["f1_std"] == pytest.approx(0.05)
    assert set(agg) == {"accuracy_mean", "accuracy_std", "f1_mean", "f1_std"}
    assert M.aggregate_seeds([{"mcc": 0.3}]) == {"mcc_mean": 0.3, "mcc_std": 0.0}
    with pytest.raises(ValueError, match="run 1"):
        M.aggregate_seeds([{"mcc": 0.3}, {"accuracy": 0.5}])


def test_predictions_from_logits():
    logits = np.array([[0.1, 2.0], [3.0, -1.0], [0.0, 0.5]])
    np.testing.assert_array_equal(M.predictions_from_logits(logits, regression=False), [1, 0, 1])
    np.testing.assert_allclose(M.predictions_from_logits(np.array([[1.5], [2.0]]), regression=True), [1.5, 2.0])
    with pytest.raises(ValueError):
        M.predictions_from_logits(np.zeros(3), regression=False)
