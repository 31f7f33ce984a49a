"""SQuAD's official metrics (evaluate-v1.1.py and evaluate-v2.0.py, re-implemented from their definitions).

* Answers are normalised: lower-case, punctuation removed, the articles a / an / the removed, whitespace
  collapsed.
* Exact match: normalised prediction == normalised gold; F1: bag-of-tokens overlap of the normalised texts (an
  empty text on either side scores 1 only if both are empty). Each is the maximum over the gold answers; an
  unanswerable question's gold is the empty string.
* v1.1 reports ``exact_match`` and ``f1``; v2.0 ``exact`` and ``f1`` at the given null threshold, the
  ``HasAns_*`` / ``NoAns_*`` split, and ``best_exact`` / ``best_f1`` at the threshold on the "no answer" score
  that is best on this set (``*_thresh``), found as evaluate-v2.0.py's ``find_best_thresh`` does.

All scores are percentages (0-100), as the official scripts print them.
"""

from __future__ import annotations

import collections
import re
import string
from collections.abc import Mapping, Sequence

_PUNCTUATION = set(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)


def normalize_answer(text: str) -> str:
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def exact_match(prediction: str, gold: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(gold))


def f1_score(prediction: str, gold: str) -> float:
    predicted, expected = normalize_answer(prediction).split(), normalize_answer(gold).split()
    if not predicted or not expected:
        return float(predicted == expected)
    common = collections.Counter(predicted) & collections.Counter(expected)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(predicted), same / len(expected)
    return 2 * precision * recall / (precision + recall)


def gold_texts(answers: Sequence[str]) -> list[str]:
    """The gold answers that survive normalisation; [""] for an unanswerable question."""
    kept = [a for a in answers if normalize_answer(a)]
    return kept or [""]


def best_over_gold(prediction: str, answers: Sequence[str]) -> tuple[float, float]:
    """(exact match, F1) of ``prediction``, each the maximum over the gold answers."""
    golds = gold_texts(answers)
    return max(exact_match(prediction, g) for g in golds), max(f1_score(prediction, g) for g in golds)


def squad_v1(predictions: Mapping[str, str], gold: Mapping[str, Sequence[str]]) -> dict[str, float]:
    """evaluate-v1.1.py: ``exact_match`` and ``f1`` over every gold question (an unpredicted one scores 0)."""
    if not gold:
        raise ValueError("cannot score zero questions")
    em = f1 = 0.0
    for qid, answers in gold.items():
        if qid in predictions:
            e, f = best_over_gold(predictions[qid], answers)
            em, f1 = em + e, f1 + f
    return {"exact_match": 100.0 * em / len(gold), "f1": 100.0 * f1 / len(gold)}


def _best_threshold(texts: Mapping[str, str], raw: Mapping[str, float], null_scores: Mapping[str, float],
                    has_answer: Mapping[str, bool]) -> tuple[float, float]:
    """evaluate-v2.0.py's find_best_thresh: start from "no answer everywhere", then answer the questions in
    rising order of their null score; the best total and the null score where it was reached."""
    score = best = float(sum(1 for q in has_answer if not has_answer[q]))
    threshold = 0.0
    for qid in sorted(null_scores, key=lambda q: null_scores[q]):
        if has_answer[qid]:
            score += raw[qid]
        elif texts[qid]:
            score -= 1
        if score > best:
            best, threshold = score, null_scores[qid]
    return 100.0 * best / len(raw), threshold


def squad_v2(texts: Mapping[str, str], null_scores: Mapping[str, float], gold: Mapping[str, Sequence[str]],
             threshold: float = 0.0) -> dict[str, float]:
    """evaluate-v2.0.py. ``texts``: each question's best non-empty answer ("" if it has none);
    ``null_scores``: how much more the model prefers "no answer" (the null score minus the best span's). The
    prediction is "" where the null score exceeds ``threshold``."""
    if not gold:
        raise ValueError("cannot score zero questions")
    has_answer = {q: gold_texts(a) != [""] for q, a in gold.items()}
    raw_em = {q: best_over_gold(texts[q], gold[q])[0] for q in gold}
    raw_f1 = {q: best_over_gold(texts[q], gold[q])[1] for q in gold}
    out: dict[str, float] = {}
    em_at, f1_at = {}, {}
    for qid in gold:
        if null_scores[qid] > threshold:  # predicted "no answer": right exactly when there is none
            em_at[qid] = f1_at[qid] = float(not has_answer[qid])
        else:
            em_at[qid], f1_at[qid] = raw_em[qid], raw_f1[qid]
    out["exact"] = 100.0 * sum(em_at.values()) / len(gold)
    out["f1"] = 100.0 * sum(f1_at.values()) / len(gold)
    for name, wanted in (("HasAns", True), ("NoAns", False)):
        ids = [q for q in gold if has_answer[q] == wanted]
        out[f"{name}_total"] = float(len(ids))
        if ids:
            out[f"{name}_exact"] = 100.0 * sum(em_at[q] for q in ids) / len(ids)
            out[f"{name}_f1"] = 100.0 * sum(f1_at[q] for q in ids) / len(ids)
    gold_nulls = {q: null_scores[q] for q in gold}
    out["best_exact"], out["best_exact_thresh"] = _best_threshold(texts, raw_em, gold_nulls, has_answer)
    out["best_f1"], out["best_f1_thresh"] = _best_threshold(texts, raw_f1, gold_nulls, has_answer)
    return out
