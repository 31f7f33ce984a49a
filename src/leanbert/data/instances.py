"""Pretraining instances from a prepared split: which tokens go into each sequence, before masking.

* ``PackedPlan`` (MLM, RoBERTa FULL-SENTENCES, Liu et al. 2019 sec. 4.2): whole lines packed greedily into
  ``[CLS] ... [SEP]`` sequences across documents, an extra [SEP] between documents. A line longer than a whole
  sequence has to be cut anyway, so it is cut where the current sequence is full (no short sequences before
  long paragraphs). Each instance is a contiguous token range of one shard.
* ``PairPlan`` (BERT NSP / ALBERT SOP, after create_pretraining_data.py): per document, lines are gathered until
  a target length (``seq_len - 3``, or with ``short_seq_prob`` a random length in [2, seq_len - 3]), then cut at
  a random line boundary into segments A and B (a single line is cut at a random token). A and B always come
  from one document. At instance time, SOP swaps them with p=0.5; NSP replaces B with p=0.5 by text from a
  random other document (label 1). Pairs longer than ``seq_len - 3`` are truncated from a random end of the
  longer segment.

Plans are built once per (split, config, seed) and never change; the per-epoch randomness (order, masking,
swaps, random next segments) comes from an RNG keyed by (seed, epoch, instance index), so any instance can be
rebuilt from its index alone: that is what makes the stream resumable and ranks disjoint.
"""

from __future__ import annotations

from array import array
from bisect import bisect_right

import numpy as np

from leanbert.data.shards import Shard


def _ints(values: np.ndarray) -> array:
    out = array("q")
    out.frombytes(np.ascontiguousarray(values, dtype=np.int64).tobytes())
    return out


class _Uniform:
    """Floats in [0, 1) from ``rng``, drawn in blocks: one scalar Generator call costs ~1-5 us."""

    def __init__(self, rng: np.random.Generator, block: int = 1 << 16):
        self.rng, self.block = rng, block
        self.values: list[float] = []

    def __call__(self) -> float:
        if not self.values:
            self.values = self.rng.random(self.block).tolist()[::-1]
        return self.values.pop()


class PackedPlan:
    """instances: (N, 3) int64 rows (shard, token start, token end)."""

    def __init__(self, shards: list[Shard], seq_len: int):
        capacity = seq_len - 2
        rows = []
        for index, shard in enumerate(shards):
            lines_np = np.asarray(shard.lines)  # (L + 1,)
            docs = np.asarray(shard.docs)  # (D + 1,)
            num_lines = len(lines_np) - 1
            doc_np = np.repeat(np.arange(len(docs) - 1), np.diff(docs))  # (L,)
            # compact int64 arrays: fast scalar access and bisect, 8 bytes per line (lists would take ~36)
            lines, doc_of_line = _ints(lines_np), _ints(doc_np)
            start = _ints(lines_np[:-1] + doc_np)  # line starts/ends counting one [SEP] per document before
            end = _ints(lines_np[1:] + doc_np)
            out_start, out_end = array("q"), array("q")
            a, p = 0, lines[0] if num_lines else 0  # current line and token position in it
            while a < num_lines:
                limit = p + doc_of_line[a] + capacity
                b = bisect_right(end, limit, a)  # lines a..b-1 fit (line a from p)
                if b == a:  # the rest of line a alone overflows a sequence: take a full piece of it
                    e = p + capacity
                elif b < num_lines and lines[b + 1] - lines[b] > capacity:
                    e = lines[b] + max(0, limit - start[b])  # line b gets cut anyway: fill up
                else:
                    e = lines[b]
                out_start.append(p)
                out_end.append(e)
                p = e
                a = bisect_right(lines, p, a) - 1  # the line holding p (num_lines at the end)
            block = np.empty((len(out_start), 3), dtype=np.int64)
            block[:, 0] = index
            block[:, 1] = np.frombuffer(out_start, dtype=np.int64)
            block[:, 2] = np.frombuffer(out_end, dtype=np.int64)
            rows.append(block)
        self.instances = np.concatenate(rows) if rows else np.zeros((0, 3), dtype=np.int64)
        self.doc_starts = [np.asarray(s.lines)[np.asarray(s.docs)] for s in shards]  # token offset per doc

    def __len__(self) -> int:
        return len(self.instances)

    def segments(self, shards: list[Shard], index: int) -> list[np.ndarray]:
        """Token arrays of instance ``index``, one per document it touches (a [SEP] goes between them)."""
        shard, s, e = self.instances[index].tolist()
        inner = self.doc_starts[shard]
        cuts = inner[(inner > s) & (inner < e)].tolist()
        bounds = [s, *cuts, e]
        tokens = shards[shard].tokens
        return [np.asarray(tokens[a:b], dtype=np.int64) for a, b in zip(bounds[:-1], bounds[1:])]


