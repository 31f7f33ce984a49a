"""Token classification end to end: finetune --task ner, predict (CoNLL and raw text), export to transformers'
*ForTokenClassification (logits within 1e-5) and ONNX, transformers' token-classification pipeline against
`leanbert predict`, distill --stage task, and bad input (one line, exit 2, nothing written)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from tokenizers import Tokenizer

from helpers import randomize_, tiny_config
from leanbert.batch import IGNORE_INDEX
from leanbert.cli import main
from leanbert.model.model import LeanBertModel
from leanbert.model_dir import load_model, save_model
from leanbert.tasks.base import TaskRequest
from leanbert.tasks.entities import entity_report
from leanbert.tasks.tag_files import label_list, read_tagged
from leanbert.tasks.token import TokenDataConfig, encode, load
from tagging_helpers import make_tokenizer_dir

FIXTURES = Path(__file__).with_name("fixtures")
TRAIN, DEV = FIXTURES / "wnut_train.conll", FIXTURES / "wnut_dev.conll"
QUICK = ["train.max_steps=3", "train.batch_size=8", "data.max_seq_len=64", "train.device=cpu"]
TEXTS = ["Peter lives in New York, near the Empire State Building.", "@paulwalk Microsoft bought GitHub",
         "a lady walks to a barbell and lifts it", "Paris and London are big cities"]


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("ner")
    tok = make_tokenizer_dir(root / "tok", vocab_size=300)
    vocab = Tokenizer.from_file(str(tok / "tokenizer.json")).get_vocab_size()
    torch.manual_seed(0)
    base = save_model(LeanBertModel(tiny_config(vocab_size=vocab, heads=["mlm"], max_positions=64)), root / "base",
                      tokenizer_dir=tok)
    out = root / "ner"
    assert main(["finetune", str(base), "--task", "ner", "--train", str(TRAIN), "--dev", str(DEV), "--out", str(out),
                 "--quiet", *QUICK]) == 0
    return {"root": root, "tok": tok, "vocab": vocab, "base": base, "run": out}


FAMILIES = {"bert": {}, "albert": {"family": "albert", "sharing": "all", "embedding_size": 16},
            "electra": {"family": "electra", "embedding_size": 16}}


def random_tagger(world, family: str = "bert") -> Path:
    """A token model with random weights (decisive, varied tags) and the fixture's tag names, saved."""
    labels = label_list(read_tagged(TRAIN))
    torch.manual_seed(1)
    model = LeanBertModel(tiny_config(vocab_size=world["vocab"], heads=["token"], num_labels=len(labels),
                                      max_positions=64, **FAMILIES[family]))
    randomize_(model.heads, std=1.0, seed=3)  # a decisive random head on the freshly initialised encoder
    task = {"type": "token", "name": "ner", "labels": labels, "max_seq_len": 64}
    return save_model(model, world["root"] / f"random-{family}", tokenizer_dir=world["tok"], extra={"task": task})


def _columns(path: Path) -> list[list[list[str]]]:
    sentences, current = [], []
    for line in path.read_text(encoding="utf-8").split("\n"):
        if not line.strip():
            if current:
                sentences.append(current)
            current = []
        else:
            current.append(line.split("\t"))
    return sentences


def test_finetune_writes_predictions_and_consistent_metrics(world):
    run = world["run"]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["main_metric"] == "entity_f1"
    dev = read_tagged(DEV)
    predicted = _columns(run / "predictions.conll")
    assert [[row[0] for row in s] for s in predicted] == [list(s.tokens) for s in dev]
    assert [[row[1] for row in s] for s in predicted] == [list(s.tags) for s in dev]  # gold kept
    report = entity_report([list(s.tags) for s in dev], [[row[2] for row in s] for s in predicted])
    assert metrics["entity_f1"] == pytest.approx(report.f1)
    assert metrics["token_accuracy"] == pytest.approx(report.token_accuracy)
    assert "micro avg" in (run / "entity_report.txt").read_text()
    model = load_model(run / "model")
    assert model.config.heads == ["token"] and model.config.num_labels == len(label_list(read_tagged(TRAIN)))


def test_predict_on_conll_repeats_finetunes_predictions(world, tmp_path):
    out = tmp_path / "pred.conll"
    assert main(["predict", str(world["run"]), "--input", str(DEV), "--out", str(out), "--quiet"]) == 0
    assert out.read_text() == (world["run"] / "predictions.conll").read_text()


