"""Data pipeline: tokenizers, corpus preparation, and pretraining instances (see loader.py for the API)."""

from leanbert.data.config import DataConfig
from leanbert.data.loader import PretrainStream, build_loader, resolve_tokenizer
from leanbert.data.shards import PreparedDataset, open_dataset
from leanbert.data.tokenizer import TokenizerInfo, load_tokenizer, train_tokenizer

__all__ = ["DataConfig", "PreparedDataset", "PretrainStream", "TokenizerInfo", "build_loader", "load_tokenizer",
           "open_dataset", "resolve_tokenizer", "train_tokenizer"]
