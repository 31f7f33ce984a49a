"""CoNLL / JSONL tag files: layouts, WNUT-16's tab separator lines, and a clear error for each bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from leanbert.errors import UserError
from leanbert.tasks.entities import entity_report
from leanbert.tasks.tag_files import (
    check_known_tags,
    conll_lines,
    label_list,
    read_conll,
    read_tagged,
)

FIXTURES = Path(__file__).with_name("fixtures")


def test_conll_2003_layout_docstart_and_whitespace_lines(tmp_path):
    path = tmp_path / "train.conll"
    path.write_text("-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP O\n \t\n"
                    "Peter NNP B-NP B-PER\nBlackburn NNP I-NP I-PER\n", encoding="utf-8")
    first, second = read_conll(path)
    assert first.tokens == ("EU", "rejects") and first.tags == ("B-ORG", "O") and first.line == 3
    assert first.fields[0] == ("EU", "NNP", "B-NP")
    assert second.tokens == ("Peter", "Blackburn") and second.line == 6 and second.where(1) == "7"


def test_wnut_fixture_reads_with_its_tab_separators():
    sentences = read_tagged(FIXTURES / "wnut_train.conll")
    assert len(sentences) == 30
    assert all(len(s.tokens) == len(s.tags) > 0 for s in sentences)
    labels = label_list(sentences)
    assert labels[0] == "O" and "B-geo-loc" in labels and "I-geo-loc" in labels
    assert len(labels) == 1 + 2 * len({t[2:] for s in sentences for t in s.tags if t != "O"})


def test_jsonl_layout(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text(json.dumps({"tokens": ["Paris", "is", "big"], "tags": ["B-LOC", "O", "O"]}) + "\n\n"
                    + json.dumps({"tokens": ["x"], "tags": ["O"]}) + "\n", encoding="utf-8")
    first, second = read_tagged(path)
    assert first.tokens == ("Paris", "is", "big") and second.line == 3 and second.where(0) == "3: tags[0]"


def test_untagged_text_for_prediction(tmp_path):
    path = tmp_path / "words.txt"
    path.write_text("Paris\nis\n\nbig\n", encoding="utf-8")
    first, second = read_conll(path, tagged=False)
    assert first.tokens == ("Paris", "is") and first.tags is None and second.fields == (("big",),)


def test_predictions_conll_repeats_the_input_and_appends_the_prediction(tmp_path):
    path = tmp_path / "dev.conll"
    path.write_text("EU NNP B-ORG\nrejects VBZ O\n", encoding="utf-8")
    sentences = read_conll(path)
    assert conll_lines(sentences, [["B-ORG", "B-PER"]]) == ["EU\tNNP\tB-ORG\tB-ORG", "rejects\tVBZ\tO\tB-PER", ""]


def test_a_stray_i_tag_is_accepted_and_read_as_seqeval_does(tmp_path):
    # Decision: IOB1-style files (entities opened by I-) are legal; the I- starts an entity.
    path = tmp_path / "iob1.conll"
    path.write_text("Peter I-PER\nlives O\nhere I-LOC\n", encoding="utf-8")
    (sentence,) = read_conll(path)
    report = entity_report([sentence.tags], [["B-PER", "O", "B-LOC"]])
    assert report.f1 == 1.0


@pytest.mark.parametrize("text, message", [
    ("EU B-ORG\nrejects VBZ O\n", r"bad\.conll:2: expected 2 whitespace-separated columns like line 1 .* found 3"),
    ("EU NNP B-ORG\n\nrejects O\n", r"bad\.conll:3: expected 3 whitespace-separated columns like line 1"),
    ("EU\n", r"bad\.conll:1: expected a token and its tag .* found one column 'EU'"),
    ("EU S-ORG\n", r"bad\.conll:1: tag 'S-ORG' is not BIO; expected O, B-TYPE or I-TYPE"),
    ("EU ORG\n", r"bad\.conll:1: tag 'ORG' is not BIO"),
    ("-DOCSTART- O\n\n \n", r"bad\.conll: no sentences"),
    (b"EU \xff\n", r"bad\.conll:1: not valid UTF-8"),
])
def test_bad_conll_lines(tmp_path, text, message):
    path = tmp_path / "bad.conll"
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    with pytest.raises(UserError, match=message):
        read_tagged(path)


@pytest.mark.parametrize("row, message", [
    ({"tokens": ["a", "b"], "tags": ["O"]}, r"bad\.jsonl:1: 2 tokens but 1 tags"),
    ({"tokens": ["a"]}, r"bad\.jsonl:1: field 'tags' must be a list of strings"),
    ({"tokens": "a b", "tags": ["O"]}, r"bad\.jsonl:1: field 'tokens' must be a list of strings"),
    ({"tokens": ["New York"], "tags": ["B-LOC"]}, r"bad\.jsonl:1: tokens\[0\]='New York' must be one non-empty word"),
    ({"tokens": ["a"], "tags": ["X-LOC"]}, r"bad\.jsonl:1: tags\[0\]: tag 'X-LOC' is not BIO"),
    ([1, 2], r"bad\.jsonl:1: expected a JSON object, found list"),
])
def test_bad_jsonl_rows(tmp_path, row, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(row) + "\n", encoding="utf-8")
    with pytest.raises(UserError, match=message):
        read_tagged(path)


def test_a_dev_tag_training_never_saw_names_its_line(tmp_path):
    labels = label_list(read_tagged(FIXTURES / "wnut_train.conll"))
    path = tmp_path / "dev.conll"
    path.write_text("Paris\tB-geo-loc\nrocks\tO\n\nNetflix\tB-tvstation\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"dev\.conll:4: tag 'B-tvstation': the training data has no entity type "
                                        r"'tvstation'; expected O or B-/I- of company, "):
        check_known_tags(path, read_tagged(path), labels)
    # I- of a type training saw only as B- is fine: the label set has both.
    path.write_text("Paris\tI-geo-loc\n", encoding="utf-8")
    check_known_tags(path, read_tagged(path), labels)
