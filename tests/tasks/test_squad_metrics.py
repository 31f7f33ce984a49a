"""SQuAD's official EM / F1 (v1.1 and v2.0 with the threshold search) on hand-computed cases."""

import pytest

from leanbert.tasks.squad_metrics import (
    best_over_gold,
    exact_match,
    f1_score,
    normalize_answer,
    squad_v1,
    squad_v2,
)


def test_normalisation_lowercases_strips_punctuation_articles_and_spaces():
    assert normalize_answer("The  Quick, brown fox!") == "quick brown fox"
    assert normalize_answer("An apple a day") == "apple day"
    assert normalize_answer("theatre") == "theatre"  # an article only as a whole word
    assert normalize_answer("  U.S.A. ") == "usa"


def test_exact_and_f1_by_hand():
    assert exact_match("the Eiffel Tower", "Eiffel tower.") == 1.0
    assert exact_match("Eiffel", "Eiffel Tower") == 0.0
    # pred {cat, sat} vs gold {cat, sat, down}: precision 1, recall 2/3 -> F1 0.8
    assert f1_score("the cat sat", "a cat sat down") == pytest.approx(0.8)
    # tokens count as a bag: "dog dog" vs "dog": precision 1/2, recall 1 -> 2/3
    assert f1_score("dog dog", "dog") == pytest.approx(2 / 3)
    assert f1_score("nothing shared", "other words") == 0.0


def test_empty_texts_and_unanswerable_gold():
    assert f1_score("", "") == 1.0 and exact_match("", "") == 1.0
    assert f1_score("something", "") == 0.0
    assert best_over_gold("", []) == (1.0, 1.0)  # unanswerable: the gold is ""
    assert best_over_gold("x", []) == (0.0, 0.0)
    assert best_over_gold("", ["a", "the"]) == (1.0, 1.0)  # answers that normalise to "" count as none


def test_max_over_gold_answers():
    em, f1 = best_over_gold("blue sky", ["sky", "the blue sky today"])
    assert em == 0.0
    assert f1 == pytest.approx(max(2 * 0.5 * 1 / 1.5, 2 * 1 * (2 / 3) / (1 + 2 / 3)))  # 2/3 vs 0.8
    assert best_over_gold("Sky", ["sky", "blue"]) == (1.0, 1.0)


def test_squad_v1_averages_and_scores_missing_predictions_zero():
    gold = {"a": ["Paris"], "b": ["blue sky"], "c": ["42"]}
    out = squad_v1({"a": "paris", "b": "sky"}, gold)
    assert out["exact_match"] == pytest.approx(100 / 3)
    assert out["f1"] == pytest.approx(100 * (1 + 2 / 3) / 3)


def test_squad_v2_at_zero_and_best_threshold():
    gold = {"q1": ["Paris"], "q2": [], "q3": ["blue sky"]}
    texts = {"q1": "Paris", "q2": "London", "q3": "sky"}
    margins = {"q1": -2.0, "q2": 1.0, "q3": 0.5}
    out = squad_v2(texts, margins, gold, threshold=0.0)
    # at 0: q1 answered right, q2 "" (right: no answer), q3 "" (wrong: it has one)
    assert out["exact"] == pytest.approx(200 / 3) and out["f1"] == pytest.approx(200 / 3)
    assert out["HasAns_exact"] == 50.0 and out["NoAns_exact"] == 100.0
    assert out["HasAns_total"] == 2 and out["NoAns_total"] == 1
    # threshold search from "no answer everywhere" (1 right): answer q1 (+1 -> 2) at -2, q3 (+2/3 F1, +0 EM)
    # at 0.5, q2 (-1) at 1.0
    assert out["best_exact"] == pytest.approx(200 / 3) and out["best_exact_thresh"] == -2.0
    assert out["best_f1"] == pytest.approx(100 * (2 + 2 / 3) / 3) and out["best_f1_thresh"] == 0.5
    # a threshold above every margin answers everything
    high = squad_v2(texts, margins, gold, threshold=5.0)
    assert high["exact"] == pytest.approx(100 / 3) and high["NoAns_exact"] == 0.0
