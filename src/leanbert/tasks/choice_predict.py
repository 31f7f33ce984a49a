"""``leanbert predict`` for a multiple-choice model: JSONL rows (any layout choice_files.py reads; ``label`` not
needed) -> ``predictions.jsonl`` rows ``{"index", "label", "probabilities"}``, as ``finetune`` writes them.

Every option is run as its own row (one score each, no padding options), and each input row's scores are
soft-maxed over its own options: the same numbers as the masked batches of training, whatever the backend.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from leanbert.batch import Batch
from leanbert.tasks.base import PredictSpec
from leanbert.tasks.choice_encode import ChoiceEncoder
from leanbert.tasks.choice_files import parse_choices, read_choices
from leanbert.tasks.predict_length import predict_max_len


@dataclass(frozen=True)
class OptionRow:
    input_ids: np.ndarray  # (T,)
    token_type_ids: np.ndarray  # (T,)


@dataclass(frozen=True)
class RowCollator:
    pad_id: int

    def __call__(self, rows: Sequence[OptionRow]) -> Batch:
        width = max(r.input_ids.shape[0] for r in rows)
        ids = np.full((len(rows), width), self.pad_id, dtype=np.int64)
        types = np.zeros((len(rows), width), dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for i, r in enumerate(rows):
            n = r.input_ids.shape[0]
            ids[i, :n], types[i, :n], mask[i, :n] = r.input_ids, r.token_type_ids, 1
        return Batch(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask),
                     token_type_ids=torch.from_numpy(types))


def prediction_rows(scores: Sequence[np.ndarray]) -> list[dict[str, Any]]:
    """One {"index", "label", "probabilities"} per example from its (C,) option scores."""
    rows = []
    for index, s in enumerate(scores):
        s = np.asarray(s, dtype=np.float64)
        probs = np.exp(s - s.max())
        probs /= probs.sum()
        rows.append({"index": index, "label": int(np.argmax(s)), "probabilities": [float(p) for p in probs]})
    return rows


def read(source: str, stdin: Any) -> list:
    if source == "-":
        return parse_choices(Path("-"), stdin, need_label=False)
    return read_choices(source, need_label=False)


def encode(examples: list, tokenizer_dir: Path, task_meta: dict[str, Any]) -> tuple[list, RowCollator, list]:
    max_len = predict_max_len(tokenizer_dir, task_meta)
    encoder = ChoiceEncoder.from_dir(tokenizer_dir, max_len)
    rows, counts = [], []
    for features in encoder.encode_choices(examples):
        rows.extend(OptionRow(ids, types) for ids, types in zip(features.input_ids, features.token_type_ids))
        counts.append(len(features.input_ids))
    return rows, RowCollator(encoder.pad_id), counts


def format_outputs(outputs: list[dict[str, Any]], rows: list, counts: list[int]) -> str:
    flat = np.asarray([float(np.asarray(out["logits"]).reshape(-1)[0]) for out in outputs])
    starts = np.cumsum([0, *counts])
    scores = [flat[starts[i]:starts[i + 1]] for i in range(len(counts))]
    return "".join(json.dumps(row) + "\n" for row in prediction_rows(scores))


CHOICE_PREDICT = PredictSpec(read=read, encode=encode, format=format_outputs)
