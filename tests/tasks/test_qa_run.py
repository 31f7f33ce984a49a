"""QA end to end on the tiny SQuAD fixtures: `leanbert finetune --task qa`, `distill --stage task --task qa`,
`leanbert predict` on the leanbert, Hugging Face and ONNX directories (the same answers, and the same as
transformers' question-answering pipeline), and bad SQuAD input refused with one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from helpers import tiny_config
from leanbert.cli import main
from leanbert.distill.config import load_task_config
from leanbert.distill.run import distill_task
from leanbert.finetune.run import finetune
from leanbert.interop.hf import export_to_hf
from leanbert.model.model import LeanBertModel, ModelOutput
from leanbert.model_dir import read_model_config, save_model
from leanbert.predict import predict_file
from leanbert.tasks import TaskRequest, task_type_for
from leanbert.tasks.prediction_loss import soft_cross_entropy
from leanbert.tasks.qa import QADataConfig, distill_loss
from leanbert.tasks.qa_data import read_squad
from qa_helpers import SQUAD_V1, SQUAD_V2, minilm_dir

QUIET = dict(progress=False, log=lambda *a, **k: None)
FINETUNE = ["train.max_steps=2", "train.batch_size=8", "data.max_seq_len=128", "data.doc_stride=32"]


def _load(train: Path, dev: Path):
    return task_type_for("qa").load(TaskRequest("qa", train=str(train), dev=str(dev)))


@pytest.fixture(scope="module")
def qa_finetuned(tmp_path_factory) -> Path:
    """A 2-layer hidden-32 BERT with MiniLM's tokenizer, fine-tuned 2 steps on the v2 fixture."""
    root = tmp_path_factory.mktemp("qa")
    torch.manual_seed(0)
    config = tiny_config(vocab_size=30522, max_positions=512, type_vocab_size=2)
    save_model(LeanBertModel(config), root / "base", tokenizer_dir=minilm_dir())
    finetune(root / "base", _load(SQUAD_V2, SQUAD_V2), root / "ft", FINETUNE, **QUIET)
    return root / "ft"


def test_finetune_writes_squad_predictions_and_v2_metrics(qa_finetuned):
    ids = {e.qid for e in read_squad(SQUAD_V2)}
    predictions = json.loads((qa_finetuned / "predictions.json").read_text())
    assert set(predictions) == ids and all(isinstance(v, str) for v in predictions.values())
    metrics = json.loads((qa_finetuned / "metrics.json").read_text())
    for name in ("exact", "f1", "best_exact", "best_f1", "best_f1_thresh", "HasAns_f1", "NoAns_f1"):
        assert name in metrics
    assert metrics["HasAns_total"] == 10 and metrics["NoAns_total"] == 4
    config, meta = read_model_config(qa_finetuned / "model")
    assert config.heads == ["span"] and meta["task"]["type"] == "qa" and meta["task"]["version_2"] is True
    assert meta["task"]["max_seq_len"] == 128 and meta["task"]["doc_stride"] == 32


def test_distill_task_qa(qa_finetuned, tmp_path):
    task = _load(SQUAD_V1, SQUAD_V1)
    config = load_task_config(task.spec.recipe, None, [
        *FINETUNE, "model.hidden_size=16", "model.num_layers=1", "model.num_heads=2",
        "model.intermediate_size=32"], QADataConfig)
    result = distill_task(qa_finetuned / "model", task, tmp_path / "kd", config, **QUIET)
    assert result.metrics["metric_names"] == ["exact_match", "f1"]
    assert set(result.metrics["teacher_metrics"]) == {"exact_match", "f1"}
    assert set(json.loads((tmp_path / "kd" / "predictions.json").read_text())) == {
        e.qid for e in read_squad(SQUAD_V1)}
    assert read_model_config(tmp_path / "kd" / "model")[0].heads == ["span"]


def test_distill_loss_is_soft_cross_entropy_on_start_and_end_over_real_tokens():
    g = torch.Generator().manual_seed(0)
    student, teacher = torch.randn(2, 6, 2, generator=g), torch.randn(2, 6, 2, generator=g)
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]])
    batch = type("B", (), {"attention_mask": mask})()
    got = distill_loss(ModelOutput(student, extra={"span_logits": student}),
                       ModelOutput(teacher, extra={"span_logits": teacher}), batch, 2.0, 0.0)
    expected = 0.0
    for k in range(2):  # start, end; per row over its real tokens only, in float64
        for row in range(2):
            n = int(mask[row].sum())
            s, t = student[row, :n, k].double() / 2, teacher[row, :n, k].double() / 2
            expected += -(torch.softmax(t, 0) * torch.log_softmax(s, 0)).sum() / 2
    assert float(got) == pytest.approx(float(expected) / 2, rel=1e-5)
    assert float(soft_cross_entropy(student[..., 0], teacher[..., 0])) > 0


SHORT = [  # contexts short enough that the 20 best starts/ends cover every position: the exact argmax
    {"id": "a", "question": "Who wrote it?", "context": "The book was written by Jane Austen in 1813."},
    {"id": "b", "question": "Where is it?", "context": "The tower stands in Paris near the river."},
    {"id": "c", "question": "What colour?", "context": "Her new car is bright red and fast."},
]


def _predict(model: Path, source: Path, out: Path) -> list[dict]:
    predict_file(model, str(source), str(out), **QUIET)
    return [json.loads(line) for line in out.read_text().splitlines()]


