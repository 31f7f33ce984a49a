"""Statistical tests of MLM masking: rates, replacement shares, whole words, n-gram span lengths."""

from __future__ import annotations

import numpy as np
import pytest

from leanbert.batch import IGNORE_INDEX
from leanbert.data.config import DataConfig
from leanbert.data.masking import Masker

VOCAB = 1000
MASK = 4
N_SPECIAL = 5


def make_masker(masking="bert", whole_word=False, ngram=1, max_predictions=0, mask_prob=0.15) -> Masker:
    word_start = np.ones(VOCAB, dtype=bool)
    word_start[500:] = False  # ids >= 500 are continuation pieces ("##x")
    return Masker(mask_prob=mask_prob, masking=masking, whole_word=whole_word, ngram=ngram,
                  max_predictions=max_predictions, mask_id=MASK, word_start=word_start,
                  replace_pool=np.arange(N_SPECIAL, VOCAB))


def sequences(rng, count=400, length=128):
    """[CLS] tokens [SEP] tokens [SEP] [PAD]...; words of 1-3 pieces (a start id < 500, then ids >= 500)."""
    out = []
    for _ in range(count):
        ids = []
        while len(ids) < length - 20:
            ids.append(int(rng.integers(N_SPECIAL, 500)))
            ids += rng.integers(500, VOCAB, size=int(rng.integers(0, 3))).tolist()
        ids = [2] + ids[:50] + [3] + ids[50:] + [3]
        ids = np.array(ids + [0] * (length - len(ids)), dtype=np.int64)
        out.append(ids)
    return out


def run(masker, seed=0, count=400, length=128):
    rng = np.random.default_rng(seed)
    results = []
    for ids in sequences(rng, count, length):
        maskable = ids >= N_SPECIAL
        inputs, labels, spans = masker(ids, maskable, rng)
        results.append((ids, maskable, inputs, labels, spans))
    return results


def shares(results):
    chosen = masked = random = kept = total = 0
    for ids, maskable, inputs, labels, _ in results:
        target = labels != IGNORE_INDEX
        assert not target[~maskable].any()  # specials and padding never chosen
        assert np.array_equal(inputs[~target], ids[~target])  # nothing else touched
        assert np.array_equal(labels[target], ids[target])
        total += maskable.sum()
        chosen += target.sum()
        masked += (inputs[target] == MASK).sum()
        kept += (inputs[target] == ids[target]).sum()
        random += ((inputs[target] != MASK) & (inputs[target] != ids[target])).sum()
    return chosen / total, masked / chosen, random / chosen, kept / chosen


def run_batched(masker, seed=0):
    """The vectorized batch path, in the same result format as ``run``."""
    rng = np.random.default_rng(seed)
    ids = np.stack(sequences(rng))
    maskable = ids >= N_SPECIAL
    inputs, labels = masker.mask_batch(ids, maskable, rng)
    return [(i, m, x, y, []) for i, m, x, y in zip(ids, maskable, inputs, labels)]


@pytest.mark.parametrize("masking", ["bert", "electra"])
def test_batched_token_masking_rates(masking):
    masker = make_masker(masking)
    results = run_batched(masker)
    rate, masked, random, kept = shares(results)
    assert abs(rate - 0.15) < 0.005
    if masking == "bert":
        assert abs(masked - 0.8) < 0.015 and abs(random - 0.1) < 0.012 and abs(kept - 0.1) < 0.012
    else:
        assert abs(masked - 0.85) < 0.015 and random == 0
    for _, maskable, _, labels, _ in results:  # the same per-row count as the per-instance path
        assert (labels != IGNORE_INDEX).sum() == masker.budget(int(maskable.sum()))
    capped = run_batched(make_masker(masking, max_predictions=5))
    assert all((labels != IGNORE_INDEX).sum() == 5 for *_, labels, _ in capped)


@pytest.mark.parametrize("whole_word", [False, True])
def test_bert_rates(whole_word):
    rate, masked, random, kept = shares(run(make_masker("bert", whole_word=whole_word)))
    # ~17,000 chosen tokens: 4 sigma of a binomial share is < 0.015
    assert abs(rate - 0.15) < 0.005
    assert abs(masked - 0.8) < 0.015
    assert abs(random - 0.1) < 0.012  # a random draw equal to the original (p=0.001) counts as kept
    assert abs(kept - 0.1) < 0.012