class PairPlan:
    """instances: (N, 6) int64 rows (shard, A start, cut = B start, B end, target length, global doc index)."""

    def __init__(self, shards: list[Shard], seq_len: int, short_seq_prob: float, rng: np.random.Generator):
        max_tokens = seq_len - 3
        rows: list[tuple[int, ...]] = []
        self.doc_bounds = []  # per shard: (D + 1,) token offsets of documents
        self.doc_base = []  # global index of each shard's first document
        base = 0
        uniform = _Uniform(rng)
        for index, shard in enumerate(shards):
            lines = _ints(np.asarray(shard.lines))
            docs = _ints(np.asarray(shard.docs))
            self.doc_bounds.append(np.asarray(shard.lines)[np.asarray(shard.docs)])
            self.doc_base.append(base)
            for d in range(len(docs) - 1):
                target = self._target(uniform, max_tokens, short_seq_prob)
                chunk: list[tuple[int, int]] = []
                length = 0
                pieces = [(s, min(s + max_tokens, lines[i + 1])) for i in range(docs[d], docs[d + 1])
                          for s in range(lines[i], lines[i + 1], max_tokens)]
                for k, (s, e) in enumerate(pieces):
                    chunk.append((s, e))
                    length += e - s
                    if k == len(pieces) - 1 or length >= target:
                        start, end = chunk[0][0], chunk[-1][1]
                        if len(chunk) >= 2:
                            cut = chunk[1 + int(uniform() * (len(chunk) - 1))][0]
                        elif end - start >= 2:
                            cut = start + 1 + int(uniform() * (end - start - 1))
                        else:
                            cut = -1  # a one-token document: no pair possible
                        if cut > 0:
                            rows.append((index, start, cut, end, target, base + d))
                        chunk, length = [], 0
                        target = self._target(uniform, max_tokens, short_seq_prob)
            base += len(docs) - 1
        self.num_docs = base
        self.instances = np.array(rows, dtype=np.int64).reshape(-1, 6)
        self.max_tokens = max_tokens

    @staticmethod
    def _target(uniform, max_tokens: int, short_seq_prob: float) -> int:
        if short_seq_prob > 0 and uniform() < short_seq_prob:
            return 2 + int(uniform() * (max_tokens - 1))  # uniform in [2, max_tokens]
        return max_tokens

    def __len__(self) -> int:
        return len(self.instances)

    def random_segment(self, shards: list[Shard], doc: int, length: int, rng: np.random.Generator,
                       ) -> tuple[int, int, int, int]:
        """(shard, start, end, global doc): up to ``length`` tokens from a random line of a random document
        other than ``doc`` (BERT NSP; like BERT, it gives up after 10 draws of ``doc`` itself)."""
        other = doc
        for _ in range(10):
            other = int(rng.integers(self.num_docs))
            if other != doc:
                break
        shard = int(np.searchsorted(self.doc_base, other, side="right")) - 1
        local = other - self.doc_base[shard]
        lines = shards[shard].lines
        first, last = int(shards[shard].docs[local]), int(shards[shard].docs[local + 1])
        line = int(rng.integers(first, last))
        start, doc_end = int(lines[line]), int(lines[last])
        return shard, start, min(start + max(length, 1), doc_end), other

    def pair(self, shards: list[Shard], index: int, mode: str, rng: np.random.Generator,
             ) -> tuple[np.ndarray, np.ndarray, int]:
        """(segment A, segment B, label): label 0 = original order / real next, 1 = swapped / random."""
        shard, s, c, e, target, doc = self.instances[index].tolist()
        tokens = shards[shard].tokens
        a = np.asarray(tokens[s:c], dtype=np.int64)
        b = np.asarray(tokens[c:e], dtype=np.int64)
        label = int(rng.random() < 0.5)
        if label and mode == "sop":
            a, b = b, a
        elif label and mode == "nsp":
            other, start, end, _ = self.random_segment(shards, doc, target - len(a), rng)
            b = np.asarray(shards[other].tokens[start:end], dtype=np.int64)
        return (*truncate_pair(a, b, self.max_tokens, rng), label)


def truncate_pair(a: np.ndarray, b: np.ndarray, max_tokens: int, rng: np.random.Generator,
                  ) -> tuple[np.ndarray, np.ndarray]:
    """BERT's truncate_seq_pair: drop tokens from the longer segment, each time from its front or back at
    random, until both fit in ``max_tokens``."""
    a_lo, a_hi, b_lo, b_hi = 0, len(a), 0, len(b)
    excess = (a_hi + b_hi) - max_tokens
    if excess > 0:
        coins = rng.random(excess) < 0.5
        for front in coins.tolist():
            if a_hi - a_lo > b_hi - b_lo:
                a_lo, a_hi = (a_lo + 1, a_hi) if front else (a_lo, a_hi - 1)
            else:
                b_lo, b_hi = (b_lo + 1, b_hi) if front else (b_lo, b_hi - 1)
    return a[a_lo:a_hi], b[b_lo:b_hi]
