"""Multiple-choice readers: leanbert's JSONL, SWAG / HellaSwag and Social IQa layouts, and their bad rows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from leanbert.errors import UserError
from leanbert.tasks.choice_files import read_choices

FIXTURES = Path(__file__).with_name("fixtures")


def _write(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_generic_layout_with_varying_option_counts(tmp_path):
    path = _write(tmp_path / "mc.jsonl", [
        {"context": "It rains.", "question": "What do you take?", "options": ["an umbrella", "sunglasses"],
         "label": 0},
        {"context": "Cold.", "options": ["coat", "shorts", "sandals"], "label": 2}])
    first, second = read_choices(path)
    assert (first.context, first.question, first.options, first.label, first.line) == (
        "It rains.", "What do you take?", ("an umbrella", "sunglasses"), 0, 1)
    assert second.question == "" and len(second.options) == 3 and second.label == 2


def test_social_iqa_labels_are_one_based_strings():
    examples = read_choices(FIXTURES / "social_iqa.jsonl")
    rows = [json.loads(line) for line in (FIXTURES / "social_iqa.jsonl").read_text().splitlines()]
    assert len(examples) == len(rows) == 16
    for example, row in zip(examples, rows):
        assert example.options == (row["answerA"], row["answerB"], row["answerC"])
        assert example.label == int(row["label"]) - 1 and example.context == row["context"]
        assert example.question == row["question"]


def test_hellaswag_context_is_ctx_a_and_ctx_b_leads_each_ending():
    examples = read_choices(FIXTURES / "hellaswag.jsonl")
    row = json.loads((FIXTURES / "hellaswag.jsonl").read_text().splitlines()[0])
    assert examples[0].context == row["ctx_a"] and examples[0].question == row["ctx_b"]
    assert examples[0].options == tuple(row["endings"]) and examples[0].label == int(row["label"])


def test_swag_and_ctx_only_layouts(tmp_path):
    path = _write(tmp_path / "swag.jsonl", [
        {"sent1": "He sits down.", "sent2": "He", "ending0": "eats.", "ending1": "flies.", "ending2": "runs.",
         "ending3": "sleeps.", "label": 1},
        {"ctx": "[header] How to bake", "endings": ["Mix.", "Burn."], "label": "0"}])
    swag, wikihow = read_choices(path)
    assert (swag.context, swag.question, swag.options, swag.label) == (
        "He sits down.", "He", ("eats.", "flies.", "runs.", "sleeps."), 1)
    assert (wikihow.context, wikihow.question, wikihow.label) == ("[header] How to bake", "", 0)


def test_label_may_be_missing_only_for_prediction(tmp_path):
    path = _write(tmp_path / "mc.jsonl", [{"context": "c", "options": ["a", "b"]}])
    assert read_choices(path, need_label=False)[0].label is None
    with pytest.raises(UserError, match=r"mc\.jsonl:1: missing field 'label'"):
        read_choices(path)


@pytest.mark.parametrize("row, message", [
    ({"context": "c", "options": [], "label": 0}, r"bad\.jsonl:2: no options; expected at least one"),
    ({"context": "c", "question": "q"}, r"bad\.jsonl:2: no options; expected 'options' .* the object has: "
                                        r"'context', 'question'"),
    ({"context": "c", "options": ["a", "b"], "label": 2}, r"bad\.jsonl:2: label 2 is out of range; expected "
                                                         r"0\.\.1 for 2 options \(0-based\)"),
    ({"context": "c", "options": ["a", "b"], "label": -1}, r"label -1 is out of range"),
    ({"context": "c", "answerA": "a", "answerB": "b", "answerC": "c", "label": "0"},
     r"bad\.jsonl:2: label '0' is out of range; expected 1\.\.3 for 3 options \(1-based\)"),
    ({"context": "c", "options": ["a", "b"], "label": "first"}, r"label 'first' must be an option index"),
    ({"context": "c", "options": ["a", "b"], "label": True}, r"label True must be an option index"),
    ({"context": "c", "options": ["a", 3], "label": 0}, r"bad\.jsonl:2: option 1 must be a string"),
    ({"context": 5, "options": ["a"], "label": 0}, r"bad\.jsonl:2: field 'context' must be a string, found int"),
    ({"options": ["a"], "label": 0}, r"field 'context' must be a string, found missing"),
])
def test_bad_rows_name_file_line_and_expectation(tmp_path, row, message):
    good = {"context": "c", "options": ["a", "b"], "label": 0}
    path = _write(tmp_path / "bad.jsonl", [good, row])
    with pytest.raises(UserError, match=message):
        read_choices(path)


def test_empty_file_and_invalid_json(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text("\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"bad\.jsonl: no rows"):
        read_choices(path)
    path.write_text('{"context": "c", "options": ["a"], "label": 0}\n{oops\n', encoding="utf-8")
    with pytest.raises(UserError, match=r"bad\.jsonl:2: invalid JSON"):
        read_choices(path)
