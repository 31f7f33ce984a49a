"""GLUE loaders: the shared real files (row and label counts from the data README) and small files in the
official MRPC/QQP/MNLI/QNLI layouts written here."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from helpers import shared_data_dir
from leanbert.errors import UserError
from leanbert.tasks.glue import GLUE_TASKS, get_task, load_task, read_examples, resolve_task_dir
from leanbert.tasks.recipe import Recipe

GLUE = (shared_data_dir() or Path("shared-data-not-found")) / "glue"
needs_glue = pytest.mark.skipif(not GLUE.is_dir(), reason=f"shared GLUE data not found at {GLUE}")


@needs_glue
@pytest.mark.parametrize(
    ("task", "train_counts", "dev_counts"),
    [
        ("cola", {1: 6023, 0: 2528}, {1: 365, 0: 162}),
        ("sst2", {0: 29780, 1: 37569}, {0: 428, 1: 444}),
        ("rte", {0: 1249, 1: 1241}, {0: 146, 1: 131}),  # 0 = entailment
        ("wnli", {0: 323, 1: 312}, {0: 40, 1: 31}),
    ],
)
def test_shared_classification_files(task, train_counts, dev_counts):
    data = load_task(task, GLUE)
    assert Counter(e.label for e in data.train) == train_counts
    assert Counter(e.label for e in data.dev["dev"]) == dev_counts
    assert all(isinstance(e.label, int) for e in data.train)
    assert all((e.text_b is None) == (task in ("cola", "sst2")) for e in data.train)
    assert all(e.text_a for e in data.train)


@needs_glue
def test_shared_cola_layout_and_lines():
    data = load_task("cola", GLUE)
    first = data.dev["dev"][0]
    # No header: the first data row is line 1, the sentence is the 4th field.
    assert (first.line, first.text_a, first.label) == (1, "the sailors rode the breeze clear of the rocks", 1)
    assert first.where.endswith("CoLA/dev.tsv:1")


@needs_glue
def test_shared_rte_keeps_quotes_and_order():
    data = load_task("rte", GLUE / "RTE")  # the task folder itself works too
    dev = data.dev["dev"]
    assert dev[0].text_a.startswith("Dana Reeve")
    assert data.spec.labels[dev[0].label] == "not_entailment"
    assert [e.line for e in dev] == list(range(2, 279))  # one row per line: no quote merging
    assert sum('"' in e.text_a + e.text_b for e in data.train) > 0


@needs_glue
def test_shared_stsb_regression():
    data = load_task("stsb", GLUE)
    assert (len(data.train), len(data.dev["dev"])) == (5749, 1500)
    scores = [e.label for e in data.train + data.dev["dev"]]
    assert all(isinstance(s, float) and 0.0 <= s <= 5.0 for s in scores)
    first = data.dev["dev"][0]
    assert (first.text_a, first.text_b, first.label) == (
        "A man with a hard hat is dancing.", "A man wearing a hard hat is dancing.", 5.0)
    assert data.spec.regression and data.spec.num_labels == 1
    assert data.spec.metric_names == ["pearson", "spearman"]


def _write(path: Path, rows: list[list[str]], bom: bool = False, crlf: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = ("\r\n" if crlf else "\n").join("\t".join(r) for r in rows) + ("\r\n" if crlf else "\n")
    path.write_bytes(("\ufeff" if bom else "").encode() + text.encode("utf-8"))
    return path


MRPC_HEADER = ["Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"]


def test_mrpc_official_layout_with_bom_and_crlf(tmp_path):
    rows = [MRPC_HEADER,
            ["1", "702876", "702977", 'Amrozi accused his brother , whom he called " the witness " .',
             "Referring to him as only \" the witness \" , Amrozi accused his brother ."],
            ["0", "2108705", "2108831", "Yucaipa owned Dominick 's before selling the chain .",
             "Yucaipa bought Dominick 's in 1995 for $ 693 million ."]]
    _write(tmp_path / "MRPC" / "train.tsv", rows, bom=True, crlf=True)
    _write(tmp_path / "MRPC" / "dev.tsv", [MRPC_HEADER, rows[2], rows[1]])
    data = load_task("mrpc", tmp_path)
    assert [e.label for e in data.train] == [1, 0]
    assert data.train[0].text_a.startswith("Amrozi") and data.train[0].text_b.endswith("brother .")
    assert not data.train[1].text_b.endswith("\r")
    assert [e.label for e in data.dev["dev"]] == [0, 1]
    assert data.spec.metric_names == ["f1", "accuracy"]


def test_qqp_official_layout(tmp_path):
    header = ["id", "qid1", "qid2", "question1", "question2", "is_duplicate"]
    rows = [header, ["133273", "213221", "213222", "How is the life of a math student?",
                     "Which level of prepration is enough for the exam jlpt5?", "0"],
            ["402555", "536040", "536041", "How do I control my horny emotions?",
             "How do you control your horniness?", "1"]]
    _write(tmp_path / "train.tsv", rows)
    _write(tmp_path / "dev.tsv", rows[:2])
    data = load_task("qqp", tmp_path)
    assert [(e.text_b, e.label) for e in data.train] == [(rows[1][4], 0), (rows[2][4], 1)]
    assert len(data.dev["dev"]) == 1


MNLI_TRAIN = ["index", "promptID", "pairID", "genre", "sentence1_binary_parse", "sentence2_binary_parse",
              "sentence1_parse", "sentence2_parse", "sentence1", "sentence2", "label1", "gold_label"]
MNLI_DEV = MNLI_TRAIN[:11] + ["label2", "label3", "label4", "label5", "gold_label"]


def _mnli_row(i: int, s1: str, s2: str, labels: list[str]) -> list[str]:
    return [str(i), "31193", f"{i}n", "government", f"( ( {s1} ) )", f"( {s2} )", f"(ROOT {s1})",
            f"(ROOT {s2})", s1, s2, *labels]


def test_mnli_matched_and_mismatched(tmp_path):
    folder = tmp_path / "MNLI"
    _write(folder / "train.tsv", [MNLI_TRAIN,
                                  _mnli_row(0, "Conceptually cream skimming has two dimensions.",
                                            "Product and geography are what make it work.", ["neutral"] * 2),
                                  _mnli_row(1, "you know during the season", "You lose the things.",
                                            ["entailment"] * 2)])
    votes = ["neutral", "contradiction", "contradiction", "neutral", "contradiction"]
    _write(folder / "dev_matched.tsv", [MNLI_DEV, _mnli_row(0, "The new rights are nice.",
                                                            "Everyone hates the rights.", votes + ["contradiction"])])
    _write(folder / "dev_mismatched.tsv", [MNLI_DEV, _mnli_row(0, "Your gift is appreciated.",
                                                               "Hundreds gave.", ["neutral"] * 6)])
    data = load_task("mnli", tmp_path)
    labels = data.spec.labels
    assert [labels[e.label] for e in data.train] == ["neutral", "entailment"]
    assert data.train[0].text_a == "Conceptually cream skimming has two dimensions."  # not the parse column
    assert labels[data.dev["matched"][0].label] == "contradiction"  # gold_label, not label1
    assert labels[data.dev["mismatched"][0].label] == "neutral"
    assert data.spec.metric_names == ["accuracy_matched", "accuracy_mismatched"]
    assert data.spec.main_metric == "accuracy_matched"


def test_qnli_official_layout(tmp_path):
    header = ["index", "question", "sentence", "label"]
    rows = [header, ["0", "What came into force after the new constitution was herald?",
                     "As of that day, the new constitution heralding the Second Republic came into force.",
                     "entailment"],
            ["1", "What is the first major city in the stream of the Rhine?",
             "The most important tributaries in this area are the Ill below of Strasbourg.", "not_entailment"]]
    _write(tmp_path / "QNLI" / "train.tsv", rows)
    _write(tmp_path / "QNLI" / "dev.tsv", rows)
    data = load_task("QNLI", tmp_path)
    assert [e.label for e in data.train] == [0, 1]
    assert data.train[0].text_a.startswith("What came")


def test_task_names_and_folders(tmp_path):
    assert get_task("SST-2") is get_task("sst_2") is GLUE_TASKS["sst2"]
    with pytest.raises(UserError, match="unknown task 'sst3'"):
        get_task("sst3")
    with pytest.raises(UserError, match="--train"):
        get_task("custom")
    (tmp_path / "sst-2").mkdir()
    _write(tmp_path / "sst-2" / "train.tsv", [["sentence", "label"], ["good ", "1"]])
    assert resolve_task_dir(get_task("sst2"), tmp_path) == tmp_path / "sst-2"
    with pytest.raises(UserError, match="found neither train.tsv nor a RTE/ folder"):
        resolve_task_dir(get_task("rte"), tmp_path)
    with pytest.raises(UserError, match="missing dev.tsv"):
        load_task("sst2", tmp_path)
    with pytest.raises(UserError, match="no such directory"):
        load_task("sst2", tmp_path / "nope")


def test_recipes():
    for spec in GLUE_TASKS.values():
        r = spec.recipe
        assert 0 < r.lr < 1e-2 and r.epochs >= 3 and r.batch_size >= 8 and 0 <= r.warmup_ratio < 0.5
    assert GLUE_TASKS["rte"].recipe.epochs == 10 and GLUE_TASKS["sst2"].recipe.epochs == 3
    assert Recipe(lr=2e-5, max_seq_len=64).overrides() == {
        "train.lr": 2e-5, "train.epochs": 3, "train.batch_size": 32, "data.max_seq_len": 64,
        "train.warmup_ratio": 0.1, "train.weight_decay": 0.01, "train.layer_decay": 1.0}


# --- malformed rows: the message names the file and the line -----------------------------------------


def test_wrong_field_count_without_header(tmp_path):
    path = _write(tmp_path / "train.tsv", [["cola", "1", "", "a fine sentence ."], ["cola", "0", "bad"]])
    with pytest.raises(UserError, match=rf"{path}:2: expected 4 fields separated by tabs, found 3"):
        read_examples(get_task("cola"), path)


def test_wrong_field_count_with_header(tmp_path):
    path = _write(tmp_path / "dev.tsv", [["index", "sentence1", "sentence2", "label"],
                                         ["0", "a", "b", "entailment"], ["1", "a", "b", "c", "entailment"]])
    with pytest.raises(UserError, match=rf"{path}:3: expected 4 fields like the header \(index, sentence1"):
        read_examples(get_task("rte"), path)


def test_unknown_label(tmp_path):
    path = _write(tmp_path / "dev.tsv", [["index", "sentence1", "sentence2", "label"],
                                         ["0", "a", "b", "entailment"], ["1", "a", "b", "maybe"]])
    with pytest.raises(UserError, match=rf"{path}:3: unknown label 'maybe' .* entailment, not_entailment"):
        read_examples(get_task("rte"), path)


@pytest.mark.parametrize("score", ["high", "nan", "inf", ""])
def test_bad_stsb_score(tmp_path, score):
    header = ["index", "genre", "filename", "year", "old_index", "source1", "source2", "sentence1",
              "sentence2", "score"]
    row = ["0", "main-captions", "MSRvid", "2012test", "0000", "none", "none", "A man.", "A guy.", score]
    path = _write(tmp_path / "dev.tsv", [header, row])
    with pytest.raises(UserError, match=rf"{path}:2: expected a finite number in column 'score'"):
        read_examples(get_task("stsb"), path)


def test_header_without_needed_column(tmp_path):
    path = _write(tmp_path / "train.tsv", [["index", "query", "sentence", "label"], ["0", "q", "s", "entailment"]])
    with pytest.raises(UserError, match=rf"{path}:1: the header has no column 'question'"):
        read_examples(get_task("qnli"), path)


def test_empty_and_header_only_and_bad_utf8(tmp_path):
    empty = tmp_path / "empty.tsv"
    empty.write_text("")
    with pytest.raises(UserError, match="the file is empty"):
        read_examples(get_task("sst2"), empty)
    header_only = _write(tmp_path / "h.tsv", [["sentence", "label"]])
    with pytest.raises(UserError, match="no examples"):
        read_examples(get_task("sst2"), header_only)
    bad = tmp_path / "bad.tsv"
    bad.write_bytes(b"sentence\tlabel\ngood\t1\nbad \xff\t0\n")
    with pytest.raises(UserError, match=rf"{bad}:3: not valid UTF-8"):
        read_examples(get_task("sst2"), bad)
