"""Multiple-choice examples -> one ``[CLS] context [SEP] question option [SEP]`` row per option, batches of
them with missing options masked, and the masked option scores.

Truncation: the context gives way first (cut from its end) so that the question and the option, which decide
the answer, stay whole; only when ``question option`` alone exceeds the budget is it cut too (and the context
is then empty). Token types: 0 for ``[CLS] context [SEP]``, 1 for ``question option [SEP]``.

Examples in one batch may have different numbers of options: the batch holds ``B * C`` rows for the largest
count C, a missing option is a ``[CLS] [SEP]`` row, and its score is set to -inf before the softmax, so it gets
probability 0 and no gradient (``masked_scores``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from leanbert.batch import IGNORE_INDEX, Batch
from leanbert.tasks.choice_files import ChoiceExample
from leanbert.tasks.encode import PairEncoder

_CHUNK = 512  # examples per tokenizer call


@dataclass(frozen=True)
class ChoiceFeatures:
    """One example: ids and token types per option, and the 0-based label (IGNORE_INDEX when unknown)."""

    input_ids: tuple[np.ndarray, ...]
    token_type_ids: tuple[np.ndarray, ...]
    label: int

    @property
    def longest(self) -> int:
        return max(ids.shape[0] for ids in self.input_ids)


def choice_lengths(len_context: int, len_answer: int, budget: int) -> tuple[int, int]:
    """Tokens kept of the context and of ``question option``: the context is truncated first."""
    keep_answer = min(len_answer, budget)
    return min(len_context, budget - keep_answer), keep_answer


def answer_text(example: ChoiceExample, option: str) -> str:
    return f"{example.question} {option}" if example.question else option


class ChoiceEncoder(PairEncoder):
    """``PairEncoder``'s tokenizer handling applied to (context, question + option) rows."""

    def encode_choices(self, examples: Sequence[ChoiceExample]) -> list[ChoiceFeatures]:
        out = []
        for start in range(0, len(examples), _CHUNK):
            chunk = examples[start:start + _CHUNK]
            contexts = self._tokenize([e.context for e in chunk])
            answers = self._tokenize([answer_text(e, o) for e in chunk for o in e.options])
            at = 0
            for example, context in zip(chunk, contexts):
                rows = answers[at:at + len(example.options)]
                at += len(example.options)
                out.append(self._build(context, rows, example.label))
        return out

    def _build(self, context: list[int], answers: list[list[int]], label: int | None) -> ChoiceFeatures:
        ids, types = [], []
        for answer in answers:
            keep_c, keep_a = choice_lengths(len(context), len(answer), self.max_seq_len - 3)
            ids.append(np.asarray([self.cls_id, *context[:keep_c], self.sep_id, *answer[:keep_a], self.sep_id],
                                  dtype=np.int64))
            types.append(np.asarray([0] * (keep_c + 2) + [1] * (keep_a + 1), dtype=np.int64))
        return ChoiceFeatures(tuple(ids), tuple(types), IGNORE_INDEX if label is None else label)


@dataclass(frozen=True)
class ChoiceCollator:
    """Stacks examples' options as (B * C, T) rows; ``targets``: ``choice_mask`` (B, C) bool (True for a real
    option) and ``choice_labels`` (B,) long."""

    pad_id: int
    cls_id: int
    sep_id: int

    def __call__(self, features: Sequence[ChoiceFeatures]) -> Batch:
        if not features:
            raise ValueError("cannot collate an empty batch")
        options = max(len(f.input_ids) for f in features)
        width = max(f.longest for f in features)
        rows = len(features) * options
        input_ids = np.full((rows, width), self.pad_id, dtype=np.int64)  # (B * C, T)
        token_types = np.zeros((rows, width), dtype=np.int64)
        mask = np.zeros((rows, width), dtype=np.int64)
        input_ids[:, :2] = (self.cls_id, self.sep_id)  # a missing option: [CLS] [SEP], masked out by choice_mask
        mask[:, :2] = 1
        choice_mask = np.zeros((len(features), options), dtype=bool)  # (B, C)
        for b, f in enumerate(features):
            choice_mask[b, :len(f.input_ids)] = True
            for c, (ids, types) in enumerate(zip(f.input_ids, f.token_type_ids)):
                row, n = b * options + c, ids.shape[0]
                input_ids[row, :n], token_types[row, :n], mask[row, :n] = ids, types, 1
        labels = torch.tensor([f.label for f in features], dtype=torch.long)  # (B,)
        return Batch(input_ids=torch.from_numpy(input_ids), attention_mask=torch.from_numpy(mask),
                     token_type_ids=torch.from_numpy(token_types),
                     targets={"choice_mask": torch.from_numpy(choice_mask), "choice_labels": labels})


def masked_scores(logits: torch.Tensor, choice_mask: torch.Tensor) -> torch.Tensor:
    """(B * C,) option scores -> (B, C) in float32 at least, -inf where the option does not exist."""
    scores = logits.reshape(choice_mask.shape)
    scores = scores if scores.dtype in (torch.float32, torch.float64) else scores.float()
    return scores.masked_fill(~choice_mask, float("-inf"))
