"""Words -> sub-word pieces with word-level labels carried over (token classification).

Each word is tokenized on its own (no special tokens) and the pieces are joined as ``[CLS] w1 w2 ... [SEP]``;
for BERT-style tokenizers (whitespace + punctuation pre-splitting, WordPiece) that gives the same pieces as
tokenizing the words joined by spaces, i.e. transformers' ``is_split_into_words=True``.

Labels: the first piece of a word carries the word's label; the others get ``IGNORE_INDEX`` (-100), so the
loss sees one label per word, as transformers' run_ner does by default. With ``label_all`` (config
``data.label_all_subwords=true``) every piece is labelled, a ``B-X`` word's later pieces with ``I-X`` (run_ner's
``label_all_tokens``, which maps B- to I- the same way), so the pieces of one word read as one entity.

Words beyond ``max_seq_len - 2`` pieces are cut; they and words that give no piece at all (a stray control
character) have no first piece (-1). Their predicted tag is ``O``, and they still count in the scores:
truncation costs recall instead of vanishing from the evaluation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from leanbert.batch import IGNORE_INDEX, Batch
from leanbert.tasks.encode import PairEncoder

_CHUNK = 512  # sentences per tokenizer call


@dataclass(frozen=True)
class WordFeatures:
    """One encoded sentence: ``input_ids`` (T,), ``labels`` (T,) with IGNORE_INDEX where unlabelled, and the
    position in ``input_ids`` of each word's first piece (W,), -1 where the word has none."""

    input_ids: np.ndarray
    labels: np.ndarray
    first_pieces: np.ndarray


def continuation_labels(labels: Sequence[str]) -> dict[int, int]:
    """Label index of a B- word -> the label its later pieces get (the I- of its type, when in ``labels``)."""
    index = {name: i for i, name in enumerate(labels)}
    return {i: index.get("I-" + name[2:], i) for i, name in enumerate(labels) if name.startswith("B-")}


def align(pieces: Sequence[Sequence[int]], word_labels: Sequence[int] | None, cls_id: int, sep_id: int,
          max_len: int, label_all: bool = False, continuation: Mapping[int, int] | None = None) -> WordFeatures:
    """Features of one sentence from its words' piece ids and label indices (None: nothing to train on)."""
    budget = max_len - 2
    ids, labels = [cls_id], [IGNORE_INDEX]
    first = np.full(len(pieces), -1, dtype=np.int64)
    for w, word in enumerate(pieces):
        room = budget - (len(ids) - 1)
        if room <= 0:
            break
        word = list(word)[:room]
        if not word:
            continue
        first[w] = len(ids)
        label = IGNORE_INDEX if word_labels is None else int(word_labels[w])
        later = IGNORE_INDEX
        if label_all and label != IGNORE_INDEX:
            later = (continuation or {}).get(label, label)
        ids.extend(word)
        labels.extend([label] + [later] * (len(word) - 1))
    ids.append(sep_id)
    labels.append(IGNORE_INDEX)
    return WordFeatures(np.asarray(ids, dtype=np.int64), np.asarray(labels, dtype=np.int64), first)


class WordEncoder(PairEncoder):
    """``PairEncoder``'s tokenizer handling (fast or transformers tokenizers, special-token lookup) applied to
    pre-split words."""

    def encode_words(self, sentences: Sequence[Sequence[str]], word_labels: Sequence[Sequence[int]] | None,
                     label_all: bool = False, continuation: Mapping[int, int] | None = None
                     ) -> list[WordFeatures]:
        out = []
        for start in range(0, len(sentences), _CHUNK):
            chunk = sentences[start:start + _CHUNK]
            flat = self._tokenize([word for words in chunk for word in words])
            at = 0
            for offset, words in enumerate(chunk):
                pieces, at = flat[at:at + len(words)], at + len(words)
                labels = None if word_labels is None else word_labels[start + offset]
                out.append(align(pieces, labels, self.cls_id, self.sep_id, self.max_seq_len, label_all,
                                 continuation))
        return out


@dataclass(frozen=True)
class WordCollator:
    """Pads WordFeatures into a Batch; the labels go to ``targets["token_labels"]`` (B, T), padded with
    IGNORE_INDEX."""

    pad_id: int

    def __call__(self, features: Sequence[WordFeatures]) -> Batch:
        if not features:
            raise ValueError("cannot collate an empty batch")
        width = max(f.input_ids.shape[0] for f in features)
        input_ids = np.full((len(features), width), self.pad_id, dtype=np.int64)  # (B, T)
        labels = np.full((len(features), width), IGNORE_INDEX, dtype=np.int64)  # (B, T)
        mask = np.zeros((len(features), width), dtype=np.int64)  # (B, T)
        for row, f in enumerate(features):
            n = f.input_ids.shape[0]
            input_ids[row, :n], labels[row, :n], mask[row, :n] = f.input_ids, f.labels, 1
        return Batch(input_ids=torch.from_numpy(input_ids), attention_mask=torch.from_numpy(mask),
                     token_type_ids=torch.zeros_like(torch.from_numpy(input_ids)),
                     targets={"token_labels": torch.from_numpy(labels)})


def word_predictions(logits: np.ndarray, first_pieces: np.ndarray, outside: int = 0
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Per word: the label index and its probability at the word's first piece (logits (T, L)); a word without
    a first piece gets ``outside`` (the index of O) and probability nan."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    probs = np.exp(shifted) / np.exp(shifted).sum(axis=-1, keepdims=True)  # (T, L)
    labels = np.full(len(first_pieces), outside, dtype=np.int64)
    scores = np.full(len(first_pieces), np.nan, dtype=np.float64)
    has = first_pieces >= 0
    labels[has] = probs[first_pieces[has]].argmax(axis=-1)
    scores[has] = probs[first_pieces[has]].max(axis=-1)
    return labels, scores
