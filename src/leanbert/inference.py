"""Run a model over encoded examples: per-row outputs in input order (a sequence task's predictions and
dev metrics build on it in tasks/sequence.py).

Used by fine-tuning's dev scoring, distillation's student and teacher scoring, and ``leanbert predict`` (with
any backend: PyTorch, ONNX Runtime). Rows are sorted by length and cut into batches by a token budget
(``plan_batches``), so a batch holds rows of nearly one length and padding stays small (what padding is left,
the encoder's unpadding skips); results come back in input order. Under torchrun each rank scores every
``world_size``-th row and the outputs are gathered, so every rank returns all rows.

``Predictor`` is what ``leanbert predict`` needs from a model of any format; ``label_names`` /
``id2label_names`` name its outputs. Both live here so the backends (``export/onnx.py``) need not import the
command's module.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from leanbert.batch import Batch
from leanbert.model.model import LeanBertModel
from leanbert.train.distributed import DistEnv, gather_rows

DEFAULT_MAX_LEN = 512  # when the model saved none: BERT's usual limit, capped by max_positions
DEFAULT_MAX_TOKENS = 2048  # padded tokens per forward: on CPU, bigger batches fall out of cache (8192 measured ~35% slower)
PRECISIONS = ("fp32", "bf16")

# one padded batch -> its rows' outputs as float32 numpy, (B, ...) (a classifier: (B, num_labels) logits)
ForwardFn = Callable[[Batch], np.ndarray]
# Encoded rows of any task type (each with an ``input_ids`` tensor, e.g. tasks.encode.Features) and the
# collator that pads a list of them into a Batch: this module runs models, the task types own their rows.
EncodedRow = Any
CollateFn = Callable[[Sequence[Any]], Batch]


@dataclass
class Predictor:
    """What ``leanbert predict`` needs from a model, whatever its format (PyTorch, ONNX)."""

    forward: ForwardFn
    labels: tuple[str, ...] | None  # output names; None: one unnamed output (a regressor)
    tokenizer_dir: Path
    max_seq_len: int
    description: str
    # the same model at another precision ("fp32" -> ForwardFn), for checking what a lower precision costs
    variants: dict[str, ForwardFn] | None = None


def label_names(num_labels: int, saved: Sequence[Any] | None) -> tuple[str, ...] | None:
    """Names for a classifier's outputs: the saved ones when they fit, else transformers' LABEL_i; None for a
    regressor (``num_labels`` 1)."""
    if num_labels == 1:
        return None
    if saved is not None and len(saved) == num_labels:
        return tuple(str(name) for name in saved)
    return tuple(f"LABEL_{i}" for i in range(num_labels))


def id2label_names(hf_config: dict[str, Any], num_labels: int) -> tuple[str, ...] | None:
    """label_names from a Hugging Face config's ``id2label`` (keys are strings in JSON)."""
    mapping = hf_config.get("id2label")
    saved = None
    if isinstance(mapping, dict) and all(str(i) in mapping for i in range(num_labels)):
        saved = [mapping[str(i)] for i in range(num_labels)]
    return label_names(num_labels, saved)


def plan_batches(lengths: Sequence[int], batch_size: int, max_tokens: int = DEFAULT_MAX_TOKENS) -> list[np.ndarray]:
    """Row indices of each batch: rows sorted by length (stable), each batch at most ``batch_size`` rows and
    at most ``max_tokens`` padded tokens (rows x its longest row; a single row longer than the budget still
    gets its own batch). Every row appears exactly once."""
    order = np.argsort(np.asarray(lengths, dtype=np.int64), kind="stable")
    batches, start = [], 0
    for end in range(1, len(order) + 1):
        longest = lengths[order[end - 1]]  # sorted: the last row is the longest
        if end - start > batch_size or (end - start) * longest > max_tokens and end - 1 > start:
            batches.append(order[start:end - 1])
            start = end - 1
    if start < len(order):
        batches.append(order[start:])
    return batches


def run_in_order(forward: ForwardFn, features: Sequence[EncodedRow], collator: CollateFn, batch_size: int,
                 max_tokens: int = DEFAULT_MAX_TOKENS, progress: bool = False) -> np.ndarray:
    """(N, ...) float32 outputs of ``forward`` over ``features``, in input order (see ``plan_batches``)."""
    batches = plan_batches([f.input_ids.shape[0] for f in features], batch_size, max_tokens)
    parts = []
    with tqdm(total=len(features), desc="predict", unit="ex", disable=not progress) as bar:
        for rows in batches:
            parts.append(forward(collator([features[i] for i in rows])))  # (b, ...)
            bar.update(len(rows))
    if not parts:
        return np.zeros((0, 1), dtype=np.float32)
    out = np.empty((len(features), *parts[0].shape[1:]), dtype=np.float32)  # (N, ...)
    out[np.concatenate(batches)] = np.concatenate(parts)
    return out


def torch_forward(model: LeanBertModel, precision: str = "fp32") -> ForwardFn:
    """A ForwardFn over a PyTorch model's logits, in eval mode and ``torch.inference_mode`` (no autograd
    bookkeeping), optionally under bf16 autocast (weights stay fp32; outputs come back as float32). The
    caller's model is switched to eval mode for good: prediction never needs dropout."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    device = next(model.parameters()).device
    model.eval()

    def forward(batch: Batch) -> np.ndarray:
        batch = batch.to(device)
        autocast = (torch.autocast(device_type=device.type, dtype=torch.bfloat16) if precision == "bf16"
                    else contextlib.nullcontext())
        with torch.inference_mode(), autocast:
            logits = model(batch.input_ids, batch.attention_mask, batch.token_type_ids).logits  # (B, ...)
        return logits.float().cpu().numpy()

    return forward


def predict_logits(model: LeanBertModel, features: Sequence[EncodedRow], collator: CollateFn, batch_size: int,
                   env: DistEnv | None = None, max_tokens: int = DEFAULT_MAX_TOKENS) -> np.ndarray:
    """(N, num_labels) float32 classifier logits in input order, computed in eval mode without gradients (the
    model's train/eval mode is restored afterwards)."""
    env = env or DistEnv()
    mine = np.arange(env.rank, len(features), env.world_size)
    was_training = model.training
    try:
        local = run_in_order(torch_forward(model), [features[i] for i in mine], collator, batch_size,
                             max_tokens)  # (n_mine, C): row j is features[mine[j]]
    finally:
        model.train(was_training)
    if len(mine) == 0:
        local = np.zeros((0, model.config.num_labels), dtype=np.float32)
    logits = np.empty((len(features), local.shape[1]), dtype=np.float32)  # (N, C)
    for rank, part in enumerate(gather_rows(torch.from_numpy(local), env)):
        logits[rank::env.world_size] = part.cpu().numpy()
    return logits


def hf_label_names(hf_config: dict, num_labels: int) -> list[str] | None:
    """A classifier's label names from ``id2label`` (None when absent or transformers' LABEL_i defaults), so
    an imported classifier keeps them (``predict`` prints them, task distillation matches them by name)."""
    mapping = hf_config.get("id2label")
    if not isinstance(mapping, dict) or num_labels < 2:
        return None
    names = [mapping.get(str(i), mapping.get(i)) for i in range(num_labels)]
    if not all(isinstance(n, str) for n in names) or names == [f"LABEL_{i}" for i in range(num_labels)]:
        return None
    return names
