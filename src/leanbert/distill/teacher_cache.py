"""The frozen teacher's outputs for every training row of a task distillation, computed once.

The task stage used to run the teacher on every step, though its outputs for a row never change: for a
6-layer teacher and a 2-layer student that is about as much compute as the student's forward and backward
together. Here one batched inference pass (``torch.inference_mode``, rows sorted by length so batches carry
little padding) computes, for each row:

* the prediction logits (C floats; always kept);
* the intermediate features the configured layer matches read (hidden states / embeddings: T_i x H floats
  per matched layer; attention scores: heads x T_i x T_i), kept only when they fit ``budget_mb`` on disk,
  otherwise the teacher recomputes them at each step (the logits are still served from the cache).

Files (numpy ``.npy``, read memory-mapped, never pickled; written to a temporary sibling and renamed)::

    OUT/teacher-cache/meta.json        the key below, shapes, which features are stored
    OUT/teacher-cache/logits.npy       (N, C) float32, row order of the training set
    OUT/teacher-cache/offsets.npy      (N + 1,) int64 token offsets of each row (features only)
    OUT/teacher-cache/<feature>-<layer>.npy   (sum T_i, H) or (sum heads * T_i^2,) float32

The key: the teacher's sha256 (``module_fingerprint``), a sha256 over every row's token and segment ids in
order, the maximum sequence length and the stored features. A run whose key differs (other teacher weights,
other rows, another max length) recomputes the cache; an equal key reuses it across epochs, seeds and a
rerun into the same OUT_DIR (``--overwrite``).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from leanbert.atomic import write_dir_atomically, write_json_atomically
from leanbert.distill.matches import LayerMatch
from leanbert.model.model import LeanBertModel
from leanbert.tasks.encode import Collator, Features
from leanbert.train.frozen import module_fingerprint

CACHE_DIR = "teacher-cache"
FORMAT_VERSION = 1
FeatureKey = tuple[str, int]  # (embedding | hidden | attention, teacher layer)


def rows_fingerprint(rows: Sequence[Features]) -> str:
    """sha256 over every row's length, token ids and segment ids, in order."""
    digest = hashlib.sha256()
    for row in rows:
        digest.update(np.int64(row.input_ids.shape[0]).tobytes())
        digest.update(np.ascontiguousarray(row.input_ids, dtype=np.int64).tobytes())
        digest.update(np.ascontiguousarray(row.token_type_ids, dtype=np.int64).tobytes())
    return digest.hexdigest()


def needed_features(matches: Sequence[LayerMatch]) -> list[FeatureKey]:
    """The teacher features the matches read, each once (the embedding output is hidden state 0)."""
    keys = {("hidden", 0) if m.feature == "embedding" else (m.feature, m.teacher) for m in matches}
    return sorted(keys)


def feature_bytes(rows: Sequence[Features], teacher: LeanBertModel, features: Sequence[FeatureKey]) -> int:
    """Bytes the features take as float32."""
    lengths = np.array([row.input_ids.shape[0] for row in rows], dtype=np.int64)
    per_hidden = int(lengths.sum()) * teacher.config.hidden_size
    per_attention = int((lengths ** 2).sum()) * teacher.config.num_heads
    return 4 * sum(per_attention if f == "attention" else per_hidden for f, _ in features)


@dataclass
class CachedOutputs:
    """What ``TransformerDistillation`` reads from a teacher output: logits (B, C), hidden states indexed by
    layer (B, T, H) and attention scores indexed by layer - 1 (B, h, T, T); layers not cached are None."""

    logits: torch.Tensor | None
    hidden_states: list[torch.Tensor | None] | None = None
    attention_scores: list[torch.Tensor | None] | None = None


