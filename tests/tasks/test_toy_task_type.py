"""ARCHITECTURE.md T4: a task type written entirely in this file (one TaskType + one register_task_type call, no
edit to src/) runs through finetune, distill --stage task, the native and remote-code Hugging Face exports,
ONNX and `leanbert predict`, with the same outputs on every backend.

The toy: tag every sub-word token 1 when its text starts with a capital letter, on JSONL {"text": ...}, with
the built-in ``token`` head."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from tokenizers import Tokenizer

from helpers import tiny_config
from leanbert.batch import Batch
from leanbert.distill.config import load_task_config
from leanbert.distill.run import distill_task
from leanbert.finetune.run import finetune
from leanbert.interop.hf import export_to_hf
from leanbert.model.model import LeanBertModel
from leanbert.model_dir import load_model, save_model
from leanbert.objectives.base import Output
from leanbert.predict import predict_file
from leanbert.tasks import TASK_TYPES, EncodedTask, PredictSpec, TaskType, register_task_type
from leanbert.tasks.glue import TaskData
from leanbert.tasks.recipe import FinetuneDataConfig, Recipe
from qa_helpers import minilm_dir

transformers = pytest.importorskip("transformers")
TEXTS = ["Paris is in France", "the cat Sat on a Mat", "New York has many People", "no capitals here at all",
         "Alice met Bob in London", "we went to Rome by train"]


@dataclass(frozen=True)
class ToySpec:
    name: str = "toycaps"
    main_metric: str = "accuracy"
    metric_names: tuple = ("accuracy",)
    recipe: Recipe = Recipe(max_seq_len=32)


@dataclass(frozen=True)
class ToyFeatures:
    input_ids: np.ndarray
    token_type_ids: np.ndarray
    labels: np.ndarray  # (T,) 0/1, -100 on [CLS]/[SEP]


def _read(path) -> list[str]:
    return [json.loads(line)["text"] for line in Path(path).read_text().splitlines() if line.strip()]


def _encode(texts, tokenizer_dir) -> list[ToyFeatures]:
    tok = Tokenizer.from_file(str(Path(tokenizer_dir) / "tokenizer.json"))
    tok.no_padding()  # MiniLM's tokenizer.json pads to 128
    tok.no_truncation()
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    out = []
    for text in texts:
        enc = tok.encode(text, add_special_tokens=False)
        caps = [int(text[s:e][:1].isupper()) for s, e in enc.offsets]
        ids = np.asarray([cls, *enc.ids, sep], dtype=np.int64)
        out.append(ToyFeatures(ids, np.zeros_like(ids), np.asarray([-100, *caps, -100], dtype=np.int64)))
    return out


def _collate(features) -> Batch:
    width = max(len(f.input_ids) for f in features)
    ids, labels = torch.zeros(len(features), width, dtype=torch.long), torch.full((len(features), width), -100)
    for row, f in enumerate(features):
        ids[row, :len(f.input_ids)], labels[row, :len(f.labels)] = torch.from_numpy(f.input_ids), torch.from_numpy(f.labels)
    mask = (torch.arange(width)[None] < torch.tensor([[len(f.input_ids)] for f in features])).long()
    return Batch(ids, mask, torch.zeros_like(ids), targets={"token_labels": labels})


def _loss(out, batch) -> Output:
    value = F.cross_entropy(out.logits.float().flatten(0, 1), batch.targets["token_labels"].flatten())
    return Output(value, {"task_loss": value.detach()})


def _distill(student, teacher, batch, temperature, hard_weight):
    real = batch.targets["token_labels"] != -100
    return F.kl_div(F.log_softmax(student.logits[real] / temperature, -1),
                    F.softmax(teacher.logits[real] / temperature, -1), reduction="batchmean")


def _tags(model, features, batch_size=8) -> list[list[int]]:
    with torch.no_grad():
        batch = _collate(features)
        logits = model.eval()(batch.input_ids, batch.attention_mask, batch.token_type_ids).logits
    return [logits[i, 1:len(f.input_ids) - 1].argmax(-1).tolist() for i, f in enumerate(features)]


def _score(model, data: EncodedTask, batch_size, env):
    tags = _tags(model, data.dev["dev"])
    gold = [f.labels[1:-1].tolist() for f in data.dev["dev"]]
    right = sum(a == b for t, g in zip(tags, gold) for a, b in zip(t, g))
    return {"accuracy": right / sum(len(g) for g in gold)}, {"dev": tags}


def _format(outputs, features, context) -> str:
    return "".join(json.dumps({"tags": o["logits"][1:-1].argmax(-1).tolist()}) + "\n" for o in outputs)


TOY = TaskType(
    name="toycaps", head="token", hf_suffix="ForTokenClassification",
    hf_names={f: {"token.classifier": "classifier"} for f in ("bert", "albert", "electra")},
    output_layer="token.classifier", head_options=lambda spec: {"num_labels": 2}, data_config=FinetuneDataConfig,
    load=lambda request: TaskData(ToySpec(), _read(request.train), {"dev": _read(request.dev)}, kind="toycaps",
                                  files=(str(request.train), str(request.dev))),
    encode=lambda task, tok, data, model, progress: EncodedTask(
        task.spec, _encode(task.train, tok), {"dev": _encode(task.dev["dev"], tok)}, _collate, 32, kind="toycaps"),
    loss=_loss, distill_loss=_distill, score=_score,
    write_predictions=lambda out, data, p: (out / "predictions.json").write_text(json.dumps(p)),
    task_meta=lambda data: {"name": "toycaps"},
    onnx_outputs={"logits": {0: "batch", 1: "sequence"}}, graph_outputs=lambda out: (out.logits,),
    hf_config=lambda config: {"num_labels": 2},
    predict=PredictSpec(read=lambda source, stdin: _read(source),
                        encode=lambda texts, tok, meta: (_encode(texts, tok), _collate, None), format=_format))


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    register_task_type(TOY)
    root = tmp_path_factory.mktemp("toy")
    (root / "data.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in TEXTS))
    yield root
    TASK_TYPES.pop("toycaps")


QUIET = dict(progress=False, log=lambda *a, **k: None)


@pytest.mark.parametrize("position", ["absolute", "tupe"])
def test_toy_task_type_end_to_end(toy, position, tmp_path):
    torch.manual_seed(0)
    config = tiny_config(vocab_size=30522, max_positions=64, position=position)
    save_model(LeanBertModel(config), tmp_path / "base", tokenizer_dir=minilm_dir())
    data = toy / "data.jsonl"
    task = TOY.load(type("R", (), {"train": data, "dev": data})())
    result = finetune(tmp_path / "base", task, tmp_path / "ft", ["train.max_steps=2", "train.batch_size=3"], **QUIET)
    assert 0 <= result.metrics["accuracy"] <= 1
    assert json.loads((tmp_path / "ft" / "model" / "config.json").read_text())["task"]["type"] == "toycaps"
    kd_config = load_task_config(task.spec.recipe, None, ["train.max_steps=2", "train.batch_size=3",
                                                          "student.init=teacher-layers"])
    kd = distill_task(tmp_path / "ft", task, tmp_path / "kd", kd_config, **QUIET)
    assert set(kd.metrics["teacher_metrics"]) == {"accuracy"}

    ours = load_model(tmp_path / "ft" / "model").eval()
    features = _encode(TEXTS, minilm_dir())
    batch = _collate(features)
    real = batch.attention_mask.bool()
    with torch.no_grad():
        mine = ours(batch.input_ids, batch.attention_mask, batch.token_type_ids).logits
    export_to_hf(tmp_path / "ft" / "model", tmp_path / "hf")
    hf = transformers.AutoModelForTokenClassification.from_pretrained(tmp_path / "hf", trust_remote_code=True)
    assert type(hf).__name__ == ("LeanBertForTokenClassification" if position == "tupe"
                                 else "BertForTokenClassification")
    with torch.no_grad():
        theirs = hf.eval()(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                           token_type_ids=batch.token_type_ids).logits
    torch.testing.assert_close(theirs[real], mine[real], rtol=0, atol=1e-4)

    pytest.importorskip("onnxruntime")
    from leanbert.export.onnx import export_onnx

    export_onnx(tmp_path / "ft" / "model", tmp_path / "onnx", log=lambda *_: None)
    answers = []
    for model in (tmp_path / "ft", tmp_path / "onnx"):
        out = tmp_path / f"{model.name}.jsonl"
        predict_file(model, str(data), str(out), **QUIET)
        answers.append([json.loads(line)["tags"] for line in out.read_text().splitlines()])
    assert answers[0] == answers[1] == _tags(ours, features)
