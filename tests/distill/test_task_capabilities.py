"""Task distillation asks the task type what it can do, not its name: ``logits_per_row`` opens the teacher cache
and ``--unlabeled``, ``named_classes`` the label-name alignment. The built-in sentence type declares both, QA,
tagging and multiple choice neither (with the same refusals as before); a new type declaring them gets them."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from leanbert.cli import main
from leanbert.distill.labels import align_task_labels
from leanbert.distill.run import rows_are_sentences
from leanbert.errors import UserError
from leanbert.tasks import TASK_TYPES, EncodedTask, get_task_type
from leanbert.tasks.glue import Example, TaskData, TaskSpec

FIXTURES = Path(__file__).resolve().parents[1] / "tasks" / "fixtures"


def _encoded(kind: str) -> EncodedTask:
    return EncodedTask(spec=None, train=[], dev={}, collator=list, max_seq_len=8, kind=kind)


def _labelled(kind: str) -> TaskData:
    spec = TaskSpec("custom", "", ("sentence",), "label", ("neg", "pos"), ("accuracy",))
    rows = [Example("a good film", None, 1), Example("a bad film", None, 0)]
    return TaskData(spec, rows, {"dev": rows}, kind=kind)


@pytest.fixture
def row_type():
    """The sentence type under another name (a type declaring both capabilities), removed afterwards."""
    toy = dataclasses.replace(get_task_type("sequence"), name="toy_rows", aliases=())
    TASK_TYPES[toy.name] = toy
    yield toy
    del TASK_TYPES[toy.name]


def test_the_built_in_types_declare_what_they_were_doing_by_name():
    assert rows_are_sentences(_encoded("sequence")) and get_task_type("sequence").named_classes
    for name in ("qa", "token", "choice"):
        assert not rows_are_sentences(_encoded(name)), name
        assert not get_task_type(name).named_classes, name


def test_a_type_is_read_for_its_capability_not_its_name(row_type):
    assert rows_are_sentences(_encoded(row_type.name))
    aligned = align_task_labels(_labelled(row_type.name), ("pos", "neg"), {}, "teacher")
    assert aligned.spec.labels == ("pos", "neg") and [e.label for e in aligned.train] == [0, 1]


def test_a_type_without_named_classes_keeps_its_labels_and_refuses_a_label_map():
    task = _labelled("qa")
    assert align_task_labels(task, ("pos", "neg"), {}, "teacher") is task
    with pytest.raises(UserError, match=r"^data.label_map is for sentence classification; the task is a qa task$"):
        align_task_labels(task, ("pos", "neg"), {"neg": "neg"}, "teacher")


def test_unlabeled_text_is_refused_for_a_qa_task(tmp_path, capsys):
    (tmp_path / "teacher").mkdir()
    (tmp_path / "u.txt").write_text("some text\n", encoding="utf-8")
    squad = str(FIXTURES / "squad_v1_tiny.json")
    code = main(["distill", "--stage", "task", "--teacher", str(tmp_path / "teacher"), "--task", "qa",
                 "--train", squad, "--dev", squad, "--unlabeled", str(tmp_path / "u.txt"),
                 "--out", str(tmp_path / "out")])
    assert code == 2
    assert "--unlabeled is for sentence(-pair) tasks; qa is a qa task" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