class TeacherCache:
    """A cache directory opened memory-mapped. ``outputs(batch)`` serves a batch's rows."""

    def __init__(self, directory: Path, meta: dict[str, Any]):
        self.directory, self.meta = directory, meta
        self.logits = np.load(directory / "logits.npy", mmap_mode="r", allow_pickle=False)
        self.features: dict[FeatureKey, np.ndarray] = {}
        for feature, layer in (tuple(k) for k in meta["key"]["stored_features"]):
            self.features[(feature, layer)] = np.load(directory / f"{feature}-{layer}.npy", mmap_mode="r",
                                                      allow_pickle=False)
        self.offsets = (np.load(directory / "offsets.npy", allow_pickle=False) if self.features else None)
        self.num_layers, self.num_heads = meta["teacher_layers"], meta["teacher_heads"]

    def covers(self, features: Sequence[FeatureKey]) -> bool:
        return all(tuple(f) in self.features for f in features)

    def outputs(self, row_index: torch.Tensor, width: int, features: Sequence[FeatureKey]) -> CachedOutputs:
        """The cached outputs of rows ``row_index`` (B,), features padded to ``width`` tokens with zeros (the
        losses never read padded positions)."""
        rows = row_index.cpu().numpy()
        logits = torch.from_numpy(np.ascontiguousarray(self.logits[rows]))  # (B, C)
        if not features:
            return CachedOutputs(logits)
        hidden: list[torch.Tensor | None] = [None] * (self.num_layers + 1)
        scores: list[torch.Tensor | None] = [None] * self.num_layers
        for feature, layer in features:
            if feature == "attention":
                scores[layer - 1] = self._attention(rows, layer, width)
            else:
                hidden[layer] = self._hidden(rows, layer, width)
        return CachedOutputs(logits, hidden, scores)

    def _hidden(self, rows: np.ndarray, layer: int, width: int) -> torch.Tensor:
        table = self.features[("hidden", layer)]
        out = np.zeros((len(rows), width, table.shape[1]), dtype=np.float32)  # (B, T, H)
        for i, row in enumerate(rows):
            start, end = self.offsets[row], self.offsets[row + 1]
            out[i, : end - start] = table[start:end]
        return torch.from_numpy(out)

    def _attention(self, rows: np.ndarray, layer: int, width: int) -> torch.Tensor:
        table, heads = self.features[("attention", layer)], self.num_heads
        out = np.zeros((len(rows), heads, width, width), dtype=np.float32)  # (B, h, T, T)
        squares = np.concatenate([[0], np.cumsum(np.diff(self.offsets) ** 2 * heads)])
        for i, row in enumerate(rows):
            length = int(self.offsets[row + 1] - self.offsets[row])
            block = table[squares[row]:squares[row + 1]].reshape(heads, length, length)
            out[i, :, :length, :length] = block
        return torch.from_numpy(out)


def cache_key(teacher: LeanBertModel, rows: Sequence[Features], max_seq_len: int,
              features: Sequence[FeatureKey]) -> dict[str, Any]:
    return {"version": FORMAT_VERSION, "teacher_sha256": module_fingerprint(teacher),
            "rows_sha256": rows_fingerprint(rows), "rows": len(rows), "max_seq_len": max_seq_len,
            "stored_features": [list(f) for f in features]}


