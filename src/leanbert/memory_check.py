"""Refuse a model that cannot fit in memory before allocating it.

A typo such as ``model.hidden_size=10000000`` or ``model.vocab_size=1000000000000`` would otherwise end in an
allocator RuntimeError, or an abort (exit 134) with no message at all. Parameters are counted on the meta device
(no memory touched, ``model_dir.check_model_fits``) and compared here with the memory the machine has available.
This module does not import torch, so the data commands can check a tokenizer's vocabulary size with it.
"""

from __future__ import annotations

import os

from leanbert.config import ConfigError
from leanbert.errors import UserError

BYTES_PER_PARAMETER = 4  # float32 weights
TRAINING_COPIES = 4  # weights, gradients and AdamW/LAMB's two moments
# `tokenizers`' trainers reserve about 44 bytes per requested vocabulary entry up front (measured: 4.43 GB for
# vocab_size=10**8), and an out-of-memory there aborts the process without a Python exception
TOKENIZER_TRAINER_BYTES_PER_ENTRY = 48
MAX_VOCAB_SIZE = 2**32  # prepared shards store ids as uint32 at most


def available_bytes() -> int | None:
    """Memory the OS can give this process now (MemAvailable on Linux, else physical memory), None if unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _gib(n: float) -> str:
    return f"{n / 2**30:,.1f} GiB"


def check_parameters_fit(params: int, training: bool, shape: str, source: str) -> None:
    """Raise ConfigError when ``params`` float32 parameters (and for ``training`` their gradients and optimizer
    moments) need more memory than is available; ``shape`` and ``source`` name the config in the message."""
    needed = params * BYTES_PER_PARAMETER * (TRAINING_COPIES if training else 1)
    have = available_bytes()
    if have is not None and needed > have:
        purpose = "weights, gradients and optimizer state" if training else "its weights"
        raise ConfigError(f"{source}: a model with {shape} has {params:,} parameters and needs about "
                          f"{_gib(needed)} for {purpose}; this machine has {_gib(have)} available")


def check_tokenizer_vocab_fits(vocab_size: int, flag: str = "--vocab-size") -> None:
    """Refuse a tokenizer vocabulary larger than uint32 ids hold or than the trainer can allocate."""
    if vocab_size > MAX_VOCAB_SIZE:
        raise UserError(f"{flag} {vocab_size} exceeds {MAX_VOCAB_SIZE:,}, the most token ids a dataset stores")
    needed = vocab_size * TOKENIZER_TRAINER_BYTES_PER_ENTRY
    have = available_bytes()
    if have is not None and needed > have:
        raise UserError(f"{flag} {vocab_size} needs about {_gib(needed)} for the tokenizer trainer; this machine "
                        f"has {_gib(have)} available")
