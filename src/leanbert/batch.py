"""Typed batches that flow from the data pipeline into objectives (after google-research/electra's Inputs).

Masking and pair building happen in the data pipeline; a batch already holds the corrupted input and the
targets. Objectives read the fields they need and ignore the rest.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import torch

IGNORE_INDEX = -100  # label value for positions that carry no MLM target (PyTorch/HF convention)


@dataclass
class Batch:
    """A batch of token sequences.

    input_ids:       (B, T) long, possibly corrupted ([MASK], random tokens).
    attention_mask:  (B, T) long, 1 for real tokens, 0 for padding.
    token_type_ids:  (B, T) long, segment A = 0, segment B = 1.
    labels:          (B, T) long, original token at masked positions, IGNORE_INDEX elsewhere (MLM objectives);
                     None when the data carries no MLM targets (``data.masking: none``).
    sentence_labels: (B,) long, Hugging Face's NSP/SOP convention: 0 = B really follows A (NSP) / the
                     two segments are in their original order (SOP); 1 = B is random / swapped. Or None.
    class_labels:    (B,) long (classification) or float (regression), or None.
    row_index:       (B,) long, each row's position in the task's training set (``iterate_batches``), for
                     per-row lookups such as distillation's teacher-output cache; None elsewhere.
    targets:         a task type's own targets by name (QA: start_positions, end_positions (B,) long).
    extras:          batch features by name (``data.features``, data/features.py), for the objective or add-on
                     that asked for them; a value is a tensor or has ``.to(device, non_blocking=...)``.
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    token_type_ids: torch.Tensor
    labels: torch.Tensor | None = None
    sentence_labels: torch.Tensor | None = None
    class_labels: torch.Tensor | None = None
    row_index: torch.Tensor | None = None
    targets: dict[str, torch.Tensor] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Batch:
        def move(value):
            if isinstance(value, dict):
                return {key: move(item) for key, item in value.items()}
            moves = isinstance(value, torch.Tensor) or callable(getattr(value, "to", None))
            return value.to(device, non_blocking=non_blocking) if moves else value

        return dataclasses.replace(self, **{f.name: move(getattr(self, f.name)) for f in dataclasses.fields(self)})

    @property
    def num_tokens(self) -> int:
        """Real (non-pad) tokens in the batch; used for tokens/s."""
        return int(self.attention_mask.sum())

    def __len__(self) -> int:
        return self.input_ids.shape[0]