def test_electra_rates_have_no_random_replacement():
    rate, masked, random, kept = shares(run(make_masker("electra")))
    assert abs(rate - 0.15) < 0.005
    assert abs(masked - 0.85) < 0.015 and abs(kept - 0.15) < 0.015
    assert random == 0


def word_ids(ids, maskable):
    """Word index of each maskable position (a word: a start piece and the continuation pieces after it)."""
    starts = (ids < 500) | ~np.concatenate(([False], maskable[:-1]))
    return np.cumsum(starts & maskable)


@pytest.mark.parametrize("ngram", [1, 3])
def test_whole_words_are_masked_together(ngram):
    for ids, maskable, _, labels, _ in run(make_masker(whole_word=True, ngram=ngram)):
        words = word_ids(ids, maskable)
        target = labels != IGNORE_INDEX
        for w in np.unique(words[target]):
            members = maskable & (words == w)
            assert target[members].all()


def span_histogram(results) -> np.ndarray:
    counts = np.zeros(4)
    for *_, spans in results:
        for n in spans:
            counts[n] += 1
    return counts


def test_ngram_span_lengths_follow_one_over_n():
    # Long sequences and a small budget: spans are rarely shortened at the budget's edge or rejected for
    # overlapping an earlier span, so the drawn p(n) = (1/n) / (1 + 1/2 + 1/3) shows directly.
    counts = span_histogram(run(make_masker(whole_word=True, ngram=3, mask_prob=0.03), count=60, length=4000))
    total = counts.sum()
    observed = counts[1:] / total
    expected = np.array([1, 1 / 2, 1 / 3]) / (1 + 1 / 2 + 1 / 3)  # 6/11, 3/11, 2/11
    assert total > 2000
    assert np.abs(observed - expected).max() < 0.03, observed
    # rejects uniform lengths (1/3 each) and a fixed length
    assert np.abs(observed - 1 / 3).max() > 0.15


def test_ngram_spans_shorten_under_a_tight_budget():
    # BERT-sized sequences: as in ALBERT, spans hitting the budget are shortened and overlapping ones skipped,
    # which moves mass towards n=1; the order p(1) > p(2) > p(3) remains.
    counts = span_histogram(run(make_masker(whole_word=True, ngram=3), count=200))
    assert counts[1] > counts[2] > counts[3] > 0


def mixed_runs(masker) -> float:
    """Share of contiguous target runs whose tokens got different replacement decisions."""
    mixed = runs_total = 0
    for ids, _, inputs, labels, _ in run(masker, count=200):
        target = labels != IGNORE_INDEX
        assert not target[ids == 3].any()
        positions = np.flatnonzero(target)
        for r in np.split(positions, np.flatnonzero(np.diff(positions) != 1) + 1):
            if len(r) > 1:
                is_mask = inputs[r] == MASK
                mixed += bool(is_mask.any() and not is_mask.all())
                runs_total += 1
    return mixed / runs_total


def test_ngram_spans_decide_replacement_per_span():
    per_span = mixed_runs(make_masker("bert", whole_word=True, ngram=3))
    per_token = mixed_runs(make_masker("bert", whole_word=True, ngram=1))
    # per token, a run of k tokens mixes with p = 1 - 0.8^k - 0.2^k (> 0.32); per span only where spans touch
    assert per_token > 0.3 and per_span < per_token / 2


def test_max_predictions_caps_targets():
    for whole_word, ngram in ((False, 1), (True, 1), (True, 3)):
        masker = make_masker(whole_word=whole_word, ngram=ngram, max_predictions=5)
        for _, _, _, labels, _ in run(masker, count=100):
            assert 1 <= (labels != IGNORE_INDEX).sum() <= 5


def test_nothing_maskable():
    ids = np.array([2, 3, 0, 0])
    inputs, labels, _ = make_masker()(ids, np.zeros(4, dtype=bool), np.random.default_rng(0))
    assert np.array_equal(inputs, ids) and (labels == IGNORE_INDEX).all()


def test_masking_none_has_no_masker():
    # data.masking "none" must never fall through to a corrupting branch (it is not "bert", so it would mask
    # like ELECTRA): the loader builds no Masker and from_config refuses the mode
    with pytest.raises(ValueError, match="no Masker for data.masking='none'"):
        Masker.from_config(DataConfig(masking="none"), tokenizer=None)