def reference_answer(model, tokenizer, question: str, context: str, max_answer_len: int = 30):
    """transformers' (v4) question-answering pipeline, which v5 removed: its tokenizer's pair encoding and
    offsets, its QA model, softmaxes over the context tokens, the best start * end product with
    start <= end < start + max_answer_len."""
    enc = tokenizer(question, context, return_offsets_mapping=True, return_tensors="pt")
    offsets = enc.pop("offset_mapping")[0]
    in_context = torch.tensor([s == 1 for s in enc.sequence_ids(0)])
    with torch.no_grad():
        out = model(**enc)
    start = out.start_logits[0].masked_fill(~in_context, -1e4).softmax(-1)  # (T,)
    end = out.end_logits[0].masked_fill(~in_context, -1e4).softmax(-1)
    scores = torch.tril(torch.triu(start[:, None] * end[None, :]), max_answer_len - 1)  # (T, T)
    s, e = divmod(int(scores.argmax()), scores.shape[1])
    first, last = int(offsets[s][0]), int(offsets[e][1])
    return context[first:last], first, last


def test_predict_on_every_backend_matches_transformers(qa_finetuned, tmp_path):
    pytest.importorskip("onnxruntime")
    transformers = pytest.importorskip("transformers")
    from leanbert.export.onnx import export_onnx

    export_to_hf(qa_finetuned / "model", tmp_path / "hf")
    export_onnx(qa_finetuned / "model", tmp_path / "onnx", log=lambda *_: None)
    squad = [_predict(m, SQUAD_V2, tmp_path / f"{i}.jsonl")
             for i, m in enumerate((qa_finetuned, tmp_path / "onnx", tmp_path / "hf"))]
    assert [r["id"] for r in squad[0]] == [e.qid for e in read_squad(SQUAD_V2)]
    assert [r["answer"] for r in squad[0]] == [r["answer"] for r in squad[1]]  # leanbert = ONNX (both v2)
    assert all(r["answer"] for r in squad[2])  # an HF directory saved no v2 setting: always a span
    short = tmp_path / "short.jsonl"
    short.write_text("".join(json.dumps(row) + "\n" for row in SHORT))
    ours = _predict(tmp_path / "hf", short, tmp_path / "hf.jsonl")
    model = transformers.AutoModelForQuestionAnswering.from_pretrained(tmp_path / "hf").eval()
    tokenizer = transformers.AutoTokenizer.from_pretrained(tmp_path / "hf")
    for row, mine in zip(SHORT, ours):
        assert mine["id"] == row["id"] and 0 < mine["score"] <= 1
        expected = reference_answer(model, tokenizer, row["question"], row["context"])
        assert (mine["answer"], mine["start"], mine["end"]) == expected


def _edit(tmp_path: Path, change) -> Path:
    data = json.loads(SQUAD_V1.read_text())
    change(data["data"][0]["paragraphs"])
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize("change, expected", [
    (lambda ps: ps[0]["qas"][1].pop("question"), "question 56e76abf37bdd419002c3f792538: missing key 'question'"),
    (lambda ps: ps[0]["qas"][0]["answers"][0].update(answer_start=3),
     "question 56e76abf37bdd419002c3f785125 answer 0: answer_start 3 does not point at its text 'stress'"),
    (lambda ps: ps[2].update(context=["not", "text"]),
     "question 56e76b8337bdd419002c3f805056 (data[0].paragraphs[2]): 'context' must be a str"),
])
def test_bad_squad_input_is_one_line_exit_2_nothing_written(change, expected, tmp_path, capsys):
    bad = _edit(tmp_path, change)
    code = main(["finetune", str(tmp_path / "no-model-needed"), "--task", "qa", "--train", str(bad), "--dev",
                 str(SQUAD_V1), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert str(bad) in err and expected in err
    assert not (tmp_path / "out").exists()


def test_bad_qa_predict_input_is_one_line_exit_2_nothing_written(qa_finetuned, tmp_path, capsys):
    bad = tmp_path / "questions.jsonl"
    bad.write_text(json.dumps(SHORT[0]) + "\n" + json.dumps({"id": "q2", "question": "Where?"}) + "\n")
    out = tmp_path / "answers.jsonl"
    code = main(["predict", str(qa_finetuned), "--input", str(bad), "--out", str(out), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert f"{bad}:2 (question q2): missing key 'context'" in err
    assert not out.exists()
    code = main(["predict", str(qa_finetuned), "--input", str(bad), "--out", str(out), "--text-columns", "x"])
    assert code == 2 and "--text-columns is for sequence classification" in capsys.readouterr().err


def test_predict_windows_fit_a_model_with_few_positions(tmp_path):
    """A Hugging Face QA directory saves no window settings: the 384-token default is cut to the model's 64."""
    torch.manual_seed(0)
    config = tiny_config(vocab_size=30522, max_positions=64, heads=["span"], num_labels=2)
    save_model(LeanBertModel(config), tmp_path / "ours", tokenizer_dir=minilm_dir())
    export_to_hf(tmp_path / "ours", tmp_path / "hf")
    rows = _predict(tmp_path / "hf", SQUAD_V1, tmp_path / "answers.jsonl")
    assert [r["id"] for r in rows] == [e.qid for e in read_squad(SQUAD_V1)]
    assert all(r["answer"] for r in rows)
