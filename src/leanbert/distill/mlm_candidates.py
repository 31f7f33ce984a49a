"""Replacement candidates from a masked language model, batched (TinyBERT's data_augmentation.py runs one
forward per word at batch size 1).

For a word that the model's tokenizer keeps as one piece, the input is TinyBERT's
``[CLS] text-with-the-word-masked [SEP] original text [SEP]`` (segments 0 and 1): the model sees the word it
replaces, so its predictions stay close in meaning. A text too long for that pair is given as one segment, a
window of pieces around the mask. Candidates are the top-K predictions among whole, alphabetic, non-special
vocabulary entries, the word itself excluded ("##" pieces are dropped, as in the reference).
"""

from __future__ import annotations

import json
import re
import tempfile
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from leanbert.data.tokenizer import TokenizerInfo, load_tokenizer
from leanbert.errors import UserError
from leanbert.interop.hf import import_from_hf
from leanbert.model.model import LeanBertModel
from leanbert.model_dir import CONFIG_NAME, FORMAT, load_model

_ALPHABETIC = re.compile(r"^[A-Za-z]+$")
_WORD_MARKERS = ("\u2581", "\u0120")  # Metaspace "▁", byte-level "Ġ"
_SEARCH_ORDER = ("", "model/generator", "generator", "model")


@dataclass(frozen=True)
class MaskRequest:
    """Predict the word at piece ``position`` of ``ids`` (a text's pieces, no special tokens)."""

    ids: tuple[int, ...]
    position: int


def _read_kind(directory: Path) -> str | None:
    """"leanbert" / "hf" from a config.json, or None when there is none (or it is neither)."""
    path = directory / CONFIG_NAME
    if not path.is_file():
        return None
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UserError(f"{path}: not valid JSON ({err})") from None
    if isinstance(meta, dict) and meta.get("format") == FORMAT:
        return "leanbert"
    if isinstance(meta, dict) and "model_type" in meta:
        return "hf"
    return None


def load_mlm(path: str | Path, stack: ExitStack, log=print) -> tuple[LeanBertModel, TokenizerInfo]:
    """An MLM and its tokenizer from a leanbert model directory with an ``mlm`` head, a pretraining run (an
    ELECTRA run's generator), or a local Hugging Face directory (imported into a temporary directory that
    ``stack`` removes)."""
    root = Path(path)
    if not root.is_dir():
        raise UserError(f"--mlm {root}: no such directory (expected a leanbert model directory with an MLM head, "
                        "a pretraining run, or a local Hugging Face BERT/ALBERT/ELECTRA MLM directory)")
    without_mlm = None
    for sub in _SEARCH_ORDER:
        directory = root / sub if sub else root
        kind = _read_kind(directory)
        if kind is None:
            continue
        shown = directory  # the user's path, not the temporary import
        if kind == "hf":
            log(f"importing the Hugging Face model {directory}")
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="leanbert-augment-")))
            directory = import_from_hf(directory, tmp / "imported")
        model = load_model(directory)
        if "mlm" not in model.config.heads:  # e.g. a run's discriminator: look further for its generator
            without_mlm = without_mlm or (shown, model.config.heads)
            continue
        if shown != root:
            log(f"using the MLM in {shown}")
        return model, load_tokenizer(directory)
    if without_mlm is not None:
        directory, heads = without_mlm
        raise UserError(f"--mlm {directory}: the model has no MLM head (heads: {', '.join(heads) or 'none'}); "
                        "give a model pretrained with an MLM (an ELECTRA run's generator works)")
    raise UserError(f"--mlm {root}: found no model here or in {', '.join(s for s in _SEARCH_ORDER if s)} "
                    "(expected a config.json)")