def open_cache(directory: Path, key: dict[str, Any]) -> TeacherCache | None:
    """The cache in ``directory`` when its key equals ``key``, else None (absent, stale or unreadable)."""
    try:
        meta = json.loads((directory / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict) or meta.get("key") != key:
        return None
    try:
        return TeacherCache(directory, meta)
    except (OSError, ValueError, KeyError):
        return None


@torch.inference_mode()
def _inference_pass(teacher: LeanBertModel, rows: Sequence[Features], collator: Collator, batch_size: int,
                    features: Sequence[FeatureKey], sinks: dict[str, np.ndarray], offsets: np.ndarray,
                    progress: bool = False) -> None:
    """Run ``teacher`` over ``rows`` in length-sorted batches and write into the ``sinks`` arrays."""
    teacher.eval()
    order = np.argsort([row.input_ids.shape[0] for row in rows], kind="stable")
    hidden = any(f != "attention" for f, _ in features)
    scores = any(f == "attention" for f, _ in features)
    heads = teacher.config.num_heads
    square_offsets = np.concatenate([[0], np.cumsum(np.diff(offsets) ** 2 * heads)]) if scores else None
    bar = tqdm(total=len(rows), desc="teacher cache", unit="row", disable=not progress)
    for start in range(0, len(order), batch_size):
        chosen = order[start:start + batch_size]
        bar.update(len(chosen))
        batch = collator([rows[i] for i in chosen])
        out = teacher(batch.input_ids, batch.attention_mask, batch.token_type_ids, output_hidden_states=hidden,
                      output_attention_scores=scores)
        sinks["logits"][chosen] = out.logits.float().numpy()  # (B, C)
        for feature, layer in features:
            name = f"{feature}-{layer}"
            for i, row in enumerate(chosen):
                length = rows[row].input_ids.shape[0]
                if feature == "attention":
                    block = out.attention_scores[layer - 1][i, :, :length, :length]  # (h, T_i, T_i)
                    sinks[name][square_offsets[row]:square_offsets[row + 1]] = block.float().reshape(-1).numpy()
                else:
                    sinks[name][offsets[row]:offsets[row + 1]] = out.hidden_states[layer][i, :length].float().numpy()
    bar.close()


def build_cache(directory: Path, teacher: LeanBertModel, rows: Sequence[Features], collator: Collator,
                key: dict[str, Any], batch_size: int = 128, progress: bool = False) -> TeacherCache:
    """Compute the cache for ``key`` into ``directory`` (replacing what is there, atomically) and open it."""
    features = [tuple(f) for f in key["stored_features"]]
    meta = {"key": key, "teacher_layers": teacher.config.num_layers, "teacher_heads": teacher.config.num_heads,
            "num_labels": teacher.config.num_labels}

    def fill(tmp: Path) -> None:
        lengths = np.array([row.input_ids.shape[0] for row in rows], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        sinks = {"logits": np.lib.format.open_memmap(tmp / "logits.npy", "w+", np.float32,
                                                     (len(rows), teacher.config.num_labels))}
        for feature, layer in features:
            size = ((int((lengths ** 2).sum()) * teacher.config.num_heads,) if feature == "attention"
                    else (int(lengths.sum()), teacher.config.hidden_size))
            sinks[f"{feature}-{layer}"] = np.lib.format.open_memmap(tmp / f"{feature}-{layer}.npy", "w+",
                                                                     np.float32, size)
        _inference_pass(teacher, rows, collator, batch_size, features, sinks, offsets, progress)
        for array in sinks.values():
            array.flush()
        del sinks
        if features:
            np.save(tmp / "offsets.npy", offsets, allow_pickle=False)
        write_json_atomically(tmp / "meta.json", meta)

    write_dir_atomically(directory, fill)
    return TeacherCache(directory, meta)


def _link_or_copy(source: Path, target: Path) -> None:
    """``target`` as a copy of the cache directory ``source``: hard links where the file system allows (no
    bytes copied, and the source stays untouched)."""

    def fill(tmp: Path) -> None:
        for path in source.iterdir():
            try:
                os.link(path, tmp / path.name)
            except OSError:
                shutil.copy2(path, tmp / path.name)

    write_dir_atomically(target, fill)


def prepare_cache(teacher: LeanBertModel, rows: Sequence[Features], collator: Collator, max_seq_len: int,
                  matches: Sequence[LayerMatch], budget_mb: float, target: Path, previous: Path | None = None,
                  batch_size: int = 128, log: Callable[[str], Any] = print,
                  progress: bool = False) -> tuple[TeacherCache, dict[str, Any]]:
    """The cache for these rows in ``target``: taken from ``previous`` (an earlier run's cache directory) when
    its key matches, else computed. Features the ``matches`` read are stored when they fit ``budget_mb``.
    Returns the cache and what metrics.json records about it."""
    wanted = needed_features(matches)
    size_mb = feature_bytes(rows, teacher, wanted) / 1e6
    stored = wanted if size_mb <= budget_mb else []
    start = time.perf_counter()
    key = cache_key(teacher, rows, max_seq_len, stored)
    old = open_cache(previous, key) if previous is not None and previous.is_dir() else None
    if old is not None:
        _link_or_copy(previous, target)
        cache = open_cache(target, key)
        reused = cache is not None
    if old is None or cache is None:
        cache, reused = build_cache(target, teacher, rows, collator, key, batch_size, progress), False
    info = {"rows": len(rows), "reused": reused, "seconds": round(time.perf_counter() - start, 2),
            "features_cached": [list(f) for f in stored],
            "features_recomputed": [list(f) for f in wanted if f not in stored],
            "features_mb": round(size_mb, 1), "budget_mb": budget_mb,
            "teacher_sha256": key["teacher_sha256"][:16]}
    where = "reused from " + str(previous) if reused else f"computed in {info['seconds']:.1f}s"
    extra = (f"; features {', '.join(f'{f}-{n}' for f, n in stored)} ({size_mb:.0f} MB)" if stored else
             f"; features recomputed per step ({size_mb:.0f} MB > budget {budget_mb:g} MB)" if wanted else "")
    log(f"teacher-output cache: {len(rows):,} rows, {where}{extra}")
    return cache, info
