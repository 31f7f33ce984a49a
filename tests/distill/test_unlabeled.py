"""Reading ``distill --unlabeled`` files: plain text (one text or a tab-separated pair per line) and tables
with the task's text columns; rows carry the missing-label marker; bad files are one clear UserError."""

from __future__ import annotations

import json
import math

import pytest

from leanbert.distill.unlabeled import UNLABELED, read_unlabeled, read_unlabeled_files, training_mix
from leanbert.errors import UserError
from leanbert.tasks.glue import get_task

SST2, MRPC, STSB, COLA = (get_task(n) for n in ("sst2", "mrpc", "stsb", "cola"))


def test_plain_text_one_example_per_line(tmp_path):
    path = tmp_path / "raw.txt"
    path.write_bytes("\ufefffirst snippet\r\n\n  \nsecond one\n".encode())
    rows = read_unlabeled(path, SST2)
    assert [(r.text_a, r.text_b, r.label, r.line) for r in rows] == [
        ("first snippet", None, UNLABELED, 1), ("second one", None, UNLABELED, 4)]


def test_plain_text_pairs_and_regression_marker(tmp_path):
    path = tmp_path / "pairs"
    path.write_text("a b\tc d\ne\tf\n", encoding="utf-8")
    rows = read_unlabeled(path, STSB)
    assert [(r.text_a, r.text_b) for r in rows] == [("a b", "c d"), ("e", "f")]
    assert all(math.isnan(r.label) for r in rows)
    single = tmp_path / "raw.txt"
    single.write_text("ok\nnot\tok\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"raw.txt:2: expected one text per line .* found 2"):
        read_unlabeled(single, SST2)
    path.write_text("only one\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"pairs:1: expected two texts separated by a tab"):
        read_unlabeled(path, MRPC)


def test_tables_use_the_tasks_text_columns(tmp_path):
    tsv = tmp_path / "u.tsv"
    tsv.write_text("id\tsentence\tlabel\n1\tgood film\t1\n2\tbad film\t0\n", encoding="utf-8")
    assert [r.text_a for r in read_unlabeled(tsv, SST2)] == ["good film", "bad film"]
    csv_file = tmp_path / "u.csv"
    csv_file.write_text('#1 String,#2 String\n"x, y",z\n', encoding="utf-8")
    assert [(r.text_a, r.text_b) for r in read_unlabeled(csv_file, MRPC)] == [("x, y", "z")]
    jsonl = tmp_path / "u.jsonl"
    jsonl.write_text(json.dumps({"sentence": "hi"}) + "\n", encoding="utf-8")
    assert [r.text_a for r in read_unlabeled(jsonl, SST2)] == ["hi"]
    cola = tmp_path / "cola.tsv"  # CoLA's layout has no header: the sentence is field 3
    cola.write_text("src\t0\t\ta sentence\n", encoding="utf-8")
    assert [r.text_a for r in read_unlabeled(cola, COLA)] == ["a sentence"]


def test_bad_files_are_one_clear_error(tmp_path):
    tsv = tmp_path / "u.tsv"
    tsv.write_text("text\nsomething\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"u.tsv: the header has no column 'sentence'"):
        read_unlabeled(tsv, SST2)
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n", encoding="utf-8")
    with pytest.raises(UserError, match="empty.txt: no unlabeled examples"):
        read_unlabeled(empty, SST2)
    with pytest.raises(UserError, match="missing.txt"):
        read_unlabeled(tmp_path / "missing.txt", SST2)
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"fine\n\xff\xfe\n")
    with pytest.raises(UserError, match="bad.txt:2: not valid UTF-8"):
        read_unlabeled(bad, SST2)
    ok = tmp_path / "ok.txt"
    ok.write_text("x\n", encoding="utf-8")
    with pytest.raises(UserError, match="given twice"):
        read_unlabeled_files([ok, ok], SST2)


def test_training_mix_counts():
    mix = training_mix(30, {"a.txt": 50, "b.tsv": 20})
    assert mix == {"labelled": 30, "unlabeled": 70, "total": 100, "unlabeled_share": 0.7,
                   "unlabeled_files": {"a.txt": 50, "b.tsv": 20}}
