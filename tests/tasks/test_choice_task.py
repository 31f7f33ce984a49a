"""Multiple choice end to end: finetune --task multiple-choice on mixed option counts, predictions.jsonl,
masking (an example scores the same alone or next to one with more options), predict on leanbert / Hugging
Face / ONNX (fp32 and int8) dirs, export to transformers' *ForMultipleChoice (logits within 1e-5), distill --stage task, and
bad input (one line, exit 2, nothing written)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from tokenizers import Tokenizer

from helpers import randomize_, tiny_config
from leanbert.cli import main
from leanbert.model.model import LeanBertModel
from leanbert.model_dir import load_model, save_model
from leanbert.tasks.choice import option_scores
from leanbert.tasks.choice_encode import ChoiceCollator, ChoiceEncoder
from leanbert.tasks.choice_files import read_choices
from tagging_helpers import make_tokenizer_dir

FIXTURES = Path(__file__).with_name("fixtures")
SIQA, HELLASWAG = FIXTURES / "social_iqa.jsonl", FIXTURES / "hellaswag.jsonl"
QUICK = ["train.max_steps=3", "train.batch_size=4", "data.max_seq_len=64", "train.device=cpu"]
FAMILIES = {"bert": {}, "albert": {"family": "albert", "sharing": "all", "embedding_size": 16},
            "electra": {"family": "electra", "embedding_size": 16}}


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("mc")
    tok = make_tokenizer_dir(root / "tok", vocab_size=300)
    vocab = Tokenizer.from_file(str(tok / "tokenizer.json")).get_vocab_size()
    torch.manual_seed(0)
    base = save_model(LeanBertModel(tiny_config(vocab_size=vocab, heads=["mlm"], max_positions=64)), root / "base",
                      tokenizer_dir=tok)
    mixed = root / "mixed.jsonl"  # 3-option Social IQa rows and 4-option HellaSwag rows interleaved
    siqa, hellaswag = SIQA.read_text().splitlines(), HELLASWAG.read_text().splitlines()
    mixed.write_text("".join(f"{a}\n{b}\n" for a, b in zip(siqa, hellaswag)), encoding="utf-8")
    out = root / "run"
    assert main(["finetune", str(base), "--task", "multiple-choice", "--train", str(SIQA), "--dev", str(mixed),
                 "--out", str(out), "--quiet", *QUICK]) == 0
    return {"root": root, "tok": tok, "vocab": vocab, "base": base, "run": out, "mixed": mixed}


def random_chooser(world, family: str = "bert") -> Path:
    torch.manual_seed(1)
    model = LeanBertModel(tiny_config(vocab_size=world["vocab"], heads=["choice"], num_labels=1, max_positions=64,
                                      **FAMILIES[family]))
    randomize_(model.heads, std=1.0, seed=3)
    task = {"type": "choice", "name": "multiple-choice", "max_seq_len": 64}
    return save_model(model, world["root"] / f"random-{family}", tokenizer_dir=world["tok"], extra={"task": task})


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_finetune_predictions_and_accuracy(world):
    run = world["run"]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["main_metric"] == "accuracy"
    examples = read_choices(world["mixed"])
    rows = _rows(run / "predictions.jsonl")
    assert [r["index"] for r in rows] == list(range(len(examples)))
    for row, example in zip(rows, examples):
        assert len(row["probabilities"]) == len(example.options)
        assert sum(row["probabilities"]) == pytest.approx(1.0)
        assert row["label"] == int(np.argmax(row["probabilities"]))
    right = [r["label"] == e.label for r, e in zip(rows, examples)]
    assert metrics["accuracy"] == pytest.approx(np.mean(right))
    assert load_model(run / "model").config.heads == ["choice"]


def test_missing_options_do_not_change_an_examples_scores(world):
    model = load_model(random_chooser(world)).eval()
    encoder = ChoiceEncoder.from_dir(world["tok"], 64)
    features = encoder.encode_choices(read_choices(world["mixed"]))
    collator = ChoiceCollator(encoder.pad_id, encoder.cls_id, encoder.sep_id)
    alone = option_scores(model, features, collator, batch_size=1)
    together = option_scores(model, features, collator, batch_size=len(features))  # one batch, 3 and 4 options
    assert {len(s) for s in together} == {3, 4}
    for a, b in zip(alone, together):
        assert np.allclose(a, b, atol=1e-5)


def test_predict_on_every_backend_matches_finetune(world, tmp_path):
    run = world["run"]
    expected = _rows(run / "predictions.jsonl")
    hf, onnx = tmp_path / "hf", tmp_path / "onnx"
    assert main(["export", str(run / "model"), str(hf)]) == 0
    assert main(["export", str(run / "model"), str(onnx), "--format", "onnx"]) == 0
    for source in (run, hf, onnx):
        out = tmp_path / f"{source.name}.jsonl"
        assert main(["predict", str(source), "--input", str(world["mixed"]), "--out", str(out), "--quiet"]) == 0
        rows = _rows(out)
        assert [r["index"] for r in rows] == [r["index"] for r in expected]
        for row, reference in zip(rows, expected):
            assert row["probabilities"] == pytest.approx(reference["probabilities"], abs=1e-5)
    int8 = tmp_path / "int8"
    assert main(["export", str(run / "model"), str(int8), "--format", "onnx", "--quantize", "int8"]) == 0
    out = tmp_path / "int8.jsonl"
    assert main(["predict", str(int8), "--input", str(world["mixed"]), "--out", str(out), "--quiet"]) == 0
    rows = _rows(out)
    assert [len(r["probabilities"]) for r in rows] == [len(r["probabilities"]) for r in expected]
    assert all(sum(r["probabilities"]) == pytest.approx(1.0) for r in rows)


@pytest.mark.parametrize("family", ["bert", "albert", "electra"])
def test_export_to_transformers_multiple_choice(world, tmp_path, family):
    import transformers

    model_dir = random_chooser(world, family)
    hf_dir = tmp_path / "hf"
    assert main(["export", str(model_dir), str(hf_dir)]) == 0
    assert json.loads((hf_dir / "config.json").read_text())["architectures"] == [
        f"{family.capitalize()}ForMultipleChoice"]
    hf = transformers.AutoModelForMultipleChoice.from_pretrained(hf_dir).eval()
    ours = load_model(model_dir).eval()
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, world["vocab"], (2, 3, 9), generator=g)  # (B, C, T)
    mask = torch.ones_like(ids)
    mask[1, 2, 5:] = 0
    types = (torch.arange(9) >= 4).long().expand(2, 3, -1) * mask
    with torch.no_grad():
        theirs = hf(input_ids=ids, attention_mask=mask, token_type_ids=types).logits  # (B, C)
        mine = ours(ids.reshape(6, 9), mask.reshape(6, 9), types.reshape(6, 9)).logits.reshape(2, 3)
    assert torch.allclose(mine, theirs, atol=1e-5)


def test_distill_task_stage_on_multiple_choice(world, tmp_path, capsys):
    out = tmp_path / "kd"
    rc = main(["distill", "--stage", "task", "--teacher", str(world["run"]), "--task", "multiple-choice",
               "--train", str(SIQA), "--dev", str(world["mixed"]), "--out", str(out), "--quiet",
               "student.init=teacher-layers", "student.keep_every=2", "distill.intermediate_epochs=1",
               "distill.prediction_epochs=1", "data.max_seq_len=64", "train.batch_size=4", "train.device=cpu"])
    assert rc == 0, capsys.readouterr().err
    metrics = json.loads((out / "metrics.json").read_text())
    assert "accuracy" in metrics and "accuracy" in metrics["teacher_metrics"]
    assert len(_rows(out / "predictions.jsonl")) == 16
    assert load_model(out / "model").config.heads == ["choice"]


def _fails(capsys, argv: list[str], out: Path, message: str) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
    assert not out.exists()


def test_bad_multiple_choice_input_is_one_line_exit_2_and_nothing_written(world, tmp_path, capsys):
    out = tmp_path / "out"
    base = ["finetune", str(world["base"]), "--task", "multiple-choice", "--out", str(out), "--quiet", *QUICK]
    good = '{"context": "c", "options": ["a", "b"], "label": 1}\n'
    no_options = tmp_path / "no_options.jsonl"
    no_options.write_text(good + '{"context": "c", "question": "q", "options": [], "label": 0}\n')
    _fails(capsys, [*base, "--train", str(no_options), "--dev", str(SIQA)], out,
           f"{no_options}:2: no options; expected at least one")
    out_of_range = tmp_path / "range.jsonl"
    out_of_range.write_text(good + '{"context": "c", "answerA": "a", "answerB": "b", "answerC": "c", "label": "4"}\n')
    _fails(capsys, [*base, "--train", str(SIQA), "--dev", str(out_of_range)], out,
           f"{out_of_range}:2: label '4' is out of range; expected 1..3 for 3 options (1-based)")
    predict_out = tmp_path / "pred.jsonl"
    _fails(capsys, ["predict", str(world["run"]), "--input", str(no_options), "--out", str(predict_out)],
           predict_out, f"{no_options}:2: no options")
