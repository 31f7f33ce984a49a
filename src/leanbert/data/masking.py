"""MLM corruption of one instance: choose targets, then replace them (pure functions of ids and an RNG).

* Token masking (BERT): ``mask_prob`` of the maskable tokens, chosen uniformly.
* Whole-word masking: words are chosen, all their pieces together (a piece starts a word when the vocabulary's
  ``word_start`` table says so, or when it follows a non-maskable token).
* n-gram masking (ALBERT, Lan et al. 2020 sec. 4.1 / create_pretraining_data.py): spans of n consecutive whole
  words with p(n) = (1/n) / sum_k (1/k), n <= ``ngram``; a span that would exceed the budget is shortened.
  Spans never cross a non-maskable token ([SEP]).
* Replacement: "bert" 80% [MASK] / 10% random token / 10% unchanged; "electra" 85% [MASK] / 15% unchanged
  (Clark et al. 2020); "mask" 100% [MASK] (MC-BERT, Xu et al. 2020). Decided per token, or per span for n-gram
  masking (as ALBERT does).
* ``data.masking: none`` has no Masker: the loader leaves the sequences uncorrupted and sets no labels.

The number of targets is ``round(mask_prob * maskable)`` (at least 1), capped at ``max_predictions`` when > 0.
Special tokens and padding are never maskable and never drawn as random replacements.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from leanbert.batch import IGNORE_INDEX

# share of the chosen tokens replaced by [MASK] (the rest: random/unchanged as the mode says); draw < 1.0 always
MASK_SHARE = {"bert": 0.8, "electra": 0.85, "mask": 1.0}


@dataclass(frozen=True)
class Masker:
    mask_prob: float
    masking: str  # "bert" | "electra" | "mask"
    whole_word: bool
    ngram: int
    max_predictions: int
    mask_id: int
    word_start: np.ndarray  # (V,) bool
    replace_pool: np.ndarray  # (R,) ids a random replacement is drawn from (non-special)

    @classmethod
    def from_config(cls, config, tokenizer) -> Masker:
        if config.masking not in MASK_SHARE:
            raise ValueError(f"no Masker for data.masking={config.masking!r} (only {sorted(MASK_SHARE)} corrupt)")
        return cls(mask_prob=config.mask_prob, masking=config.masking, whole_word=config.whole_word,
                   ngram=config.ngram, max_predictions=config.max_predictions, mask_id=tokenizer.mask_id,
                   word_start=tokenizer.word_start, replace_pool=np.flatnonzero(~tokenizer.is_special))

    def budget(self, num_maskable: int) -> int:
        n = max(1, int(round(num_maskable * self.mask_prob)))
        return min(n, self.max_predictions) if self.max_predictions > 0 else n

    def _choose_words(self, ids: np.ndarray, cand: np.ndarray, budget: int, rng: np.random.Generator,
                      ) -> tuple[list[np.ndarray], list[int]]:
        """Whole-word / n-gram choice: (list of position arrays, one per span; span lengths in words)."""
        gap = np.ones(len(cand), dtype=bool)
        gap[1:] = np.diff(cand) != 1  # a non-maskable token sits between these two candidates
        starts = np.flatnonzero(self.word_start[ids[cand]] | gap)  # (W,) candidate index of each word start
        ends = np.append(starts[1:], len(cand))  # (W,)
        group = np.cumsum(gap)[starts]  # (W,) spans may not leave their group
        num_words = len(starts)
        order = rng.permutation(num_words)
        if self.ngram > 1:
            weights = 1.0 / np.arange(1, self.ngram + 1)
            cdf = np.cumsum(weights / weights.sum())
            lengths = np.minimum(np.searchsorted(cdf, rng.random(num_words), side="right"), self.ngram - 1) + 1
        else:
            lengths = np.ones(num_words, dtype=np.int64)
        # plain Python lists in the loop: numpy scalar access would cost more than the work itself
        starts_l, ends_l, group_l = starts.tolist(), ends.tolist(), group.tolist()
        covered = [False] * num_words
        spans, span_words, count = [], [], 0
        for w, n in zip(order.tolist(), lengths.tolist()):
            if count >= budget:
                break
            last = min(w + n, num_words)
            while last - 1 > w and group_l[last - 1] != group_l[w]:
                last -= 1
            # shorten the span while it exceeds the budget (ALBERT); a single word too big is skipped
            while last > w + 1 and count + ends_l[last - 1] - starts_l[w] > budget:
                last -= 1
            size = ends_l[last - 1] - starts_l[w]
            if count + size > budget or any(covered[w:last]):
                continue
            covered[w:last] = [True] * (last - w)
            spans.append(cand[starts_l[w]:ends_l[last - 1]])
            span_words.append(last - w)
            count += size
        return spans, span_words

    def __call__(self, ids: np.ndarray, maskable: np.ndarray, rng: np.random.Generator,
                 ) -> tuple[np.ndarray, np.ndarray, list[int]]:
        """ids: (T,) int64; maskable: (T,) bool. Returns (input ids (T,), labels (T,), span lengths in words)."""
        inputs = ids.copy()
        labels = np.full(len(ids), IGNORE_INDEX, dtype=np.int64)
        cand = np.flatnonzero(maskable)
        if len(cand) == 0:
            return inputs, labels, []
        budget = self.budget(len(cand))
        if self.ngram == 1 and not self.whole_word:
            chosen = np.sort(cand[rng.permutation(len(cand))[:budget]])
            unit_of_token = np.arange(len(chosen))
            span_words: list[int] = []
        else:
            spans, span_words = self._choose_words(ids, cand, budget, rng)
            if not spans:
                return inputs, labels, []
            chosen = np.concatenate(spans)
            if self.ngram > 1:  # one replacement decision per span
                unit_of_token = np.repeat(np.arange(len(spans)), [len(s) for s in spans])
            else:
                unit_of_token = np.arange(len(chosen))
        labels[chosen] = ids[chosen]
        draw = rng.random(int(unit_of_token[-1]) + 1)[unit_of_token]  # (K,) uniform per unit
        mask_share = MASK_SHARE[self.masking]
        to_mask = draw < mask_share
        inputs[chosen[to_mask]] = self.mask_id
        if self.masking == "bert":
            to_random = (draw >= 0.8) & (draw < 0.9)
            picks = rng.integers(len(self.replace_pool), size=int(np.count_nonzero(to_random)))
            inputs[chosen[to_random]] = self.replace_pool[picks]
        return inputs, labels, span_words

    def mask_batch(self, ids: np.ndarray, maskable: np.ndarray, rng: np.random.Generator,
                   ) -> tuple[np.ndarray, np.ndarray]:
        """ids, maskable: (B, T). Returns (input ids, labels), each (B, T). Token-level masking is vectorized
        over the batch (same distribution as ``__call__``); word and n-gram masking go row by row."""
        if self.whole_word or self.ngram > 1:
            rows = [self(row, row_maskable, rng)[:2] for row, row_maskable in zip(ids, maskable)]
            return np.stack([r[0] for r in rows]), np.stack([r[1] for r in rows])
        count = maskable.sum(axis=1)  # (B,)
        budget = np.maximum(1, np.rint(count * self.mask_prob)).astype(np.int64)
        if self.max_predictions > 0:
            budget = np.minimum(budget, self.max_predictions)
        budget = np.minimum(budget, count)  # (B,)
        # a uniformly random subset of `budget` maskable positions per row: the smallest random keys
        keys = np.where(maskable, rng.random(ids.shape), 2.0)  # (B, T)
        rank = np.argsort(np.argsort(keys, axis=1), axis=1)  # (B, T) position of each key in its row
        chosen = rank < budget[:, None]  # (B, T)
        labels = np.where(chosen, ids, IGNORE_INDEX)
        draw = rng.random(ids.shape)  # (B, T)
        inputs = ids.copy()
        mask_share = MASK_SHARE[self.masking]
        inputs[chosen & (draw < mask_share)] = self.mask_id
        if self.masking == "bert":
            to_random = chosen & (draw >= 0.8) & (draw < 0.9)
            picks = rng.integers(len(self.replace_pool), size=int(np.count_nonzero(to_random)))
            inputs[to_random] = self.replace_pool[picks]
        return inputs, labels
