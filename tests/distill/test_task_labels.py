"""Task distillation matches the task's labels to the teacher's by name: a teacher fine-tuned on 0/1 and a task
labelled neg/pos is refused (one line, exit 2, nothing written) unless data.label_map says which is which, and
the mapped task is renumbered into the teacher's order."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from helpers import tiny_config
from leanbert.cli import main
from leanbert.config import ConfigError
from leanbert.data.tokenizer import train_tokenizer
from leanbert.distill.labels import align_task_labels, parse_label_map
from leanbert.errors import UserError
from leanbert.model.model import LeanBertModel
from leanbert.model_dir import save_model
from leanbert.tasks.custom import load_custom

WORDS = "good great fine bad awful poor film movie plot".split()


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    w = tmp_path_factory.mktemp("labels")
    rows = [f"a {word} film" for word in WORDS]
    (w / "corpus.txt").write_text("\n".join(rows * 10) + "\n", encoding="utf-8")
    info = train_tokenizer([str(w / "corpus.txt")], w / "tok", vocab_size=60, lowercase=True)
    for name, labels in (("np", ("neg", "pos")), ("01", ("0", "1"))):
        text = "".join(f"{row}\t{labels[i < 3]}\n" for i, row in enumerate(rows))
        (w / f"{name}.tsv").write_text("sentence\tlabel\n" + text, encoding="utf-8")
    torch.manual_seed(0)
    teacher = LeanBertModel(tiny_config(vocab_size=info.vocab_size, heads=["classifier"], num_labels=2))
    save_model(teacher, w / "teacher", tokenizer_dir=w / "tok",
               extra={"task": {"name": "custom", "labels": ["0", "1"], "max_seq_len": 16}})
    return w


def _task(world: Path, name: str):
    return load_custom(world / f"{name}.tsv", world / f"{name}.tsv", "sentence", "label")


def test_label_map_syntaxes():
    expected = {"neg": "0", "pos": "1"}
    assert parse_label_map({"neg": 0, "pos": 1}) == expected
    assert parse_label_map("neg:0,pos:1") == expected
    assert parse_label_map({"neg:0": None, "pos:1": None}) == expected  # YAML's reading of {neg:0,pos:1}
    assert parse_label_map(None) == {}
    for bad in ([1, 2], {"neg": None}, {"neg": True}):
        with pytest.raises(ConfigError, match="data.label_map"):
            parse_label_map(bad)


def test_names_are_matched_and_a_map_renumbers_into_the_teachers_order(world):
    task = _task(world, "np")
    with pytest.raises(UserError, match=r"fine-tuned on labels 0, 1 but the task's labels are neg, pos; .*"
                                        r"data.label_map=neg:0,pos:1"):
        align_task_labels(task, ("0", "1"), {}, "T")
    same = _task(world, "01")
    assert align_task_labels(same, ("0", "1"), {}, "T") is same
    swapped = align_task_labels(task, ("0", "1"), {"neg": "1", "pos": "0"}, "T")
    assert swapped.spec.labels == ("pos", "neg")  # position j holds the task label meaning teacher label j
    for old, new in zip(task.train, swapped.train):
        assert new.text_a == old.text_a and swapped.spec.labels[new.label] == task.spec.labels[old.label]
    with pytest.raises(UserError, match="'nope' is not a label of the task"):
        align_task_labels(task, ("0", "1"), {"nope": "1"}, "T")
    with pytest.raises(UserError, match="records no label names"):
        align_task_labels(task, None, {"neg": "0"}, "T")


def test_the_cli_refuses_a_mismatch_before_writing_and_trains_with_a_map(world, tmp_path, capsys):
    args = ["distill", "--stage", "task", "--teacher", str(world / "teacher"), "--task", "custom",
            "--train", str(world / "np.tsv"), "--dev", str(world / "np.tsv"), "--text-columns", "sentence",
            "--label-column", "label", "--out", str(tmp_path / "kd"), "student.init=teacher-layers",
            "distill.intermediate_epochs=0", "distill.prediction_epochs=1", "train.batch_size=8",
            "data.max_seq_len=16"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "data.label_map=neg:0,pos:1" in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    assert main([*args, "data.label_map={neg: 0, pos: 1}"]) == 0
    assert (tmp_path / "kd" / "model").is_dir()


def test_an_imported_hugging_face_teacher_keeps_its_label_names(world, tmp_path):
    from leanbert.distill.labels import teacher_labels
    from leanbert.interop.hf import export_to_hf, import_from_hf

    export_to_hf(world / "teacher", tmp_path / "hf")  # id2label {0: "0", 1: "1"} from the saved task labels
    import_from_hf(tmp_path / "hf", tmp_path / "imported")
    assert teacher_labels(tmp_path / "imported", 2) == ("0", "1")
    config = json.loads((tmp_path / "hf" / "config.json").read_text(encoding="utf-8"))
    config["id2label"] = {"0": "LABEL_0", "1": "LABEL_1"}  # transformers' defaults name nothing
    (tmp_path / "hf" / "config.json").write_text(json.dumps(config), encoding="utf-8")
    import_from_hf(tmp_path / "hf", tmp_path / "imported-defaults")
    assert teacher_labels(tmp_path / "imported-defaults", 2) is None