class MlmCandidates:
    """Top-K replacement words from ``model`` (an MLM head) for masked single-piece words, in batches."""

    def __init__(self, model: LeanBertModel, tokenizer: TokenizerInfo, top_k: int, batch_size: int = 64):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.top_k = top_k
        self.batch_size = batch_size
        config = model.config
        self.max_positions = config.max_positions
        self.use_pairs = config.type_vocab_size >= 2
        self.surfaces, self.valid = self._vocabulary(config.vocab_size)
        self.device = next(model.parameters()).device

    def _vocabulary(self, model_vocab: int) -> tuple[list[str], torch.Tensor]:
        """Each id's word (its word-start marker removed) and (V,) bool: may it replace a word?"""
        info = self.tokenizer
        surfaces = [""] * model_vocab
        valid = np.zeros(model_vocab, dtype=bool)
        for token, i in info.tokenizer.get_vocab(with_added_tokens=True).items():
            if i >= model_vocab or info.is_special[i] or not info.word_start[i]:
                continue
            word = token[1:] if token[:1] in _WORD_MARKERS else token
            surfaces[i] = word
            valid[i] = bool(_ALPHABETIC.match(word))
        return surfaces, torch.from_numpy(valid)

    def encode(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        """The text's piece ids and character offsets (no special tokens)."""
        encoding = self.tokenizer.tokenizer.encode(text, add_special_tokens=False)
        return list(encoding.ids), list(encoding.offsets)

    def single_piece(self, ids: list[int], offsets: list[tuple[int, int]], start: int, end: int) -> int | None:
        """The index of the one piece that spells the word text[start:end], or None when the word takes
        several pieces, is unknown to the vocabulary ([UNK]) or shares a piece with a neighbour. A leading
        space inside the piece is allowed (Metaspace pieces may cover it)."""
        overlapping = [i for i, (a, b) in enumerate(offsets) if b > start and a < end]
        if len(overlapping) != 1 or ids[overlapping[0]] == self.tokenizer.unk_id:
            return None
        a, b = offsets[overlapping[0]]
        return overlapping[0] if a >= start - 1 and b <= end else None

    def _input(self, request: MaskRequest) -> tuple[list[int], list[int], int]:
        """(ids, token types, mask position) of one request, within the model's positions."""
        info = self.tokenizer
        ids = list(request.ids)
        masked = ids.copy()
        masked[request.position] = info.mask_id
        n = len(ids)
        if self.use_pairs and 2 * n + 3 <= self.max_positions:
            tokens = [info.cls_id, *masked, info.sep_id, *ids, info.sep_id]
            types = [0] * (n + 2) + [1] * (n + 1)
            return tokens, types, request.position + 1
        width = min(n, self.max_positions - 2)
        first = min(max(request.position - width // 2, 0), n - width)
        tokens = [info.cls_id, *masked[first:first + width], info.sep_id]
        return tokens, [0] * len(tokens), request.position - first + 1

    @torch.no_grad()
    def candidates(self, requests: list[MaskRequest], words: list[str]) -> list[list[str]]:
        """For each request, the top-K words (best first) for its masked piece, ``words[i]`` excluded
        (case-insensitive). Requests are sorted by length so batches pad little."""
        results: list[list[str]] = [[] for _ in requests]
        built = [self._input(r) for r in requests]
        order = sorted(range(len(requests)), key=lambda i: len(built[i][0]))
        pad = self.tokenizer.pad_id
        for start in range(0, len(order), self.batch_size):
            chunk = order[start:start + self.batch_size]
            length = max(len(built[i][0]) for i in chunk)
            ids = torch.full((len(chunk), length), pad, dtype=torch.long)  # (b, T)
            types = torch.zeros_like(ids)  # (b, T)
            mask = torch.zeros_like(ids)  # (b, T)
            positions = torch.zeros_like(ids, dtype=torch.bool)  # (b, T): one True per row
            for row, i in enumerate(chunk):
                tokens, token_types, position = built[i]
                ids[row, :len(tokens)] = torch.tensor(tokens)
                types[row, :len(tokens)] = torch.tensor(token_types)
                mask[row, :len(tokens)] = 1
                positions[row, position] = True
            out = self.model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device),
                             token_type_ids=types.to(self.device), mlm_positions=positions.to(self.device))
            logits = out.mlm_logits.float().cpu()  # (b, V), rows in batch order
            logits[:, ~self.valid] = -torch.inf
            take = min(self.top_k + 1, int(self.valid.sum()))
            top = logits.topk(take, dim=-1)
            for row, i in enumerate(chunk):
                own = words[i].lower()
                picked = [self.surfaces[t] for t, s in zip(top.indices[row].tolist(), top.values[row].tolist())
                          if s > -torch.inf and self.surfaces[t].lower() != own]
                results[i] = picked[:self.top_k]
        return results