@pytest.mark.parametrize("family", ["bert", "albert", "electra"])
def test_export_to_transformers_token_classification(world, tmp_path, family):
    import transformers

    model_dir = random_tagger(world, family)
    hf_dir = tmp_path / "hf"
    assert main(["export", str(model_dir), str(hf_dir)]) == 0
    config = json.loads((hf_dir / "config.json").read_text())
    assert config["architectures"] == [f"{family.capitalize()}ForTokenClassification"]
    assert config["id2label"]["0"] == "O"
    hf = transformers.AutoModelForTokenClassification.from_pretrained(hf_dir).eval()
    ours = load_model(model_dir).eval()
    ids = torch.randint(5, world["vocab"], (3, 11), generator=torch.Generator().manual_seed(0))
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0
    with torch.no_grad():
        theirs = hf(input_ids=ids, attention_mask=mask).logits
        mine = ours(ids, mask).logits
    assert torch.allclose(mine[mask.bool()], theirs[mask.bool()], atol=1e-5)


def _leanbert_entities(model: Path, texts_file: Path, out: Path) -> list[list[dict]]:
    assert main(["predict", str(model), "--input", str(texts_file), "--out", str(out), "--quiet",
                 "--overwrite"]) == 0
    return [json.loads(line)["entities"] for line in out.read_text().splitlines()]


def test_pipeline_first_aggregation_gives_leanberts_entities(world, tmp_path):
    import transformers

    model_dir = random_tagger(world)
    hf_dir = tmp_path / "hf"
    assert main(["export", str(model_dir), str(hf_dir)]) == 0
    texts_file = tmp_path / "texts.txt"
    texts_file.write_text("\n".join(TEXTS) + "\n", encoding="utf-8")
    ours = _leanbert_entities(model_dir, texts_file, tmp_path / "ours.jsonl")
    pipe = transformers.pipeline("token-classification", model=str(hf_dir), aggregation_strategy="first")
    theirs = pipe(TEXTS)
    # random weights tag plenty, of several types: the comparison sees real entities
    assert sum(len(e) for e in ours) >= 6 and len({e["type"] for s in ours for e in s}) >= 3
    for text, mine, reference in zip(TEXTS, ours, theirs):
        assert [(e["type"], e["start"], e["end"]) for e in mine] == \
            [(e["entity_group"], e["start"], e["end"]) for e in reference]
        assert [e["score"] for e in mine] == pytest.approx([float(e["score"]) for e in reference], abs=1e-5)
        assert all(e["text"] == text[e["start"]:e["end"]] for e in mine)
    # the same entities from the Hugging Face folder and from ONNX
    from_hf = _leanbert_entities(hf_dir, texts_file, tmp_path / "hf.jsonl")
    assert [[(e["type"], e["start"], e["end"]) for e in s] for s in from_hf] == \
        [[(e["type"], e["start"], e["end"]) for e in s] for s in ours]
    onnx_dir = tmp_path / "onnx"
    assert main(["export", str(model_dir), str(onnx_dir), "--format", "onnx"]) == 0
    from_onnx = _leanbert_entities(onnx_dir, texts_file, tmp_path / "onnx.jsonl")
    assert [[(e["type"], e["start"], e["end"]) for e in s] for s in from_onnx] == \
        [[(e["type"], e["start"], e["end"]) for e in s] for s in ours]


def test_distill_task_stage_on_ner(world, tmp_path, capsys):
    out = tmp_path / "kd"
    rc = main(["distill", "--stage", "task", "--teacher", str(world["run"]), "--task", "ner", "--train", str(TRAIN),
               "--dev", str(DEV), "--out", str(out), "--quiet", "student.init=teacher-layers", "student.keep_every=2",
               "distill.intermediate_epochs=1", "distill.prediction_epochs=1", "data.max_seq_len=64",
               "train.batch_size=8", "train.device=cpu"])
    assert rc == 0, capsys.readouterr().err
    metrics = json.loads((out / "metrics.json").read_text())
    assert "entity_f1" in metrics and "entity_f1" in metrics["teacher_metrics"]
    assert (out / "predictions.conll").is_file()
    student = load_model(out / "model")
    assert student.config.heads == ["token"] and student.config.num_layers == 1


def _fails(capsys, argv: list[str], out: Path, message: str) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
    assert not out.exists()


