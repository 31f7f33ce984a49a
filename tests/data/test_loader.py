"""Instances and the batch stream: packing, SOP/NSP pairs, determinism, ranks, resuming, config checks."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from leanbert.batch import IGNORE_INDEX, Batch
from leanbert.config import ConfigError, from_dict
from leanbert.data import DataConfig, build_loader, load_tokenizer, resolve_tokenizer
from leanbert.errors import UserError

CLS, SEP, PAD = 2, 3, 0


def loader(dataset_dir, batch_size=8, split="train", seed=0, rank=0, world_size=1, prefetch=2, **config):
    return build_loader(DataConfig(path=str(dataset_dir), **config), batch_size=batch_size, split=split,
                        seed=seed, rank=rank, world_size=world_size, prefetch=prefetch)


def take(stream, n):
    it = iter(stream)
    return [next(it) for _ in range(n)]


def same(a: Batch, b: Batch) -> bool:
    return all(torch.equal(x, y) if isinstance(x, torch.Tensor) else x == y
               for x, y in zip((a.input_ids, a.labels, a.token_type_ids, a.attention_mask, a.sentence_labels),
                               (b.input_ids, b.labels, b.token_type_ids, b.attention_mask, b.sentence_labels)))


def test_packed_mlm_batches(dataset_dir):
    stream = loader(dataset_dir, batch_size=16, seq_len=64)
    plan = stream.plan
    # packing covers every token of the split exactly once, in order, never past the sequence capacity
    lengths = plan.instances[:, 2] - plan.instances[:, 1]
    assert lengths.sum() == sum(len(s.tokens) for s in stream.shards)
    assert (plan.instances[1:, 1] == plan.instances[:-1, 2])[plan.instances[1:, 0] == plan.instances[:-1, 0]].all()
    assert lengths.mean() > 0.8 * 62  # sequences are well filled
    for batch in take(stream, 3):
        assert batch.input_ids.shape == (16, 64) and batch.input_ids.dtype == torch.long
        assert batch.sentence_labels is None and (batch.token_type_ids == 0).all()
        for row in range(16):
            n = int(batch.attention_mask[row].sum())
            assert batch.attention_mask[row, :n].all() and not batch.attention_mask[row, n:].any()
            assert batch.input_ids[row, 0] == CLS and batch.input_ids[row, n - 1] == SEP
            assert (batch.input_ids[row, n:] == PAD).all()
        target = batch.labels != IGNORE_INDEX
        assert not target[batch.attention_mask == 0].any()
        assert (batch.input_ids[target] != batch.labels[target]).float().mean() > 0.8  # mostly corrupted


def test_packing_puts_sep_between_documents(dataset_dir):
    stream = loader(dataset_dir, seq_len=128)
    info = stream.tokenizer
    docs_inside = 0
    rng = np.random.default_rng(0)
    for index in range(len(stream.plan)):
        segments = stream.plan.segments(stream.shards, index)
        docs_inside += len(segments) - 1
        ids, types, label = stream.raw_instance(0, index, rng)
        assert ids.tolist() == [info.cls_id] + sum(([*s.tolist(), info.sep_id] for s in segments), [])
        assert len(ids) <= 128 and not types.any() and label == -1
    assert docs_inside > 20  # short movie reviews share sequences


def doc_of(plan, shard, token):
    return int(np.searchsorted(plan.doc_bounds[shard], token, side="right")) - 1


def inside(part: np.ndarray, whole: list[int]) -> bool:
    """``part`` is a contiguous piece of ``whole`` (truncation only trims segment ends)."""
    part = part.tolist()
    return any(whole[i:i + len(part)] == part for i in range(len(whole) - len(part) + 1))


@pytest.mark.parametrize("mode", ["sop", "nsp"])
def test_pairs_labels_and_document_boundaries(dataset_dir, mode):
    stream = loader(dataset_dir, pairs=mode, seq_len=64)
    plan = stream.plan
    for shard, s, c, e, _, _ in plan.instances.tolist():  # A and B come from one document
        assert s < c < e and doc_of(plan, shard, s) == doc_of(plan, shard, e - 1)
    labels = []
    for index in range(len(plan)):
        rng = np.random.default_rng([5, index])
        shard, s, c, e, target, doc = plan.instances[index].tolist()
        tokens = stream.shards[shard].tokens
        a, b, label = plan.pair(stream.shards, index, mode, rng)
        labels.append(label)
        assert 1 <= len(a) and 1 <= len(b) and len(a) + len(b) <= 61
        original_a, original_b = tokens[s:c].tolist(), tokens[c:e].tolist()
        if label == 0:
            assert inside(a, original_a) and inside(b, original_b)
        elif mode == "sop":
            assert inside(a, original_b) and inside(b, original_a)
        else:
            assert inside(a, original_a)
            assert len(b) < 8 or not inside(b, original_b)  # from another document (checked exactly below)
    labels = np.array(labels)
    assert len(labels) > 500 and abs(labels.mean() - 0.5) < 0.06
    batches = take(loader(dataset_dir, pairs=mode, seq_len=64, batch_size=64), 8)
    assert abs(torch.cat([b.sentence_labels for b in batches]).float().mean().item() - 0.5) < 0.06


def test_nsp_random_segment_comes_from_another_document(dataset_dir):
    stream = loader(dataset_dir, pairs="nsp", seq_len=64)
    plan = stream.plan
    rng = np.random.default_rng(0)
    for index in range(200):
        doc = int(plan.instances[index, 5])
        shard, start, end, other = plan.random_segment(stream.shards, doc, 30, rng)
        assert other != doc and 0 < end - start <= 30
        assert doc_of(plan, shard, start) + plan.doc_base[shard] == other
        assert doc_of(plan, shard, end - 1) + plan.doc_base[shard] == other


def test_short_seq_prob_and_token_types(dataset_dir):
    targets = np.concatenate([loader(dataset_dir, pairs="sop", seq_len=128, seed=seed).plan.instances[:, 4]
                              for seed in range(4)])
    short = (targets < 125).mean()  # each instance draws its target; ~4,000 instances: sd of the share 0.005
    assert len(targets) > 3000 and 0.08 < short < 0.12
    stream = loader(dataset_dir, pairs="sop", seq_len=128, short_seq_prob=0.1)
    assert (loader(dataset_dir, pairs="sop", seq_len=128, short_seq_prob=0.0).plan.instances[:, 4] == 125).all()
    batch = take(stream, 1)[0]
    for row in range(len(batch)):
        ids, types = batch.labels[row], batch.token_type_ids[row]
        original = torch.where(ids != IGNORE_INDEX, ids, batch.input_ids[row])
        seps = torch.nonzero(original == SEP).flatten().tolist()
        assert len(seps) == 2 and original[0] == CLS
        assert (types[:seps[0] + 1] == 0).all() and (types[seps[0] + 1:seps[1] + 1] == 1).all()
        assert (types[seps[1] + 1:] == 0).all()
    assert batch.sentence_labels.shape == (len(batch),)


def test_deterministic_and_dynamic_masking(dataset_dir):
    a = take(loader(dataset_dir, seed=3, whole_word=True), 3)
    b = take(loader(dataset_dir, seed=3, whole_word=True, prefetch=0), 3)  # the prefetch thread changes nothing
    c = take(loader(dataset_dir, seed=4, whole_word=True), 3)
    assert all(same(x, y) for x, y in zip(a, b))
    assert not same(a[0], c[0])
    # the same sequence is masked differently in another epoch (dynamic masking)
    stream = loader(dataset_dir, seed=3, batch_size=4)
    index = int(stream._epoch_order(0)[0])
    row1 = int(np.flatnonzero(stream._epoch_order(1) == index)[0])
    first = stream.make_batch(0, 0)
    second = stream.make_batch(1, row1 // 4)
    assert torch.equal(torch.where(first.labels[0] >= 0, first.labels[0], first.input_ids[0]),
                       torch.where(second.labels[row1 % 4] >= 0, second.labels[row1 % 4],
                                   second.input_ids[row1 % 4]))  # same original tokens
    assert not torch.equal(first.labels[0], second.labels[row1 % 4])


def test_ranks_are_disjoint(dataset_dir):
    streams = [loader(dataset_dir, seed=1, rank=r, world_size=3) for r in range(3)]
    orders = [set(s._epoch_order(0).tolist()) for s in streams]
    assert len(orders[0]) == len(orders[1]) == len(orders[2]) == len(streams[0].plan) // 3
    assert not (orders[0] & orders[1]) and not (orders[0] & orders[2]) and not (orders[1] & orders[2])
    assert len(streams[0]) == len(streams[1]) == len(streams[2])
    first = [take(s, 1)[0] for s in streams]
    assert not same(first[0], first[1])
    assert not any(set(streams[0]._epoch_order(1).tolist()) & set(streams[1]._epoch_order(1).tolist()))


@pytest.mark.parametrize("pairs", ["none", "nsp"])
def test_resume_continues_with_the_exact_next_batch_across_epochs(dataset_dir, pairs):
    kwargs = dict(batch_size=64, seed=9, pairs=pairs, seq_len=128, ngram=3)
    stream = loader(dataset_dir, **kwargs)
    per_epoch = len(stream)
    assert 2 <= per_epoch < 40
    it = iter(stream)
    for _ in range(per_epoch - 1):
        next(it)
    state = json.loads(json.dumps(stream.state_dict()))  # survives a JSON checkpoint
    expected = [next(it) for _ in range(3)]  # the last batch of epoch 0, then epoch 1
    assert stream.epoch == 1
    resumed = loader(dataset_dir, **kwargs)
    resumed.load_state_dict(state)
    got = take(resumed, 3)
    assert all(same(x, y) for x, y in zip(expected, got))
    other = loader(dataset_dir, **{**kwargs, "batch_size": 32})
    with pytest.raises(UserError, match="batch_size"):
        other.load_state_dict(state)


def test_valid_split_is_one_ordered_pass(dataset_dir):
    stream = loader(dataset_dir, batch_size=5, split="valid")
    batches = list(stream)
    assert len(batches) == len(stream) and sum(len(b) for b in batches) == len(stream.plan)
    assert all(same(x, y) for x, y in zip(batches, list(loader(dataset_dir, batch_size=5, split="valid"))))
    assert len(batches[-1]) <= 5
    assert all(same(x, y) for x, y in zip(batches, list(stream)))  # each pass over validation starts over


def test_tokenizer_mismatch_is_refused(dataset_dir, unigram_dir):
    config = DataConfig(path=str(dataset_dir))
    assert resolve_tokenizer(config).fingerprint == json.loads(
        (dataset_dir / "manifest.json").read_text())["tokenizer"]["fingerprint"]
    with pytest.raises(UserError, match="prepared with tokenizer"):
        build_loader(config, load_tokenizer(unigram_dir))
    with pytest.raises(UserError, match="prepared with tokenizer"):
        build_loader(DataConfig(path=str(dataset_dir), tokenizer=str(unigram_dir)))


@pytest.mark.parametrize("pairs", ["none", "sop"])
def test_masking_none_yields_the_uncorrupted_sequences_without_labels(dataset_dir, pairs):
    plain = take(loader(dataset_dir, seq_len=64, pairs=pairs, masking="none"), 3)
    masked = take(loader(dataset_dir, seq_len=64, pairs=pairs, masking="bert", whole_word=True), 3)
    for p, m in zip(plain, masked):
        assert p.labels is None
        target = m.labels != IGNORE_INDEX
        assert target.any() and (m.input_ids[target] != m.labels[target]).any()  # bert really corrupted
        original = torch.where(target, m.labels, m.input_ids)  # (B, T) bert's sequences before corruption
        assert torch.equal(p.input_ids, original)
        assert torch.equal(p.attention_mask, m.attention_mask) and torch.equal(p.token_type_ids, m.token_type_ids)
        assert (p.sentence_labels is None) == (pairs == "none")
        if pairs != "none":
            assert torch.equal(p.sentence_labels, m.sentence_labels)


def test_config_validation():
    config = from_dict(DataConfig, {"path": "x", "seq_len": 512, "masking": "electra", "ngram": 3,
                                    "pairs": "sop", "max_predictions": 20})
    assert config.ngram == 3 and config.pairs == "sop"
    for bad, message in (({"masking": "roberta"}, "data.masking"), ({"pairs": "both"}, "data.pairs"),
                         ({"mask_prob": 1.5}, "data.mask_prob"), ({"mask_prob": 0.0}, "data.mask_prob"),
                         ({"seq_len": 4}, "data.seq_len"), ({"ngram": 0}, "data.ngram"),
                         ({"max_predictions": -1}, "data.max_predictions"),
                         ({"short_seq_prob": -0.1}, "data.short_seq_prob"),
                         ({"valid_split": "test"}, "data.valid_split")):
        with pytest.raises(ConfigError, match=message):
            DataConfig(**bad)
    with pytest.raises(ConfigError, match="unknown key"):
        from_dict(DataConfig, {"sequence_length": 128})
    with pytest.raises(UserError, match="data.path is required"):
        build_loader(DataConfig())


def test_too_small_for_the_batch(dataset_dir):
    with pytest.raises(UserError, match="too few"):
        loader(dataset_dir, batch_size=100000)
