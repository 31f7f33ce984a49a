"""Examples -> token ids -> padded ``Batch``es for fine-tuning.

Inputs follow BERT: ``[CLS] A [SEP]`` or ``[CLS] A [SEP] B [SEP]`` with token_type_ids 0 for the first
part and 1 for ``B [SEP]``. Texts are tokenized without special tokens and truncated here, with the
"longest_first" rule of Hugging Face's fast tokenizers (the shorter text keeps up to half the budget, the
longer one the rest; on a tie the second text gets the odd token), so the ids equal what
``tokenizer(a, b, truncation=True, max_length=L)`` gives for a BERT tokenizer (tested), for any tokenizer
that has the special tokens, whatever post-processor or truncation its tokenizer.json was saved with.

Batches are padded to their longest row (dynamic padding), not to ``max_seq_len``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tokenizers import Tokenizer
from tqdm import tqdm

from leanbert.batch import Batch
from leanbert.errors import UserError
from leanbert.tasks.glue import Example

_CHUNK = 2048  # examples per tokenizer call: large enough for the Rust batch encoder, small for progress


@dataclass(frozen=True)
class Features:
    """One encoded example: ids with special tokens, segment ids, and the label (index or float)."""

    input_ids: np.ndarray  # (T,) int64
    token_type_ids: np.ndarray  # (T,) int64
    label: int | float


def load_any_tokenizer(path: str | Path) -> Tokenizer | Any:
    """A tokenizer of any kind, ready to encode text, from a directory (or a tokenizer.json file): a
    directory with tokenizer.json gives a ``tokenizers.Tokenizer``; one with only a Hugging Face
    tokenizer_config.json gives a ``transformers`` tokenizer, loaded from local files only. (Pretraining's
    ``data.tokenizer.load_tokenizer`` reads this project's own tokenizer directories with their metadata.)"""
    path = Path(path)
    file = path / "tokenizer.json" if path.is_dir() else path
    if file.is_file() and file.name.endswith(".json"):
        try:
            return Tokenizer.from_file(str(file))
        except Exception as err:  # the Rust loader raises a bare Exception on bad JSON
            raise UserError(f"{file}: not a valid tokenizers JSON file ({err})") from None
    if path.is_dir() and (path / "tokenizer_config.json").is_file():
        from transformers import AutoTokenizer

        try:
            return AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        except Exception as err:  # transformers raises many types for unusable folders
            raise UserError(f"{path}: could not load the tokenizer ({err})") from None
    raise UserError(f"{path}: expected a folder with tokenizer.json (or a Hugging Face tokenizer folder)")


def _special_names(directory: Path | None) -> dict[str, list[str]]:
    """Candidate token strings for cls/sep/pad: the folder's special_tokens_map.json first, then BERT's
    names, then RoBERTa/ALBERT-style ones."""
    names = {"cls": ["[CLS]", "<s>"], "sep": ["[SEP]", "</s>"], "pad": ["[PAD]", "<pad>"]}
    mapping = directory / "special_tokens_map.json" if directory is not None else None
    if mapping is not None and mapping.is_file():
        try:
            data = json.loads(mapping.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as err:
            raise UserError(f"{mapping}: not valid JSON ({err})") from None
        for role in names:
            value = data.get(f"{role}_token") if isinstance(data, dict) else None
            value = value.get("content") if isinstance(value, dict) else value
            if isinstance(value, str):
                names[role].insert(0, value)
    return names


def longest_first_lengths(len_a: int, len_b: int, budget: int) -> tuple[int, int]:
    """Tokens kept of A and B so that their sum is at most ``budget`` (fast tokenizers' longest_first)."""
    if len_a + len_b <= budget:
        return len_a, len_b
    if len_a <= len_b:  # A is the shorter one (or a tie): it keeps up to the floor half
        keep_a = min(len_a, budget // 2)
        return keep_a, budget - keep_a
    keep_b = min(len_b, budget // 2)
    return budget - keep_b, keep_b


class PairEncoder:
    """Turns examples into ``Features`` with a ``tokenizers.Tokenizer`` or a ``transformers`` tokenizer."""

    def __init__(self, tokenizer: Tokenizer | Any, max_seq_len: int, directory: str | Path | None = None):
        if not isinstance(max_seq_len, int) or max_seq_len < 4:
            raise UserError(f"data.max_seq_len={max_seq_len!r} must be an integer >= 4 "
                            "([CLS] A [SEP] B [SEP] needs room for text)")
        self.max_seq_len = max_seq_len
        names = _special_names(Path(directory) if directory is not None else None)
        if isinstance(tokenizer, Tokenizer):
            # A copy without truncation/padding: those would act on each text separately.
            self._fast = Tokenizer.from_str(tokenizer.to_str())
            self._fast.no_truncation()
            self._fast.no_padding()
            self._hf = None
            ids = {role: self._lookup(role, names[role]) for role in names}
        else:
            self._fast = None
            self._hf = tokenizer
            ids = {role: getattr(tokenizer, f"{role}_token_id", None) for role in names}
            for role, value in ids.items():
                if value is None:
                    ids[role] = self._lookup(role, names[role])
        self.cls_id, self.sep_id, self.pad_id = ids["cls"], ids["sep"], ids["pad"]

    @classmethod
    def from_dir(cls, path: str | Path, max_seq_len: int) -> PairEncoder:
        path = Path(path)
        return cls(load_any_tokenizer(path), max_seq_len, path if path.is_dir() else path.parent)

    def _lookup(self, role: str, candidates: list[str]) -> int:
        for name in candidates:
            if self._fast is not None:
                token_id = self._fast.token_to_id(name)
            else:
                token_id = self._hf.convert_tokens_to_ids(name)
                token_id = None if token_id == getattr(self._hf, "unk_token_id", None) else token_id
            if token_id is not None:
                return int(token_id)
        raise UserError(f"the tokenizer has no {role} token (looked for {', '.join(candidates)})")

    def _tokenize(self, texts: list[str]) -> list[list[int]]:
        if self._fast is not None:
            return [e.ids for e in self._fast.encode_batch(texts, add_special_tokens=False)]
        return self._hf(texts, add_special_tokens=False)["input_ids"]

    def encode(self, examples: Sequence[Example], progress: bool = False, desc: str = "tokenize") -> list[Features]:
        """Features of every example, in order."""
        out: list[Features] = []
        with tqdm(total=len(examples), desc=desc, unit="ex", disable=not progress) as bar:
            for start in range(0, len(examples), _CHUNK):
                chunk = examples[start:start + _CHUNK]
                ids_a = self._tokenize([e.text_a for e in chunk])
                pairs = [e.text_b is not None for e in chunk]
                if any(pairs) and not all(pairs):
                    raise ValueError("mixing single texts and text pairs in one task")
                ids_b = self._tokenize([e.text_b for e in chunk]) if pairs[0] else None
                for i, example in enumerate(chunk):
                    out.append(self._build(ids_a[i], ids_b[i] if ids_b is not None else None, example.label))
                bar.update(len(chunk))
        return out

    def _build(self, a: list[int], b: list[int] | None, label: int | float) -> Features:
        if b is None:
            a = a[: self.max_seq_len - 2]
            ids = [self.cls_id, *a, self.sep_id]
            types = [0] * len(ids)
        else:
            keep_a, keep_b = longest_first_lengths(len(a), len(b), self.max_seq_len - 3)
            ids = [self.cls_id, *a[:keep_a], self.sep_id, *b[:keep_b], self.sep_id]
            types = [0] * (keep_a + 2) + [1] * (keep_b + 1)
        return Features(np.asarray(ids, dtype=np.int64), np.asarray(types, dtype=np.int64), label)


def pad_rows(features: Sequence, pad_id: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(input_ids, token_type_ids, attention_mask), each (B, T) long, of rows that carry ``input_ids`` and
    ``token_type_ids`` arrays, padded to the longest row (``pad_id``, type 0, mask 0) - what every task's
    collator starts from."""
    if not features:
        raise ValueError("cannot collate an empty batch")
    width = max(f.input_ids.shape[0] for f in features)
    input_ids = np.full((len(features), width), pad_id, dtype=np.int64)  # (B, T)
    token_types = np.zeros((len(features), width), dtype=np.int64)  # (B, T)
    mask = np.zeros((len(features), width), dtype=np.int64)  # (B, T)
    for row, f in enumerate(features):
        n = f.input_ids.shape[0]
        input_ids[row, :n], token_types[row, :n], mask[row, :n] = f.input_ids, f.token_type_ids, 1
    return torch.from_numpy(input_ids), torch.from_numpy(token_types), torch.from_numpy(mask)


@dataclass(frozen=True)
class Collator:
    """Pads a list of Features to its longest row and stacks them into a Batch (usable as a DataLoader
    ``collate_fn``). class_labels are long for classification and float32 for regression."""

    pad_id: int
    regression: bool = False

    def __call__(self, features: Sequence[Features]) -> Batch:
        input_ids, token_types, mask = pad_rows(features, self.pad_id)
        dtype = torch.float32 if self.regression else torch.long
        labels = torch.tensor([f.label for f in features], dtype=dtype)  # (B,)
        return Batch(input_ids=input_ids, attention_mask=mask, token_type_ids=token_types, class_labels=labels)


def iterate_batches(features: Sequence[Features], batch_size: int, collator: Collator, shuffle: bool = False,
                    seed: int = 0, drop_last: bool = False, rank: int = 0, world_size: int = 1) -> Iterator[Batch]:
    """Batches in file order, or in a seeded random order (a fresh permutation per ``seed``; pass
    ``seed + epoch`` for a new order every epoch).

    Under torchrun (``world_size`` > 1) every rank walks the same batches of ``batch_size`` examples and collates
    its ``rank::world_size`` share, so that together the ranks see what one process would. A last batch smaller
    than the world size is topped up from the start of the order, so that no rank gets an empty batch."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    order = np.random.default_rng(seed).permutation(len(features)) if shuffle else np.arange(len(features))
    stop = len(order) - (len(order) % batch_size if drop_last else 0)
    for start in range(0, stop, batch_size):
        rows = order[start:start + batch_size]
        if len(rows) < world_size:
            rows = np.concatenate([rows, np.resize(order, world_size - len(rows))])
        share = rows[rank::world_size]
        batch = collator([features[i] for i in share])
        if isinstance(batch, Batch):  # (B,) for per-row caches; a custom collator may return anything
            batch.row_index = torch.as_tensor(share, dtype=torch.long)
        yield batch
