"""Hand-made batches with rare-word occurrences for the TNF tests (and their 2-process DDP worker)."""

from __future__ import annotations

import torch

from helpers import tiny_config
from leanbert.addons.tnf.addon import TakingNotes, TnfConfig
from leanbert.addons.tnf.rare_words import RareWords
from leanbert.batch import IGNORE_INDEX, Batch
from leanbert.objectives import build_objective, objective_config, objective_spec

MASK_ID = 4
SETTINGS = (100, 500, 8)  # the tnf defaults for min/max count, with max_words = 8


def tnf_batch(seed: int = 0, batch: int = 3, length: int = 17,
              occurrences: tuple[tuple[int, int, int, int], ...] = ((0, 2, 4, 1), (0, 9, 10, 3), (1, 1, 2, 1),
                                                                    (2, 14, 17, 5))) -> Batch:
    """Random ids (row 1 is padded after 9 tokens), ~30% masked with labels (rare pieces included), and the
    given (row, start, end, word id) occurrences."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, 101, (batch, length), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 9:] = 0
    ids[mask == 0] = 0
    chosen = (torch.rand(ids.shape, generator=g) < 0.3) & mask.bool()  # (B, T)
    chosen[:, 0] = False
    chosen[0, 2] = chosen[0, 5] = True  # a rare piece and another piece are always targets
    labels = torch.full_like(ids, IGNORE_INDEX)
    labels[chosen] = ids[chosen]
    columns = list(zip(*occurrences)) or [(), (), (), ()]
    rows, starts, ends, words = (torch.tensor(column, dtype=torch.long) for column in columns)
    return Batch(input_ids=ids.masked_fill(chosen, MASK_ID), attention_mask=mask,
                 token_type_ids=torch.zeros_like(ids), labels=labels,
                 extras={"rare_words": RareWords(rows, starts, ends, words, SETTINGS)})


def tnf_objective(objective: str = "mlm", seed: int = 0, **tnf_keys) -> TakingNotes:
    """TNF around a tiny ``objective`` (no dropout), table settings matching ``tnf_batch``."""
    model_config = tiny_config(**tnf_keys.pop("model", {}))
    torch.manual_seed(seed)
    inner = build_objective(objective_config(objective), model_config)
    config = TnfConfig(enabled=True, max_words=SETTINGS[2], window=tnf_keys.pop("window", 2), **tnf_keys)
    return TakingNotes(inner, config, model_config, objective_spec(objective).kept)
