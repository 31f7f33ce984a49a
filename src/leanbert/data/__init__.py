"""Data pipeline: tokenizers, corpus preparation, and pretraining instances (see loader.py for the API).

Names are imported lazily so that ``leanbert prepare`` and ``leanbert tokenizer`` (and ``--help``) never
import torch; only the loader needs it.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "DataConfig": "leanbert.data.config",
    "PretrainStream": "leanbert.data.loader",
    "build_loader": "leanbert.data.loader",
    "resolve_tokenizer": "leanbert.data.loader",
    "PreparedDataset": "leanbert.data.shards",
    "open_dataset": "leanbert.data.shards",
    "TokenizerInfo": "leanbert.data.tokenizer",
    "load_tokenizer": "leanbert.data.tokenizer",
    "train_tokenizer": "leanbert.data.tokenizer",
    "prepare_dataset": "leanbert.data.prepare",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'leanbert.data' has no attribute {name!r}")
