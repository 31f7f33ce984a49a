"""``leanbert prepare``: exact tokens and boundaries, determinism, validation split, shards, bad input."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from leanbert.cli import main
from leanbert.data import encode as encode_module
from leanbert.data.encode import LineEncoder
from leanbert.data.prepare import prepare_dataset, valid_mask
from leanbert.data.shards import open_dataset, token_dtype
from leanbert.data.tokenizer import load_tokenizer
from leanbert.errors import UserError


def documents(path: Path) -> list[list[str]]:
    docs, current = [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            current.append(line.strip())
        elif current:
            docs.append(current)
            current = []
    if current:
        docs.append(current)
    return docs


def read_docs(dataset, split: str) -> list[list[list[int]]]:
    out = []
    for shard in dataset.split(split):
        for d in range(shard.num_docs):
            lines = range(int(shard.docs[d]), int(shard.docs[d + 1]))
            out.append([shard.tokens[shard.lines[i]:shard.lines[i + 1]].tolist() for i in lines])
    return out


def test_tokens_lines_and_documents_are_exact(dataset_dir, corpus_dir, wordpiece_dir):
    info = load_tokenizer(wordpiece_dir)
    dataset = open_dataset(dataset_dir, fingerprint=info.fingerprint)
    expected = [[info.encode(line) for line in doc] for name in ("movie-reviews.txt", "wiki-sample.txt")
                for doc in documents(corpus_dir / name)]
    got = read_docs(dataset, "train") + read_docs(dataset, "valid")
    key = [json.dumps(d) for d in expected]
    assert sorted(json.dumps(d) for d in got) == sorted(key)
    manifest = dataset.manifest
    assert manifest["dtype"] == "<u2" and dataset.split("train")[0].tokens.dtype == np.uint16
    assert manifest["num_docs"] == len(expected)
    assert manifest["num_lines"] == sum(len(d) for d in expected)
    assert manifest["num_tokens"] == sum(len(line) for d in expected for line in d)
    assert [Path(s["path"]).name for s in manifest["sources"]] == ["movie-reviews.txt", "wiki-sample.txt"]
    assert sum(s["tokens"] for s in manifest["sources"]) == manifest["num_tokens"]
    assert manifest["tokenizer"]["fingerprint"] == info.fingerprint
    assert sum(manifest["skipped"].values()) == 0
    assert (dataset_dir / "tokenizer" / "tokenizer.json").is_file()


TRICKY = ["text with a literal [SEP] inside", "spaced   out\ttabs", "日本語のテキスト と 中文", "café naïve ´x",
          "no\u00a0break\u2003em space", "control\x1cchar", "combining e\u0301 ﬁ ligature", "ALL CAPS Ünïcödé",
          "word[MASK]glued", "\u00bd \u2460 \uff21\uff22 x\u200by"]


@pytest.mark.parametrize("word_cache", [False, True])
def test_fast_encoding_equals_line_by_line(wordpiece_dir, unigram_dir, corpus_dir, word_cache):
    lines = [x.strip() for x in (corpus_dir / "wiki-sample.txt").read_text().splitlines() if x.strip()][:400]
    for directory in (wordpiece_dir, unigram_dir):
        encoder = LineEncoder(load_tokenizer(directory), word_cache=word_cache, cache_words=500)
        for batch in (lines[:200], TRICKY + lines[200:], TRICKY):  # the cache fills up and is reset
            flat, lengths = encoder.encode(batch)
            assert encoder.joined_ok and encoder.use_cache == word_cache
            ref_flat, ref_lengths = encoder._per_line(batch)
            assert np.array_equal(lengths, ref_lengths) and np.array_equal(flat, ref_flat)
        if word_cache:  # bounded: cleared when over 500 chunks, so it holds only the last batch's chunks
            assert 0 < len(encoder.cache) <= len({w for line in TRICKY for w in line.split(" ")})


def test_validation_split_is_by_document_and_deterministic(dataset_dir):
    manifest = json.loads((dataset_dir / "manifest.json").read_text())
    valid, train = manifest["splits"]["valid"]["num_docs"], manifest["splits"]["train"]["num_docs"]
    assert 0.05 < valid / (valid + train) < 0.16
    mask = valid_mask(np.arange(100000), 0.1)
    assert abs(mask.mean() - 0.1) < 0.005
    assert np.array_equal(mask, valid_mask(np.arange(100000), 0.1))
    assert not valid_mask(np.arange(10), 0.0).any()


def tree_digest(directory: Path) -> dict[str, str]:
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file()}


def test_output_bytes_are_deterministic_and_shards_keep_documents(tmp_path, corpus_dir, wordpiece_dir):
    kwargs = dict(valid_fraction=0.2, shard_tokens=20000, progress=False, batch_chars=5000)
    prepare_dataset([str(corpus_dir)], wordpiece_dir, tmp_path / "a", **kwargs)
    prepare_dataset([str(corpus_dir / "*.txt")], wordpiece_dir, tmp_path / "b", **kwargs)
    prepare_dataset([str(corpus_dir)], wordpiece_dir, tmp_path / "c", **{**kwargs, "batch_chars": 1 << 20})
    a, b = tree_digest(tmp_path / "a"), tree_digest(tmp_path / "b")
    assert {k: v for k, v in a.items() if k != "manifest.json"} == \
        {k: v for k, v in b.items() if k != "manifest.json"}  # manifests name the inputs as given
    c = tree_digest(tmp_path / "c")
    assert a == c  # batch size changes nothing
    prepare_dataset([str(corpus_dir)], wordpiece_dir, tmp_path / "d", **{**kwargs, "word_cache": False})
    assert tree_digest(tmp_path / "d") == a  # neither does the word cache
    dataset = open_dataset(tmp_path / "a")
    assert len(dataset.split("train")) > 3
    for shard in dataset.split("train"):
        assert shard.docs[0] == 0 and shard.docs[-1] == len(shard.lines) - 1
        assert shard.lines[-1] == len(shard.tokens)
    whole = open_dataset(tmp_path / "a").manifest
    assert whole["num_tokens"] == sum(sh["num_tokens"] for sp in whole["splits"].values() for sh in sp["shards"])


def test_token_dtype():
    assert token_dtype(30000) == np.uint16 and token_dtype(65536) == np.uint16
    assert token_dtype(65537) == np.uint32 and token_dtype(250000) == np.uint32


def test_jsonl_gz_dirs_and_text_field(tmp_path, wordpiece_dir, unigram_dir):
    src = tmp_path / "src" / "nested"
    src.mkdir(parents=True)
    with gzip.open(src / "a.jsonl.gz", "wt", encoding="utf-8") as f:
        f.write(json.dumps({"body": "first document.\n\nits second line."}) + "\n")
        f.write(json.dumps({"body": "second document."}) + "\n")
    (src / "b.txt").write_bytes(b"\xef\xbb\xbfthird document.\r\n\r\nfourth document, line one.\r\nline two.\r\n")
    (src / "notes.md").write_text("ignored: not a corpus file type")
    manifest = prepare_dataset([str(tmp_path / "src")], wordpiece_dir, tmp_path / "out", valid_fraction=0.0,
                               text_field="body", progress=False)
    assert manifest["num_docs"] == 4 and manifest["num_lines"] == 6
    assert [Path(s["path"]).name for s in manifest["sources"]] == ["a.jsonl.gz", "b.txt"]
    # BOM and CRLF leave no trace in the tokens (the unigram normalizer would keep a BOM)
    prepare_dataset([str(src / "b.txt")], unigram_dir, tmp_path / "out2", valid_fraction=0.0, progress=False)
    docs = read_docs(open_dataset(tmp_path / "out2"), "train")
    info = load_tokenizer(unigram_dir)
    assert docs == [[info.encode("third document.")],
                    [info.encode("fourth document, line one."), info.encode("line two.")]]


def write_bad_inputs(directory: Path) -> None:
    directory.mkdir()
    (directory / "a_empty.txt").write_bytes(b"")
    (directory / "b_binary.txt").write_bytes(bytes(range(256)) * 64)
    (directory / "c_utf8.txt").write_bytes(b"good line one.\nbad \xff\xfe line.\n\ngood second document.\n")
    with open(directory / "d_long.txt", "wb") as f:
        f.write(b"short line before.\n")
        f.write(b"x" * (100 * 1024 * 1024) + b"\n")  # a single 100 MB line
        f.write(b"short line after.\n")
    (directory / "e_docs.jsonl").write_text(
        '{"text": "valid json document."}\n{"text": broken\n{"title": "no text field"}\n'
        '{"text": 42}\n[1, 2]\n{"text": "another valid one."}\n', encoding="utf-8")
    (directory / "f_bad.txt.gz").write_bytes(b"this is not gzip data at all")


def test_bad_input_is_skipped_counted_and_named(tmp_path, wordpiece_dir, capsys):
    write_bad_inputs(tmp_path / "bad")
    code = main(["prepare", str(tmp_path / "bad"), "--tokenizer", str(wordpiece_dir), "--out",
                 str(tmp_path / "out"), "--quiet"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "Traceback" not in captured.err
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    skipped = manifest["skipped"]
    assert skipped["empty_files"] == 1 and skipped["binary_files"] == 1 and skipped["unreadable_files"] == 1
    assert skipped["invalid_utf8_lines"] == 1 and skipped["long_lines"] == 1
    assert skipped["invalid_json_lines"] == 1 and skipped["missing_field_lines"] == 3
    for fragment in ("a_empty.txt: empty file", "b_binary.txt: binary file", "c_utf8.txt:2: invalid UTF-8",
                     "d_long.txt:2: line longer than", "e_docs.jsonl:2: invalid JSON",
                     "e_docs.jsonl:3: field 'text' is missing", "e_docs.jsonl:4: field 'text' is not a string",
                     "f_bad.txt.gz: cannot read"):
        assert fragment in captured.err, fragment
        assert any(fragment in m for m in manifest["skipped_messages"]), fragment
    # the good lines around the bad ones are kept: 2 + 2 + 2 lines in c, d, e
    assert manifest["num_lines"] == 6 and manifest["num_docs"] == 5


def test_nothing_usable_fails_cleanly(tmp_path, wordpiece_dir, capsys):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "empty.txt").write_bytes(b"")
    code = main(["prepare", str(tmp_path / "in"), "--tokenizer", str(wordpiece_dir), "--out",
                 str(tmp_path / "out"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "no text found" in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]  # no output, no temp dir left
    assert main(["prepare", str(tmp_path / "nope.txt"), "--tokenizer", str(wordpiece_dir), "--out",
                 str(tmp_path / "out")]) == 2
    assert main(["prepare", str(tmp_path / "in" / "empty.txt"), "--tokenizer", str(tmp_path), "--out",
                 str(tmp_path / "out")]) == 2
    assert "not a tokenizer directory" in capsys.readouterr().err


def test_failure_midway_leaves_no_dataset(tmp_path, corpus_dir, wordpiece_dir, monkeypatch):
    prepare_dataset([str(corpus_dir)], wordpiece_dir, tmp_path / "out", progress=False)
    before = tree_digest(tmp_path / "out")
    calls = []

    def failing(self, lines):
        calls.append(1)
        if len(calls) > 2:
            raise RuntimeError("disk full")
        return LineEncoder._per_line(self, lines)

    monkeypatch.setattr(encode_module.LineEncoder, "encode", failing)
    with pytest.raises(RuntimeError):
        prepare_dataset([str(corpus_dir)], wordpiece_dir, tmp_path / "out", overwrite=True, progress=False,
                        batch_chars=10000)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert tree_digest(tmp_path / "out") == before  # the old complete dataset is untouched


def test_existing_output_and_tokenizer_mismatch(tmp_path, dataset_dir, unigram_dir):
    with pytest.raises(UserError, match="already exists"):
        prepare_dataset(["x"], unigram_dir, dataset_dir)
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(UserError, match="not a prepared dataset"):
        prepare_dataset(["x"], unigram_dir, tmp_path, overwrite=True)
    with pytest.raises(UserError, match="prepared with tokenizer .* fingerprint"):
        open_dataset(dataset_dir, fingerprint=load_tokenizer(unigram_dir).fingerprint)
    with pytest.raises(UserError, match="not a prepared dataset"):
        open_dataset(tmp_path)


def test_out_never_replaces_an_input_or_another_commands_output(tmp_path, corpus_dir, wordpiece_dir, capsys):
    """Issue 11: --out inside the corpus, over the tokenizer or over a tokenizer output is refused (exit 2, one
    line, the inputs byte-identical); --overwrite replaces an earlier prepared dataset."""
    corpus, tokenizer = tree_digest(corpus_dir), tree_digest(wordpiece_dir)
    for out, reason in ((corpus_dir, "is the input"), (corpus_dir / "data", "is the input"),
                        (wordpiece_dir, "is the input"), (corpus_dir.parent, "contains the input")):
        assert main(["prepare", str(corpus_dir), "--tokenizer", str(wordpiece_dir), "--out", str(out),
                     "--overwrite", "--quiet"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and reason in err and str(out) in err
    assert tree_digest(corpus_dir) == corpus and tree_digest(wordpiece_dir) == tokenizer
    out = tmp_path / "data"
    args = ["prepare", str(corpus_dir / "movie-reviews.txt"), "--tokenizer", str(wordpiece_dir), "--out", str(out),
            "--quiet"]
    assert main(args) == 0 and main(args + ["--overwrite"]) == 0
    assert (out / ".leanbert-output.json").is_file()
