"""Start/end logits of every window -> one answer per question, as transformers' run_qa post-processing does.

Per window, the ``n_best`` highest start and end logits are paired; pairs outside the context, ending before
they start or longer than ``max_answer_length`` tokens are dropped, and a pair's score is start + end logit.
The ``n_best`` best pairs over all windows of a question are kept, their texts cut from the original context
by the tokens' character offsets. With null answers (SQuAD v2), the "no answer" score is the lowest
[CLS]-start + [CLS]-end score over the question's windows, and ``null_margin`` = that score minus the best
span's: the answer is "" where it exceeds the threshold. ``probability`` is the softmax over the kept
candidates' scores (the null candidate included with null answers).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from leanbert.tasks.qa_data import QAExample
from leanbert.tasks.qa_features import NOT_CONTEXT, QAFeatures

NO_SPAN_MARGIN = 1e9  # null_margin of a question without any valid span: "no answer" always wins


@dataclass(frozen=True)
class Candidate:
    text: str
    start: int  # characters [start, end) of the context; -1 for the null candidate
    end: int
    score: float
    probability: float = 0.0


@dataclass
class QAPrediction:
    """A question's best span (None: no valid span), its margin for "no answer", and the n-best list."""

    best: Candidate | None
    null_margin: float
    candidates: list[Candidate] = field(default_factory=list)

    def answer(self, threshold: float | None) -> str:
        """The answer text; "" when ``threshold`` is given (null answers allowed) and the margin exceeds it."""
        if self.best is None or (threshold is not None and self.null_margin > threshold):
            return ""
        return self.best.text


def window_candidates(feature: QAFeatures, start_logits: np.ndarray, end_logits: np.ndarray, context: str,
                      n_best: int, max_answer_length: int) -> list[Candidate]:
    """The valid (start, end) pairs among the window's ``n_best`` best starts and ends."""
    starts = np.argsort(start_logits)[-1:-n_best - 1:-1]
    ends = np.argsort(end_logits)[-1:-n_best - 1:-1]
    offsets = feature.offsets
    out = []
    for s in starts:
        if s >= len(offsets) or offsets[s, 0] == NOT_CONTEXT:
            continue
        for e in ends:
            if e >= len(offsets) or offsets[e, 0] == NOT_CONTEXT or e < s or e - s + 1 > max_answer_length:
                continue
            first, last = int(offsets[s, 0]), int(offsets[e, 1])
            out.append(Candidate(context[first:last], first, last, float(start_logits[s] + end_logits[e])))
    return out


def _with_probabilities(candidates: list[Candidate]) -> list[Candidate]:
    scores = np.asarray([c.score for c in candidates], dtype=np.float64)
    exp = np.exp(scores - scores.max())
    probs = exp / exp.sum()
    return [Candidate(c.text, c.start, c.end, c.score, float(p)) for c, p in zip(candidates, probs)]


def predict_answers(examples: Sequence[QAExample], features: Sequence[QAFeatures],
                    outputs: Sequence[Mapping[str, np.ndarray]], n_best: int = 20, max_answer_length: int = 30,
                    with_null: bool = False) -> list[QAPrediction]:
    """One QAPrediction per example. ``outputs[i]``: ``start_logits`` and ``end_logits`` (T_i,) of
    ``features[i]``."""
    windows: dict[int, list[int]] = {}
    for i, feature in enumerate(features):
        windows.setdefault(feature.example, []).append(i)
    predictions = []
    for index, example in enumerate(examples):
        spans: list[Candidate] = []
        null_score = None
        for i in windows.get(index, []):
            start, end = outputs[i]["start_logits"], outputs[i]["end_logits"]
            spans += window_candidates(features[i], start, end, example.context, n_best, max_answer_length)
            here = float(start[0] + end[0])
            null_score = here if null_score is None else min(null_score, here)
        spans = sorted(spans, key=lambda c: c.score, reverse=True)[:n_best]
        best = spans[0] if spans else None
        margin = NO_SPAN_MARGIN if best is None else (null_score if null_score is not None else 0.0) - best.score
        candidates = spans + ([Candidate("", -1, -1, null_score)] if with_null and null_score is not None else [])
        candidates = sorted(candidates, key=lambda c: c.score, reverse=True)[:n_best]
        candidates = _with_probabilities(candidates) if candidates else []
        best = next((c for c in candidates if c.start >= 0), best)  # the best span, with its probability
        predictions.append(QAPrediction(best, margin, candidates))
    return predictions
