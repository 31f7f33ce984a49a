"""The custom task on TSV, CSV and JSONL, and its error messages (file and line)."""

from __future__ import annotations

import json

import pytest

from leanbert.errors import UserError
from leanbert.tasks.custom import custom_spec, load_custom, parse_columns


def _tsv(path, rows):
    path.write_text("".join("\t".join(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _jsonl(path, records):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records), encoding="utf-8")
    return path


def test_tsv_single_text(tmp_path):
    train = _tsv(tmp_path / "train.tsv", [["id", "review", "stars"], ["1", "great", "pos"], ["2", "bad \"", "neg"],
                                          ["3", "fine", "pos"]])
    dev = _tsv(tmp_path / "dev.tsv", [["review", "id", "stars"], ["ok", "9", "neg"]])  # other column order
    data = load_custom(train, dev, "review", "stars")
    assert data.spec.labels == ("neg", "pos") and data.spec.metric_names == ["accuracy", "f1", "mcc"]
    assert [(e.text_a, e.text_b, e.label, e.line) for e in data.train] == [
        ("great", None, 1, 2), ('bad "', None, 0, 3), ("fine", None, 1, 4)]
    assert [(e.text_a, e.label) for e in data.dev["dev"]] == [("ok", 0)]
    assert data.spec.num_labels == 2 and not data.spec.is_pair


def test_csv_pair_with_quotes_and_multiline_field(tmp_path):
    train = tmp_path / "train.csv"
    train.write_text('q,p,y\n"what, exactly?","a ""quoted"" word",2\n"two\nlines",x,10\nq3,p3,2\n', encoding="utf-8")
    dev = tmp_path / "dev.csv"
    dev.write_text("q,p,y\nq,p,10\n", encoding="utf-8")
    data = load_custom(train, dev, "q,p", "y")
    assert data.spec.labels == ("2", "10")  # integer labels sort by value
    assert [(e.text_a, e.text_b, e.label, e.line) for e in data.train] == [
        ("what, exactly?", 'a "quoted" word', 0, 2), ("two\nlines", "x", 1, 3), ("q3", "p3", 0, 5)]
    assert data.spec.is_pair and data.spec.metric_names == ["accuracy", "f1", "mcc"]


def test_jsonl_multiclass_and_label_order_independent_of_rows(tmp_path):
    records = [{"text": "a", "label": "b"}, {"text": "b", "label": "a"}, {"text": "c", "label": "c"}]
    train1 = _jsonl(tmp_path / "t1.jsonl", records)
    train2 = _jsonl(tmp_path / "t2.jsonl", records[::-1])
    dev = _jsonl(tmp_path / "dev.jsonl", [{"text": "x", "label": "c", "extra": 1}, ""])  # blank line skipped
    spec1 = custom_spec(train1, dev, ["text"], "label")
    spec2 = custom_spec(train2, dev, ["text"], "label")
    assert spec1.labels == spec2.labels == ("a", "b", "c")
    assert spec1.metric_names == ["accuracy", "mcc"]
    data = load_custom(train1, dev, "text", "label")
    assert [e.label for e in data.train] == [1, 0, 2] and data.dev["dev"][0].label == 2


def test_jsonl_integer_and_boolean_labels(tmp_path):
    train = _jsonl(tmp_path / "train.jsonl", [{"s": "a", "y": 1}, {"s": "b", "y": 0}])
    dev = _jsonl(tmp_path / "dev.jsonl", [{"s": "c", "y": "1"}])  # "1" and 1 are the same label
    data = load_custom(train, dev, "s", "y")
    assert data.spec.labels == ("0", "1") and data.dev["dev"][0].label == 1
    train_b = _jsonl(tmp_path / "b.jsonl", [{"s": "a", "y": True}, {"s": "b", "y": False}])
    assert custom_spec(train_b, train_b, "s", "y").labels == ("false", "true")


def test_regression_tsv_and_jsonl(tmp_path):
    train = _tsv(tmp_path / "train.tsv", [["a", "b", "score"], ["x", "y", "0.5"], ["x", "z", "4"]])
    data = load_custom(train, train, "a,b", "score", regression=True)
    assert [e.label for e in data.train] == [0.5, 4.0]
    assert data.spec.regression and data.spec.metric_names == ["pearson", "spearman"]
    jtrain = _jsonl(tmp_path / "train.jsonl", [{"a": "x", "score": 1}, {"a": "y", "score": "2.5"}])
    assert [e.label for e in load_custom(jtrain, jtrain, "a", "score", regression=True).train] == [1.0, 2.5]


def test_unknown_dev_label(tmp_path):
    train = _tsv(tmp_path / "train.tsv", [["t", "y"], ["a", "pos"], ["b", "neg"]])
    dev = _tsv(tmp_path / "dev.tsv", [["t", "y"], ["a", "pos"], ["c", "neutral"]])
    with pytest.raises(UserError, match=rf"{dev}:3: unknown label 'neutral' .*training file"):
        load_custom(train, dev, "t", "y")


def test_wrong_column_count_tsv_and_csv(tmp_path):
    train = _tsv(tmp_path / "train.tsv", [["t", "y"], ["a", "pos"], ["b", "neg", "extra"]])
    with pytest.raises(UserError, match=rf"{train}:3: expected 2 fields like the header \(t, y\) separated by tabs"):
        load_custom(train, train, "t", "y")
    csv_train = tmp_path / "train.csv"
    csv_train.write_text('t,y\na,pos\n"b\nc",neg,x\n', encoding="utf-8")
    with pytest.raises(UserError, match=rf"{csv_train}:3: expected 2 fields .* separated by commas, found 3"):
        load_custom(csv_train, csv_train, "t", "y")


def test_malformed_csv_quoting(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text('t,y\na,pos\n"b"x,neg\n', encoding="utf-8")
    with pytest.raises(UserError, match=rf"{path}:3: malformed CSV"):
        load_custom(path, path, "t", "y")


def test_json_errors(tmp_path):
    good = {"t": "a", "y": "pos"}
    missing = _jsonl(tmp_path / "m.jsonl", [good, {"t": "b", "y": "neg"}, {"text": "c", "y": "neg"}])
    with pytest.raises(UserError, match=rf"{missing}:3: missing field 't'"):
        load_custom(missing, missing, "t", "y")
    invalid = _jsonl(tmp_path / "i.jsonl", [good, {"t": "b", "y": "neg"}, '{"t": "c", "y": neg}'])
    with pytest.raises(UserError, match=rf"{invalid}:3: invalid JSON"):
        load_custom(invalid, invalid, "t", "y")
    not_object = _jsonl(tmp_path / "o.jsonl", [good, {"t": "b", "y": "neg"}, '["c", "neg"]'])
    with pytest.raises(UserError, match=rf"{not_object}:3: expected a JSON object, found list"):
        load_custom(not_object, not_object, "t", "y")
    not_text = _jsonl(tmp_path / "n.jsonl", [good, {"t": 5, "y": "neg"}])
    with pytest.raises(UserError, match=rf"{not_text}:2: expected text in column 't', found 5"):
        load_custom(not_text, not_text, "t", "y")
    bad_label = _jsonl(tmp_path / "l.jsonl", [good, {"t": "b", "y": 0.5}])
    with pytest.raises(UserError, match=rf"{bad_label}:2: expected a non-empty string or integer label"):
        load_custom(bad_label, bad_label, "t", "y")


def test_non_numeric_regression_target(tmp_path):
    path = _tsv(tmp_path / "train.tsv", [["t", "score"], ["a", "1.5"], ["b", "high"]])
    with pytest.raises(UserError, match=rf"{path}:3: expected a finite number in column 'score', found 'high'"):
        load_custom(path, path, "t", "score", regression=True)
    jpath = _jsonl(tmp_path / "t.jsonl", [{"t": "a", "score": True}])
    with pytest.raises(UserError, match=rf"{jpath}:1: expected a number"):
        load_custom(jpath, jpath, "t", "score", regression=True)


def test_argument_errors(tmp_path):
    train = _tsv(tmp_path / "train.tsv", [["t", "y"], ["a", "pos"], ["b", "pos"]])
    with pytest.raises(UserError, match="1 distinct label.*--regression"):
        load_custom(train, train, "t", "y")
    with pytest.raises(UserError, match="header has no column 'text'; it has: 't', 'y'"):
        load_custom(train, train, "text", "y")
    with pytest.raises(UserError, match="one or two column names"):
        parse_columns("a,b,c")
    with pytest.raises(UserError, match="also a text column"):
        load_custom(train, train, "t", "t")
    with pytest.raises(UserError, match="cannot tell the format"):
        load_custom(tmp_path / "train.parquet", train, "t", "y")
    with pytest.raises(UserError, match="use one format"):
        load_custom(train, tmp_path / "dev.csv", "t", "y")
    with pytest.raises(UserError, match="no such file"):
        load_custom(tmp_path / "nope.tsv", train, "t", "y")


def test_format_override_and_crlf(tmp_path):
    train = tmp_path / "train.txt"
    train.write_bytes(b"t\ty\r\na\tpos\r\nb\tneg\r\n")
    data = load_custom(train, train, "t", "y", fmt="tsv")
    assert [(e.text_a, e.label) for e in data.train] == [("a", 1), ("b", 0)]
    with pytest.raises(UserError, match="unknown file format 'xml'"):
        load_custom(train, train, "t", "y", fmt="xml")


def test_load_task_data_dispatch(tmp_path):
    from leanbert.tasks.sequence_data import load_task_data

    train = _tsv(tmp_path / "mine.tsv", [["t", "y"], ["a", "pos"], ["b", "neg"]])
    data = load_task_data("custom", train=train, dev=train, text_columns="t", label_column="y")
    assert data.spec.name == "custom" and len(data.train) == 2
    with pytest.raises(UserError, match="needs --dev, --label-column"):
        load_task_data("custom", train=train, text_columns="t")
    with pytest.raises(UserError, match="--train, --regression only apply to --task custom"):
        load_task_data("sst2", data=tmp_path, train=train, regression=True)
    with pytest.raises(UserError, match="needs --data DIR"):
        load_task_data("sst2")
    sst = tmp_path / "SST-2"
    sst.mkdir()
    for name in ("train.tsv", "dev.tsv"):
        _tsv(sst / name, [["sentence", "label"], ["good ", "1"], ["bad ", "0"]])
    assert [e.label for e in load_task_data("sst2", data=tmp_path).dev["dev"]] == [1, 0]
