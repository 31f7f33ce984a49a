"""The pretraining data stream: prepared dataset -> masked instances -> ``leanbert.batch.Batch``.

Stable API for the trainer::

    from leanbert.data import DataConfig, build_loader, resolve_tokenizer

    tokenizer = resolve_tokenizer(data_config)            # TokenizerInfo: vocab_size, pad_id, mask_id, ...
    loader = build_loader(data_config, tokenizer, batch_size=32, split="train", seed=0,
                          rank=0, world_size=1)          # PretrainStream (a torch IterableDataset)
    for batch in loader:                                  # Batch(input_ids, attention_mask, token_type_ids,
        ...                                               #       labels, sentence_labels), all (B, seq_len)
        state = loader.state_dict()                       # position after this batch; JSON-serializable
    loader.load_state_dict(state)                         # a new loader continues with the exact next batch

``build_loader(config, tokenizer=None, batch_size=32, split="train", seed=0, rank=0, world_size=1, *,
shuffle=None, loop=None, drop_last=None, prefetch=2)``:

* ``split="train"``: shuffled, endless (epoch after epoch; ``loader.epoch`` says which), last partial batch
  dropped. ``split="valid"``: the ``config.valid_split`` split of ``config.valid_path or config.path``, in
  order, one pass per ``iter()`` (each new pass starts over), the last partial batch kept, the same masks
  every time (epoch 0).
* Batches are built in the calling process by one background thread that keeps ``prefetch`` batches ready;
  do not wrap the stream in a multi-worker DataLoader (the saved position would be wrong). Call
  ``load_state_dict`` before starting to iterate; a new ``iter(loader)`` starts at the saved position.
* Every batch has shape (batch_size, seq_len) (padding to seq_len); ``labels`` is IGNORE_INDEX (-100) except
  at MLM targets (``labels`` is None with ``config.masking == "none"``: uncorrupted sequences, no targets); ``sentence_labels`` is set only with ``config.pairs`` sop/nsp (0 = in order / real next,
  1 = swapped / random); ``token_type_ids`` is 0 for [CLS] A [SEP] and 1 for B [SEP].
* Deterministic given (seed, epoch, rank, world_size): rank r of W reads instances r, r+W, r+2W, ... of the
  epoch's permutation, so ranks are disjoint and every rank has the same number of batches per epoch.
* ``len(loader)`` = batches per epoch for this rank.
* ``config.features``: each batch also carries ``extras[name]`` for every named feature, from the producer
  registered for it (data/features.py), computed on the uncorrupted sequences; a pure function of them, so
  determinism and resume are unchanged. The valid split uses the producers built for ``config.path``.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import IterableDataset

from leanbert.batch import Batch
from leanbert.data.config import DataConfig
from leanbert.data.features import FeatureProducer, build_producers
from leanbert.data.instances import PackedPlan, PairPlan
from leanbert.data.masking import Masker
from leanbert.data.shards import PreparedDataset, open_dataset
from leanbert.data.tokenizer import TokenizerInfo, load_tokenizer
from leanbert.errors import UserError

_PLAN_STREAM = 0x9A1  # RNG stream ids keep plan, order and per-instance randomness independent
_ORDER_STREAM = 0x0D3
_BATCH_STREAM = 0xB47


def resolve_tokenizer(config: DataConfig) -> TokenizerInfo:
    """The tokenizer for ``config``: ``config.tokenizer`` or the copy inside the prepared dataset."""
    if not config.path:
        raise UserError("data.path is required: a dataset directory made by `leanbert prepare`")
    directory = Path(config.tokenizer) if config.tokenizer else Path(config.path) / "tokenizer"
    return load_tokenizer(directory)


class PretrainStream(IterableDataset):
    """Endless (or one-pass) stream of ``Batch`` over one split; see the module docstring."""

    def __init__(self, dataset: PreparedDataset, split: str, tokenizer: TokenizerInfo, config: DataConfig,
                 batch_size: int, seed: int = 0, rank: int = 0, world_size: int = 1, shuffle: bool = True,
                 loop: bool = True, drop_last: bool = True, prefetch: int = 2):
        if batch_size < 1:
            raise UserError(f"batch_size={batch_size} must be >= 1")
        if not 0 <= rank < world_size:
            raise UserError(f"rank={rank} must be in [0, world_size={world_size})")
        self.dataset, self.split, self.tokenizer, self.config = dataset, split, tokenizer, config
        self.batch_size, self.seed, self.rank, self.world_size = batch_size, seed, rank, world_size
        self.shuffle, self.loop, self.drop_last, self.prefetch = shuffle, loop, drop_last, prefetch
        self.shards = dataset.split(split)
        if config.pairs == "none":
            self.plan: PackedPlan | PairPlan = PackedPlan(self.shards, config.seq_len)
        else:
            self.plan = PairPlan(self.shards, config.seq_len, config.short_seq_prob,
                                 np.random.default_rng([seed, _PLAN_STREAM]))
        # masking "none": the packed sequences as they are, no MLM targets (distillation on raw text)
        self.masker = None if config.masking == "none" else Masker.from_config(config, tokenizer)
        self.features: dict[str, FeatureProducer] = build_producers(config, tokenizer)
        self.per_rank = len(self.plan) // world_size
        if drop_last:
            self.batches_per_epoch = self.per_rank // batch_size
        else:
            self.batches_per_epoch = -(-self.per_rank // batch_size)
        if self.batches_per_epoch == 0:
            raise UserError(f"{dataset.directory} ({split}): {len(self.plan)} instances of seq_len "
                            f"{config.seq_len} are too few for {world_size} rank(s) x batch_size {batch_size}")
        self.epoch = 0
        self.batch = 0  # next batch to produce within the epoch
        self._order: tuple[int, np.ndarray] | None = None

    def __len__(self) -> int:
        return self.batches_per_epoch

    # --- position -----------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "batch": self.batch, "seed": self.seed, "rank": self.rank,
                "world_size": self.world_size, "batch_size": self.batch_size, "split": self.split,
                "num_instances": len(self.plan), "fingerprint": self.tokenizer.fingerprint}

    def load_state_dict(self, state: dict) -> None:
        for key in ("seed", "world_size", "batch_size", "split", "num_instances", "fingerprint"):
            if key in state and state[key] != self.state_dict()[key]:
                raise UserError(f"cannot resume the data stream: saved {key}={state[key]!r} but this run has "
                                f"{self.state_dict()[key]!r}; the exact next batch would differ")
        self.epoch, self.batch = int(state["epoch"]), int(state["batch"])

    # --- building -----------------------------------------------------------------------------------------
    def _epoch_order(self, epoch: int) -> np.ndarray:
        if self._order is None or self._order[0] != epoch:
            if self.shuffle:
                order = np.random.default_rng([self.seed, _ORDER_STREAM, epoch]).permutation(len(self.plan))
            else:
                order = np.arange(len(self.plan))
            self._order = (epoch, order[self.rank::self.world_size][:self.per_rank])
        return self._order[1]

    def raw_instance(self, epoch: int, index: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, int]:
        """Instance ``index`` of the plan before masking: ids (n,) with [CLS]/[SEP], token types (n,), and the
        sentence label (-1 without pairs)."""
        t = self.tokenizer
        if isinstance(self.plan, PackedPlan):
            parts = [np.array([t.cls_id])]
            for segment in self.plan.segments(self.shards, index):
                parts += [segment, np.array([t.sep_id])]
            ids = np.concatenate(parts)
            return ids, np.zeros(len(ids), dtype=np.int64), -1
        a, b, label = self.plan.pair(self.shards, index, self.config.pairs, rng)
        ids = np.concatenate(([t.cls_id], a, [t.sep_id], b, [t.sep_id]))
        types = np.zeros(len(ids), dtype=np.int64)
        types[len(a) + 2:] = 1
        return ids, types, label

    def make_batch(self, epoch: int, batch: int) -> Batch:
        """Batch ``batch`` of ``epoch`` for this rank: a pure function of them (and seed, rank, world size)."""
        order = self._epoch_order(epoch)
        picked = order[batch * self.batch_size:(batch + 1) * self.batch_size].tolist()
        # one generator per batch (creating one costs ~20 us): keyed by everything that defines the batch
        rng = np.random.default_rng([self.seed, _BATCH_STREAM, epoch, self.rank, self.world_size, batch])
        t = self.tokenizer
        seq_len = self.config.seq_len
        ids = np.full((len(picked), seq_len), t.pad_id, dtype=np.int64)  # (B, T)
        types = np.zeros((len(picked), seq_len), dtype=np.int64)  # (B, T)
        lengths = np.zeros(len(picked), dtype=np.int64)
        sentence = []
        for row, index in enumerate(picked):
            row_ids, row_types, label = self.raw_instance(epoch, index, rng)
            n = len(row_ids)
            ids[row, :n] = row_ids
            types[row, :n] = row_types
            lengths[row] = n
            sentence.append(label)
        attention = (np.arange(seq_len)[None, :] < lengths[:, None]).astype(np.int64)  # (B, T)
        labels = None
        extras = {name: produce(ids) for name, produce in self.features.items()}  # before masking
        if self.masker is not None:  # masking draws come after the instances': "none" sees the same sequences
            maskable = ~t.is_special[ids]  # (B, T) padding and specials are never masked
            ids, labels = self.masker.mask_batch(ids, maskable, rng)
        return Batch(
            input_ids=torch.from_numpy(ids),  # (B, T)
            attention_mask=torch.from_numpy(attention),  # (B, T)
            token_type_ids=torch.from_numpy(types),  # (B, T)
            labels=None if labels is None else torch.from_numpy(labels),  # (B, T)
            sentence_labels=None if self.config.pairs == "none" else torch.tensor(sentence),  # (B,)
            extras=extras,
        )

    def _positions(self) -> Iterator[tuple[int, int]]:
        """(epoch, batch) from the saved position on: one pass, or endless when looping."""
        epoch, batch = self.epoch, self.batch
        while True:
            if batch >= self.batches_per_epoch:
                if not self.loop:
                    return
                epoch, batch = epoch + 1, 0
            yield epoch, batch
            batch += 1

    def __iter__(self) -> Iterator[Batch]:
        """Batches from the saved position on. A background thread builds the next ``prefetch`` batches while
        the caller trains (numpy and the caller's torch ops release the GIL); the result does not depend on it."""
        if not self.loop and self.batch >= self.batches_per_epoch:
            self.batch = 0  # a finished one-pass stream (validation) starts a new pass
        positions = self._positions()
        if self.prefetch <= 0:
            for epoch, batch in positions:
                self.epoch, self.batch = epoch, batch + 1  # the saved position names the next batch
                yield self.make_batch(epoch, batch)
            return
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="leanbert-data")
        pending: deque = deque()
        try:
            for position in itertools.islice(positions, self.prefetch):
                pending.append((position, pool.submit(self.make_batch, *position)))
            while pending:
                (epoch, batch), future = pending.popleft()
                for position in itertools.islice(positions, 1):
                    pending.append((position, pool.submit(self.make_batch, *position)))
                result = future.result()
                self.epoch, self.batch = epoch, batch + 1
                yield result
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def build_loader(config: DataConfig, tokenizer: TokenizerInfo | None = None, batch_size: int = 32,
                 split: str = "train", seed: int = 0, rank: int = 0, world_size: int = 1, *,
                 shuffle: bool | None = None, loop: bool | None = None, drop_last: bool | None = None,
                 prefetch: int = 2) -> PretrainStream:
    """A ``PretrainStream`` for ``split`` ("train" or "valid"); refuses a tokenizer the dataset was not made
    with. Defaults: train = shuffled, endless, drop last; valid = in order, one pass, keep last."""
    if split not in ("train", "valid"):
        raise UserError(f"split={split!r} must be 'train' or 'valid'")
    if tokenizer is None:
        tokenizer = resolve_tokenizer(config)
    if split == "train":
        if not config.path:
            raise UserError("data.path is required: a dataset directory made by `leanbert prepare`")
        directory, split_name = config.path, "train"
    else:
        if not config.valid_split:
            raise UserError("no validation data: data.valid_split is empty")
        directory, split_name = config.valid_path or config.path, config.valid_split
        if not directory:
            raise UserError("data.path is required: a dataset directory made by `leanbert prepare`")
    dataset = open_dataset(directory, fingerprint=tokenizer.fingerprint)
    is_train = split == "train"
    return PretrainStream(dataset, split_name, tokenizer, config, batch_size, seed, rank, world_size,
                          shuffle=is_train if shuffle is None else shuffle,
                          loop=is_train if loop is None else loop,
                          drop_last=is_train if drop_last is None else drop_last, prefetch=prefetch)
