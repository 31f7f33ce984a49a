"""Post-processing on a hand-made 3-question SQuAD v2 set with known logits: n-best spans over windows,
max_answer_length, the null score against the best span, the answer cut from the original characters."""

from __future__ import annotations

import numpy as np
import pytest

from leanbert.tasks.qa import evaluate
from leanbert.tasks.qa_data import QAExample
from leanbert.tasks.qa_features import NOT_CONTEXT, QAFeatures
from leanbert.tasks.qa_postprocess import predict_answers

CONTEXT = "Paris is the capital of France."
# words and their character spans; each is one token in these hand-made windows
WORDS = [(0, 5), (6, 8), (9, 12), (13, 20), (21, 23), (24, 30), (30, 31)]  # Paris is the capital of France .


def window(example: int, words: list[tuple[int, int]]) -> QAFeatures:
    """[CLS] q1 q2 [SEP] <words> [SEP]: 4 tokens before the context."""
    offsets = np.full((4 + len(words) + 1, 2), NOT_CONTEXT)
    offsets[4:4 + len(words)] = words
    n = len(offsets)
    return QAFeatures(np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64), offsets, 0, 0, example)


def logits(n: int, start: dict[int, float], end: dict[int, float], null: float) -> dict[str, np.ndarray]:
    s, e = np.full(n, -5.0), np.full(n, -5.0)
    s[0] = e[0] = null / 2  # [CLS]
    for i, v in start.items():
        s[i] = v
    for i, v in end.items():
        e[i] = v
    return {"start_logits": s, "end_logits": e}


def hand_made_set():
    examples = [
        QAExample("capital", "What is the capital?", CONTEXT, (("Paris", 0),), False),
        QAExample("king", "Who is the king?", CONTEXT, (), True),
        QAExample("country", "Of which country?", CONTEXT, (("France", 24),), False),
    ]
    features = [window(0, WORDS), window(1, WORDS),
                window(2, WORDS[:4]), window(2, WORDS[2:])]  # two overlapping windows for question 3
    outputs = [
        # q1: "Paris" (token 4) clearly; a question token (1) scores higher but is not context
        logits(12, {1: 9.0, 4: 6.0}, {1: 9.0, 4: 5.0}, null=2.0),
        # q2: the null score (8) beats the best span (3 + 3 = 6)
        logits(12, {5: 3.0}, {6: 3.0}, null=8.0),
        # q3: window 1 has "Paris is" (4 + 4 = 8; its null 9 is not the question's: that is the lower, 1.0);
        # window 2 has "France" (5 + 6 = 11), "France ." (5 + 3), and from "the" (7) "the capital of France"
        # (13, 4 tokens) and "the capital of France ." (10, 5 tokens): too long at max_answer_length 3
        logits(9, {4: 4.0, 5: 1.0}, {5: 4.0}, null=9.0),
        logits(10, {4: 7.0, 7: 5.0}, {7: 6.0, 8: 3.0}, null=1.0),
    ]
    return examples, features, outputs


def test_answers_nulls_and_windows():
    examples, features, outputs = hand_made_set()
    predictions = predict_answers(examples, features, outputs, n_best=20, max_answer_length=3, with_null=True)
    assert [p.answer(0.0) for p in predictions] == ["Paris", "", "France"]
    assert predictions[0].best.start == 0 and predictions[0].best.end == 5
    assert predictions[1].best.text == "is the"
    assert predictions[1].null_margin == pytest.approx(8.0 - 6.0)
    # q3: the best span is window 2's "France" (11); the null score is the lower of the windows' (1.0)
    assert predictions[2].best.text == "France" and predictions[2].best.score == pytest.approx(11.0)
    assert predictions[2].null_margin == pytest.approx(1.0 - 11.0)
    # with longer answers allowed, "the capital of France" (13) wins
    longer = predict_answers(examples, features, outputs, n_best=20, max_answer_length=30, with_null=True)
    assert longer[2].best.text == "the capital of France"
    # probabilities: softmax over the kept candidates, the null one included
    probabilities = [c.probability for c in predictions[1].candidates]
    assert sum(probabilities) == pytest.approx(1.0)
    assert predictions[1].candidates[0].start == -1  # the null candidate is the best of q2's


def test_v2_metrics_of_the_hand_made_set():
    examples, features, outputs = hand_made_set()
    predictions = predict_answers(examples, features, outputs, n_best=20, max_answer_length=3, with_null=True)
    metrics = evaluate(predictions, examples, version_2=True, threshold=0.0)
    assert metrics["exact"] == 100.0 and metrics["f1"] == 100.0
    assert metrics["HasAns_exact"] == 100.0 and metrics["NoAns_exact"] == 100.0
    # a threshold above q2's margin (2.0) answers it: 2 of 3 right
    assert evaluate(predictions, examples, True, threshold=3.0)["exact"] == pytest.approx(200 / 3)
    assert metrics["best_exact"] == 100.0
    # v1 scoring ignores the null score: q2 gets its best span "is the", which is wrong (its gold is "")
    v1 = evaluate(predictions, examples, version_2=False, threshold=0.0)
    assert v1 == pytest.approx({"exact_match": 200 / 3, "f1": 200 / 3})


def test_no_null_answer_without_v2():
    examples, features, outputs = hand_made_set()
    predictions = predict_answers(examples, features, outputs, n_best=20, max_answer_length=3, with_null=False)
    assert predictions[1].answer(None) != ""
    assert all(c.start >= 0 for p in predictions for c in p.candidates)
