"""Extractive-QA questions -> overlapping windows of ``[CLS] question [SEP] context piece [SEP]``.

As transformers' run_qa does with a fast tokenizer: the question is cut to ``max_query_length`` tokens; a
context too long for one window is split into windows of the room left, consecutive windows sharing
``doc_stride`` tokens. Each window keeps the character span of every context token (the tokenizer's offset
mapping, so answers map back to the original text, case and accents included) and, for training, the answer's
first and last token; a window that does not contain the whole answer, and an unanswerable question, point
both at [CLS] (position 0).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tokenizers import Tokenizer
from tqdm import tqdm

from leanbert.batch import Batch
from leanbert.errors import UserError
from leanbert.tasks.encode import PairEncoder, load_any_tokenizer, pad_rows
from leanbert.tasks.qa_data import QAExample

NOT_CONTEXT = -1  # offsets of question and special tokens


@dataclass(frozen=True)
class QAFeatures:
    """One window. offsets: (T, 2) character span in the context per token, NOT_CONTEXT elsewhere; start,
    end: the answer's token positions (0 = [CLS]: not in this window / no answer); example: the question's
    index in the list that was encoded."""

    input_ids: np.ndarray  # (T,) int64
    token_type_ids: np.ndarray  # (T,) int64
    offsets: np.ndarray  # (T, 2) int64
    start: int
    end: int
    example: int


def answer_tokens(starts: np.ndarray, ends: np.ndarray, char_start: int, char_end: int) -> tuple[int, int] | None:
    """(first, last) index of the context tokens covering characters [char_start, char_end), or None when the
    tokens (``starts``/``ends``: their character spans) do not hold the whole answer."""
    if len(starts) == 0 or starts[0] > char_start or ends[-1] < char_end:
        return None
    first = int(np.searchsorted(starts, char_start, side="right")) - 1  # last token starting at or before it
    last = int(np.searchsorted(ends, char_end, side="left"))  # first token ending at or after its end
    return first, min(last, len(ends) - 1)


class WindowEncoder:
    """Turns QAExamples into QAFeatures with the fast tokenizer of ``tokenizer_dir``."""

    def __init__(self, tokenizer_dir: Path, max_seq_len: int, doc_stride: int, max_query_length: int):
        tokenizer = load_any_tokenizer(tokenizer_dir)
        if not isinstance(tokenizer, Tokenizer):
            raise UserError(f"{tokenizer_dir}: extractive QA needs a fast tokenizer (tokenizer.json) for the "
                            "character offsets of its tokens")
        ids = PairEncoder(tokenizer, max_seq_len, tokenizer_dir)  # the special-token lookup
        self.cls_id, self.sep_id, self.pad_id = ids.cls_id, ids.sep_id, ids.pad_id
        self.tokenizer = Tokenizer.from_str(tokenizer.to_str())  # without truncation / padding of its own
        self.tokenizer.no_truncation()
        self.tokenizer.no_padding()
        self.max_seq_len, self.doc_stride, self.max_query_length = max_seq_len, doc_stride, max_query_length

    def encode(self, examples: Sequence[QAExample], labels: bool, progress: bool = False,
               desc: str = "windows") -> list[QAFeatures]:
        out: list[QAFeatures] = []
        chunk = 1024
        with tqdm(total=len(examples), desc=desc, unit="q", disable=not progress) as bar:
            for begin in range(0, len(examples), chunk):
                part = examples[begin:begin + chunk]
                questions = self.tokenizer.encode_batch([e.question for e in part], add_special_tokens=False)
                contexts = self.tokenizer.encode_batch([e.context for e in part], add_special_tokens=False)
                for k, (example, q, c) in enumerate(zip(part, questions, contexts)):
                    out.extend(self._windows(example, begin + k, q.ids, c.ids, c.offsets, labels))
                bar.update(len(part))
        return out

    def _windows(self, example: QAExample, index: int, question: list[int], context: list[int],
                 offsets: list[tuple[int, int]], labels: bool) -> list[QAFeatures]:
        question = question[: self.max_query_length]
        room = self.max_seq_len - len(question) - 3
        if room <= self.doc_stride:
            raise UserError(f"data.max_seq_len={self.max_seq_len} leaves {room} context tokens per window after "
                            f"question {example.qid}; that must exceed data.doc_stride={self.doc_stride}")
        spans = np.asarray(offsets, dtype=np.int64).reshape(-1, 2)  # (C, 2)
        answer = None
        if labels and example.answers:
            text, char_start = example.answers[0]
            answer = (char_start, char_start + len(text))
        head = [self.cls_id, *question, self.sep_id]
        windows, start = [], 0
        while True:
            piece = slice(start, min(start + room, len(context)))
            ids = np.asarray([*head, *context[piece], self.sep_id], dtype=np.int64)
            types = np.zeros_like(ids)
            types[len(head):] = 1
            window_offsets = np.full((len(ids), 2), NOT_CONTEXT, dtype=np.int64)
            window_offsets[len(head):len(ids) - 1] = spans[piece]
            first = last = 0
            found = answer_tokens(spans[piece, 0], spans[piece, 1], *answer) if answer else None
            if found is not None:
                first, last = found[0] + len(head), found[1] + len(head)
            windows.append(QAFeatures(ids, types, window_offsets, first, last, index))
            if piece.stop >= len(context):
                return windows
            start += room - self.doc_stride


@dataclass(frozen=True)
class QACollator:
    """Pads windows to the longest and stacks them; ``Batch.targets`` holds start_positions / end_positions."""

    pad_id: int

    def __call__(self, features: Sequence[QAFeatures]) -> Batch:
        input_ids, types, mask = pad_rows(features, self.pad_id)
        targets = {"start_positions": torch.tensor([f.start for f in features], dtype=torch.long),
                   "end_positions": torch.tensor([f.end for f in features], dtype=torch.long)}  # (B,) each
        return Batch(input_ids=input_ids, attention_mask=mask, token_type_ids=types, targets=targets)
