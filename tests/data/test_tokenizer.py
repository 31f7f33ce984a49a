"""Tokenizer training and loading: fixed special ids, AutoTokenizer compatibility, CJK, fingerprints."""

from __future__ import annotations

import json

import pytest
from transformers import AutoTokenizer

from leanbert.cli import main
from leanbert.data.tokenizer import SPECIAL_TOKENS, fingerprint_file, load_tokenizer, train_tokenizer
from leanbert.errors import UserError

TEXTS = ["The film's plot is thin, but the acting is superb.", "Anarchism is a political philosophy."]


@pytest.mark.parametrize("kind", ["wordpiece", "unigram"])
def test_special_ids_and_autotokenizer_match(kind, wordpiece_dir, unigram_dir):
    directory = wordpiece_dir if kind == "wordpiece" else unigram_dir
    info = load_tokenizer(directory)
    assert info.kind == kind
    assert [info.pad_id, info.unk_id, info.cls_id, info.sep_id, info.mask_id] == [0, 1, 2, 3, 4]
    assert [info.tokenizer.id_to_token(i) for i in range(5)] == list(SPECIAL_TOKENS)
    hf = AutoTokenizer.from_pretrained(str(directory))
    assert (hf.pad_token_id, hf.cls_token_id, hf.sep_token_id, hf.mask_token_id) == (0, 2, 3, 4)
    for text in TEXTS:
        ours = info.tokenizer.encode(text)
        assert hf(text)["input_ids"] == ours.ids
        assert ours.ids[0] == info.cls_id and ours.ids[-1] == info.sep_id
    pair_ours = info.tokenizer.encode(TEXTS[0], TEXTS[1])
    pair_hf = hf(TEXTS[0], TEXTS[1])
    assert pair_hf["input_ids"] == pair_ours.ids
    assert pair_hf["token_type_ids"] == pair_ours.type_ids
    assert set(pair_ours.type_ids) == {0, 1}


def test_word_start_tables(wordpiece_dir, unigram_dir):
    wp = load_tokenizer(wordpiece_dir)
    vocab = wp.tokenizer.get_vocab()
    assert all(wp.word_start[i] == (not tok.startswith("##")) for tok, i in vocab.items() if tok.isascii())
    assert wp.word_start[:5].all() and wp.is_special[:5].all() and not wp.is_special[5:].any()
    un = load_tokenizer(unigram_dir)
    vocab = un.tokenizer.get_vocab()
    assert all(un.word_start[i] == (tok.startswith("\u2581") or i < 5) for tok, i in vocab.items() if tok.isascii()
               or tok.startswith("\u2581"))
    assert 0 < un.word_start.sum() < len(vocab)


CJK = [
    "東京は日本の首都です。人口は世界で最も多い都市の一つです。",
    "私は毎朝コーヒーを飲みながら新聞を読みます。",
    "北京是中国的首都，有三千多年的历史。",
    "我们明天一起去公园散步吧。",
    "서울은 대한민국의 수도입니다. 한강이 도시를 가로질러 흐릅니다.",
    "오늘은 날씨가 맑고 따뜻합니다.",
]


@pytest.mark.parametrize("kind", ["wordpiece", "unigram"])
def test_cjk_without_spaces(kind, tmp_path):
    corpus = tmp_path / "cjk.txt"
    corpus.write_text("\n\n".join("\n".join(CJK[i:] + CJK[:i]) for i in range(len(CJK))) + "\n", encoding="utf-8")
    out = tmp_path / kind
    info = train_tokenizer([str(corpus)], out, kind=kind, vocab_size=200, min_frequency=1)
    for text in CJK:
        ids = info.encode(text)
        assert info.unk_id not in ids, (text, info.tokenizer.encode(text).tokens)
        assert len(ids) > 3  # segmented, not one piece per sentence
        decoded = info.tokenizer.decode(ids).replace(" ", "")
        assert decoded == info.tokenizer.normalizer.normalize_str(text).replace(" ", "")
    hf = AutoTokenizer.from_pretrained(str(out))
    assert hf(CJK[0])["input_ids"] == info.tokenizer.encode(CJK[0]).ids
    # whole-word masking treats each Chinese/Japanese piece as a word (no spaces to find words by)
    checked = 0
    for text in CJK[:4]:
        for token_id in info.encode(text):
            body = info.tokenizer.id_to_token(token_id).removeprefix("##").removeprefix("\u2581")
            if body and "\u3040" <= body[0] <= "\u9fff":
                assert info.word_start[token_id], info.tokenizer.id_to_token(token_id)
                checked += 1
    assert checked > 20


def test_fingerprint_is_content_based(tmp_path, wordpiece_dir, unigram_dir):
    path = wordpiece_dir / "tokenizer.json"
    copy = tmp_path / "tokenizer.json"
    copy.write_text(json.dumps(json.loads(path.read_text(encoding="utf-8")), indent=4, sort_keys=True),
                    encoding="utf-8")
    assert fingerprint_file(copy) == fingerprint_file(path) == load_tokenizer(wordpiece_dir).fingerprint
    assert fingerprint_file(unigram_dir / "tokenizer.json") != fingerprint_file(path)
    assert len(fingerprint_file(path)) == 64


def test_train_streams_jsonl_gz_and_cli(tmp_path, capsys):
    import gzip
    with gzip.open(tmp_path / "docs.jsonl.gz", "wt", encoding="utf-8") as f:
        for i in range(200):
            f.write(json.dumps({"text": f"document number {i} talks about topic {i % 7}.\nsecond line."}) + "\n")
    assert main(["tokenizer", "train", str(tmp_path / "*.jsonl.gz"), "--out", str(tmp_path / "tok"),
                 "--kind", "wordpiece", "--vocab-size", "120", "--min-frequency", "1"]) == 0
    assert "wordpiece tokenizer with" in capsys.readouterr().out
    assert load_tokenizer(tmp_path / "tok").vocab_size <= 120
    # --max-lines: only the first document (its two lines) is read, so the digit 7 of later ones is unknown
    assert main(["tokenizer", "train", str(tmp_path / "docs.jsonl.gz"), "--out", str(tmp_path / "tok1"),
                 "--vocab-size", "120", "--min-frequency", "1", "--max-lines", "2"]) == 0
    few = load_tokenizer(tmp_path / "tok1")
    assert few.tokenizer.token_to_id("7") is None and few.tokenizer.token_to_id("0") is not None
    assert load_tokenizer(tmp_path / "tok").tokenizer.token_to_id("7") is not None


def test_bad_tokenizer_inputs(tmp_path, capsys):
    with pytest.raises(UserError, match="no tokenizer.json"):
        load_tokenizer(tmp_path)
    (tmp_path / "empty.txt").write_text("")
    assert main(["tokenizer", "train", str(tmp_path / "empty.txt"), "--out", str(tmp_path / "t")]) == 2
    err = capsys.readouterr().err
    assert "empty.txt: empty file" in err and "no text found" in err and "Traceback" not in err
    assert not (tmp_path / "t").exists()
    assert main(["tokenizer", "train", str(tmp_path / "missing.txt"), "--out", str(tmp_path / "t")]) == 2
    assert "missing.txt: no such file" in capsys.readouterr().err
