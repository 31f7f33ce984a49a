"""`leanbert predict`: the same labels and probabilities as transformers' text-classification pipeline on the
exported Hugging Face directory (real SST-2 dev sentences), from every kind of MODEL; inputs from .tsv,
.csv, .jsonl and stdin; bad rows named by FILE:LINE; a regression model's scores."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from leanbert.cli import main
from leanbert.errors import UserError
from leanbert.interop.hf import export_to_hf
from leanbert.model.model import LeanBertModel
from leanbert.model_dir import load_model, read_model_config, save_model
from leanbert.predict import format_predictions, predict_file, softmax

DEV_ROWS = 120
MAX_LEN = 64  # what the fixture model was fine-tuned with (saved in its task metadata)
HF_MAX_LEN = 128  # a Hugging Face directory carries no task length: its max_position_embeddings bounds it


def _dev_slice(sst2_dir: Path, tmp_path: Path, max_words: int = 1000) -> Path:
    """The first DEV_ROWS dev rows with at most ``max_words`` words."""
    lines = (sst2_dir / "dev.tsv").read_text(encoding="utf-8").splitlines(keepends=True)
    rows = [line for line in lines[1:] if len(line.split("\t")[0].split()) <= max_words][:DEV_ROWS]
    path = tmp_path / "dev.tsv"
    path.write_text(lines[0] + "".join(rows), encoding="utf-8")
    return path


def _read(path: Path) -> list[list[str]]:
    return [line.split("\t") for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def hf_dir(sst2_finetuned, tmp_path_factory) -> Path:
    return export_to_hf(sst2_finetuned / "model", tmp_path_factory.mktemp("hf") / "sst2-hf")


def test_same_labels_and_probabilities_as_the_transformers_pipeline(sst2_finetuned, sst2_dir, hf_dir, tmp_path):
    transformers = pytest.importorskip("transformers")
    dev = _dev_slice(sst2_dir, tmp_path)
    assert main(["predict", str(hf_dir), "--input", str(dev), "--text-columns", "sentence", "--out",
                 str(tmp_path / "preds.tsv"), "--batch-size", "7", "--quiet"]) == 0
    rows = _read(tmp_path / "preds.tsv")
    assert rows[0] == ["index", "label", "probability"] and len(rows) == DEV_ROWS + 1
    texts = [r[0] for r in _read(dev)[1:]]
    pipe = transformers.pipeline("text-classification", model=str(hf_dir), tokenizer=str(hf_dir), device="cpu")
    theirs = pipe(texts, truncation=True, max_length=HF_MAX_LEN, batch_size=1)
    assert [r[0] for r in rows[1:]] == [str(i) for i in range(DEV_ROWS)]
    assert [r[1] for r in rows[1:]] == [t["label"] for t in theirs]
    np.testing.assert_allclose([float(r[2]) for r in rows[1:]], [t["score"] for t in theirs], atol=2e-6)
    # the comparison is not trivial: the tiny model's scores vary over the sentences (whether its 80 steps also
    # make it predict both classes depends on float reduction order, so that is not asserted)
    assert np.ptp([float(r[2]) for r in rows[1:]]) > 1e-3


def test_every_kind_of_model_gives_the_same_file(sst2_finetuned, sst2_dir, hf_dir, tmp_path):
    dev = _dev_slice(sst2_dir, tmp_path, max_words=20)  # within both length limits (64 and 128 tokens)
    outputs = []
    for model in (sst2_finetuned, sst2_finetuned / "model", hf_dir):
        out = tmp_path / f"{len(outputs)}.tsv"
        predict_file(model, str(dev), str(out), text_columns="sentence", batch_size=16, progress=False,
                     log=lambda *_: None)
        outputs.append(_read(out))
    assert outputs[0] == outputs[1]
    assert [r[:2] for r in outputs[0]] == [r[:2] for r in outputs[2]]
    np.testing.assert_allclose([float(r[2]) for r in outputs[0][1:]], [float(r[2]) for r in outputs[2][1:]],
                               atol=2e-6)


def test_batching_and_order_do_not_change_predictions(sst2_finetuned, sst2_dir, tmp_path):
    """Length-sorted batches of any size give the logits of one example at a time, in input order."""
    dev = _dev_slice(sst2_dir, tmp_path)
    model = load_model(sst2_finetuned / "model")
    from leanbert.tasks.encode import PairEncoder

    encoder = PairEncoder.from_dir(sst2_finetuned / "model", MAX_LEN)
    texts = [r[0] for r in _read(dev)[1:]]
    expected = []
    with torch.no_grad():
        for text in texts[:20]:
            ids = torch.from_numpy(encoder._build(encoder._tokenize([text])[0], None, 0).input_ids)[None]
            expected.append(softmax(model(ids).logits.numpy())[0].max())
    for batch_size in (1, 3, 64):
        out = tmp_path / f"b{batch_size}.tsv"
        predict_file(sst2_finetuned, str(dev), str(out), "sentence", batch_size, progress=False)
        np.testing.assert_allclose([float(r[2]) for r in _read(out)[1:21]], expected, atol=2e-6)


def test_csv_jsonl_and_stdin_inputs(sst2_finetuned, sst2_dir, tmp_path, capsys, monkeypatch):
    texts = [r[0] for r in _read(_dev_slice(sst2_dir, tmp_path))[1:11]]
    (tmp_path / "in.tsv").write_text("id\ttext\n" + "".join(f"{i}\t{t}\n" for i, t in enumerate(texts)))
    (tmp_path / "in.jsonl").write_text("".join(json.dumps({"text": t, "n": i}) + "\n" for i, t in enumerate(texts)))
    import csv

    with open(tmp_path / "in.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "id"])
        writer.writerows([t, i] for i, t in enumerate(texts))
    results = []
    for name in ("in.tsv", "in.jsonl", "in.csv"):
        predict_file(sst2_finetuned, str(tmp_path / name), str(tmp_path / f"{name}.out"), "text", progress=False)
        results.append(_read(tmp_path / f"{name}.out"))
    assert results[0] == results[1] == results[2] and len(results[0]) == 11
    monkeypatch.setattr("sys.stdin", io.StringIO("".join(t + "\n" for t in texts) + "\n"))
    capsys.readouterr()
    assert main(["predict", str(sst2_finetuned), "--input", "-", "--out", "-", "--quiet"]) == 0
    assert [line.split("\t") for line in capsys.readouterr().out.splitlines()] == results[0]


def test_pairs_from_stdin_and_file(sst2_finetuned, tmp_path):
    (tmp_path / "pairs.tsv").write_text("a\tb\na fine film\tnot at all\ndull\tgood\n", encoding="utf-8")
    predict_file(sst2_finetuned, str(tmp_path / "pairs.tsv"), str(tmp_path / "f.tsv"), "a,b", progress=False)
    predict_file(sst2_finetuned, "-", str(tmp_path / "s.tsv"), "a,b", progress=False,
                 stdin=io.StringIO("a fine film\tnot at all\ndull\tgood\n"))
    assert _read(tmp_path / "f.tsv") == _read(tmp_path / "s.tsv")
    with pytest.raises(UserError, match=r"<stdin>:2: expected two texts"):
        predict_file(sst2_finetuned, "-", str(tmp_path / "x.tsv"), "a,b", progress=False,
                     stdin=io.StringIO("a\tb\nonly one\n"))


def test_bad_input_exit_2_with_file_and_line(sst2_finetuned, tmp_path, capsys):
    bad = tmp_path / "bad.tsv"
    bad.write_text("sentence\tlabel\ngood film\t1\none field only\n", encoding="utf-8")
    cases = [
        (["--input", str(bad), "--text-columns", "sentence"], f"{bad}:3: expected 2 fields"),
        (["--input", str(bad), "--text-columns", "text"], "has no column 'text'"),
        (["--input", str(bad)], "--text-columns is required"),
        (["--input", str(tmp_path / "missing.tsv"), "--text-columns", "sentence"], "missing.tsv"),
        (["--input", str(bad), "--text-columns", "sentence", "--batch-size", "0"], "--batch-size=0"),
    ]
    jsonl = tmp_path / "bad.jsonl"
    jsonl.write_text('{"text": "fine"}\n{"text": 3}\n', encoding="utf-8")
    cases.append((["--input", str(jsonl), "--text-columns", "text"], f"{jsonl}:2: expected text"))
    for args, message in cases:
        out = tmp_path / "never.tsv"
        assert main(["predict", str(sst2_finetuned), *args, "--out", str(out), "--quiet"]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
        assert not out.exists()
    existing = tmp_path / "exists.tsv"
    existing.write_text("keep\n")
    assert main(["predict", str(sst2_finetuned), "--input", str(bad), "--text-columns", "sentence", "--out",
                 str(existing)]) == 2
    assert existing.read_text() == "keep\n" and "--overwrite" in capsys.readouterr().err


def test_a_model_without_classifier_is_refused(sst2_finetuned, tmp_path, capsys):
    config, _ = read_model_config(sst2_finetuned / "model")
    import dataclasses

    save_model(LeanBertModel(dataclasses.replace(config, heads=["mlm"])), tmp_path / "mlm",
               tokenizer_dir=sst2_finetuned / "model")
    (tmp_path / "in.tsv").write_text("sentence\nfine\n")
    assert main(["predict", str(tmp_path / "mlm"), "--input", str(tmp_path / "in.tsv"), "--text-columns",
                 "sentence", "--out", str(tmp_path / "o.tsv")]) == 2
    assert "no classifier head" in capsys.readouterr().err


def test_regression_scores_and_unnamed_labels():
    logits = np.array([[0.5], [-1.25]], dtype=np.float32)
    assert format_predictions(logits, None) == ["index\tscore", "0\t0.5", "1\t-1.25"]
    two = np.array([[0.0, np.log(3.0)]], dtype=np.float32)
    assert format_predictions(two, ("neg", "pos")) == ["index\tlabel\tprobability", "0\tpos\t0.750000"]


def test_bf16_prints_its_agreement_with_fp32_and_both_accuracies(sst2_finetuned, sst2_dir, tmp_path,
                                                                 monkeypatch):
    import leanbert.train.cpu_features as cpu_features

    monkeypatch.setattr(cpu_features, "cpu_flags", lambda *a: frozenset({"avx512f", "avx512_bf16"}))
    dev = _dev_slice(sst2_dir, tmp_path)
    lines = []
    predict_file(sst2_finetuned, str(dev), str(tmp_path / "bf16.tsv"), "sentence", 16, progress=False,
                 log=lines.append, precision="bf16", label_column="label")
    predict_file(sst2_finetuned, str(dev), str(tmp_path / "fp32.tsv"), "sentence", 16, progress=False,
                 log=lines.append, label_column="label")
    check = [line for line in lines if line.startswith("bf16 vs fp32")]
    assert len(check) == 1 and f"on {DEV_ROWS} of {DEV_ROWS} rows" in check[0] and "accuracy fp32" in check[0]
    agree = float(check[0].split("labels agree on ")[1].split("%")[0]) / 100
    bf16, fp32 = _read(tmp_path / "bf16.tsv")[1:], _read(tmp_path / "fp32.tsv")[1:]
    assert agree == pytest.approx(np.mean([a[1] == b[1] for a, b in zip(bf16, fp32)]), abs=1e-4)
    # bf16 keeps ~3 significant digits: probabilities move a little, not a lot
    np.testing.assert_allclose([float(r[2]) for r in bf16], [float(r[2]) for r in fp32], atol=0.05)
    gold = [r[1] for r in _read(dev)[1:]]
    accuracy = np.mean([p[1] == g for p, g in zip(fp32, gold)])
    assert f"accuracy on {DEV_ROWS} rows (label): {accuracy:.4f}" in lines


def test_bf16_is_refused_without_native_bf16(sst2_finetuned, tmp_path, capsys, monkeypatch):
    import leanbert.train.cpu_features as cpu_features

    monkeypatch.setattr(cpu_features, "cpu_flags", lambda *a: frozenset({"avx2"}))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    (tmp_path / "in.tsv").write_text("sentence\tlabel\nfine\tpositive\n")
    args = ["predict", str(sst2_finetuned), "--input", str(tmp_path / "in.tsv"), "--text-columns", "sentence",
            "--out", str(tmp_path / "o.tsv")]
    assert main([*args, "--precision", "bf16"]) == 2
    assert "no native bf16" in capsys.readouterr().err and not (tmp_path / "o.tsv").exists()
    assert main([*args, "--label-column", "label"]) == 2
    assert "label 'positive' in column 'label'" in capsys.readouterr().err
