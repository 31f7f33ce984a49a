"""Batches shaped like the data pipeline's: corrupted input_ids, labels at masked positions, -100 elsewhere."""

from __future__ import annotations

import pytest
import torch

from helpers import random_inputs
from leanbert.batch import IGNORE_INDEX, Batch

MASK_ID = 4


def masked_batch(batch: int = 3, length: int = 17, vocab: int = 101, seed: int = 0, mask_prob: float = 0.3,
                 sentence_labels: bool = True) -> Batch:
    """Random tokens (row 1 half padded); ~mask_prob of the real tokens become [MASK] with a label."""
    ids, mask, types = random_inputs(batch, length, vocab, seed)
    g = torch.Generator().manual_seed(seed + 1)
    chosen = (torch.rand(ids.shape, generator=g) < mask_prob) & mask.bool()  # (B, T)
    chosen[:, 0] = False  # [CLS] position is never a target, as in the data pipeline
    chosen[0, 1] = True  # at least one target
    labels = torch.full_like(ids, IGNORE_INDEX)
    labels[chosen] = ids[chosen]
    corrupted = ids.masked_fill(chosen, MASK_ID)
    pair_labels = torch.randint(0, 2, (batch,), generator=g) if sentence_labels else None
    return Batch(input_ids=corrupted, attention_mask=mask, token_type_ids=types, labels=labels,
                 sentence_labels=pair_labels)


@pytest.fixture
def make_batch():
    return masked_batch