def test_bad_ner_input_is_one_line_exit_2_and_nothing_written(world, tmp_path, capsys):
    out = tmp_path / "out"
    base = ["finetune", str(world["base"]), "--task", "ner", "--out", str(out), "--quiet", *QUICK]
    unseen = tmp_path / "dev_unseen.conll"
    unseen.write_text("Netflix\tB-tvstation\nrocks\tO\n", encoding="utf-8")
    _fails(capsys, [*base, "--train", str(TRAIN), "--dev", str(unseen)], out,
           f"{unseen}:1: tag 'B-tvstation': the training data has no entity type 'tvstation'")
    shifted = tmp_path / "shifted.conll"
    shifted.write_text("Paris\tB-geo-loc\nis NN\tO\n", encoding="utf-8")
    _fails(capsys, [*base, "--train", str(shifted), "--dev", str(DEV)], out,
           f"{shifted}:2: expected 2 whitespace-separated columns like line 1")
    _fails(capsys, [*base, "--train", str(TRAIN)], out, "--task ner needs --train FILE and --dev FILE")
    _fails(capsys, [*base, "--train", str(TRAIN), "--dev", str(DEV), "data.label_all_subwords=maybe"], out,
           "data.label_all_subwords")


def test_predict_input_layouts_agree(world, tmp_path, monkeypatch, capsys):
    """JSONL {tokens} = CoNLL words; JSONL {text} = a text file = stdin."""
    import io

    model_dir = random_tagger(world)
    words = [["Peter", "lives", "in", "Berlin"], ["Microsoft", "bought", "GitHub"]]
    conll, tokens = tmp_path / "words.conll", tmp_path / "words.jsonl"
    conll.write_text("".join("\n".join(s) + "\n\n" for s in words), encoding="utf-8")
    tokens.write_text("".join(json.dumps({"tokens": s}) + "\n" for s in words), encoding="utf-8")
    outputs = []
    for source in (conll, tokens):
        out = tmp_path / f"{source.name}.out"
        assert main(["predict", str(model_dir), "--input", str(source), "--out", str(out), "--quiet"]) == 0
        outputs.append(out.read_text())
    assert outputs[0] == outputs[1] and len(outputs[0].split("\n\n")) == 3
    texts, jsonl = tmp_path / "texts.txt", tmp_path / "texts.jsonl"
    texts.write_text("\n".join(TEXTS) + "\n", encoding="utf-8")
    jsonl.write_text("".join(json.dumps({"text": t}) + "\n" for t in TEXTS), encoding="utf-8")
    from_txt = _leanbert_entities(model_dir, texts, tmp_path / "a.jsonl")
    assert _leanbert_entities(model_dir, jsonl, tmp_path / "b.jsonl") == from_txt
    capsys.readouterr()
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(TEXTS) + "\n"))
    assert main(["predict", str(model_dir), "--input", "-", "--out", "-", "--quiet"]) == 0
    assert [json.loads(line)["entities"] for line in capsys.readouterr().out.splitlines()] == from_txt


def test_label_all_subwords_reaches_the_encoder_and_the_saved_task(world, tmp_path):
    out = tmp_path / "all"
    assert main(["finetune", str(world["base"]), "--task", "ner", "--train", str(TRAIN), "--dev", str(DEV), "--out",
                 str(out), "--quiet", *QUICK, "train.max_steps=1", "data.label_all_subwords=true"]) == 0
    config = json.loads((out / "model" / "config.json").read_text())
    assert config["task"]["label_all_subwords"] is True and config["task"]["type"] == "token"


def test_label_all_subwords_labels_every_piece(world):
    task = load(TaskRequest("ner", train=TRAIN, dev=DEV))
    config = tiny_config(vocab_size=world["vocab"], max_positions=64)
    first = encode(task, world["tok"], TokenDataConfig(max_seq_len=64), config)
    every = encode(task, world["tok"], TokenDataConfig(max_seq_len=64, label_all_subwords=True), config)
    labelled = [int((f.labels != IGNORE_INDEX).sum()) for f in first.train]
    assert labelled == [len(s.tokens) for s in task.train]  # one label per word (no sentence is truncated)
    pieces = [int((f.labels != IGNORE_INDEX).sum()) for f in every.train]
    assert pieces == [len(f.input_ids) - 2 for f in every.train] and sum(pieces) > sum(labelled)
