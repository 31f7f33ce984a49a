"""Entity extraction and entity-level scores, against cases computed by hand from seqeval's documented rules
(default mode: an I- without a B- starts an entity, a type change ends one; micro average; 0 on 0/0)."""

from __future__ import annotations

import pytest

from leanbert.tasks.entities import Entity, entity_report, extract_entities


@pytest.mark.parametrize("tags, expected", [
    (["B-PER", "I-PER", "O", "B-LOC"], [("PER", 0, 2), ("LOC", 3, 4)]),
    (["I-PER", "I-PER", "O"], [("PER", 0, 2)]),  # stray I- at the start: an entity
    (["O", "I-LOC", "B-LOC", "I-LOC"], [("LOC", 1, 2), ("LOC", 2, 4)]),  # B- always starts a new one
    (["B-PER", "I-LOC", "I-LOC"], [("PER", 0, 1), ("LOC", 1, 3)]),  # a type change ends one
    (["B-PER", "B-PER"], [("PER", 0, 1), ("PER", 1, 2)]),
    (["O", "O"], []),
    (["B-geo-loc", "I-geo-loc"], [("geo-loc", 0, 2)]),  # types may hold hyphens (WNUT)
    (["B-X"], [("X", 0, 1)]),
])
def test_extract_entities_follows_seqeval_default_rules(tags, expected):
    assert extract_entities(tags) == [Entity(*e) for e in expected]


def test_scores_by_hand():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O", "B-PER"]]
    pred = [["B-PER", "I-PER", "O", "B-ORG"], ["B-ORG", "O", "I-PER"]]
    # gold: PER(0,2) LOC(3,4) | ORG(0,1) PER(2,3); pred: PER(0,2) ORG(3,4) | ORG(0,1) PER(2,3) (stray I-)
    report = entity_report(gold, pred)
    assert report.precision == pytest.approx(3 / 4)
    assert report.recall == pytest.approx(3 / 4)
    assert report.f1 == pytest.approx(3 / 4)
    assert report.token_accuracy == pytest.approx(5 / 7)  # "B-LOC" vs "B-ORG" and "B-PER" vs "I-PER" differ
    assert report.per_type["PER"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 2.0}
    assert report.per_type["LOC"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1.0}
    org = report.per_type["ORG"]  # 1 right of 2 predicted, 1 gold
    assert (org["precision"], org["recall"], org["support"]) == (0.5, 1.0, 1.0)
    assert org["f1"] == pytest.approx(2 * 0.5 * 1.0 / 1.5)
    assert list(report.per_type) == ["LOC", "ORG", "PER"]  # every type in gold or predicted


def test_boundary_and_type_must_both_match():
    report = entity_report([["B-PER", "I-PER", "I-PER"]], [["B-PER", "I-PER", "O"]])
    assert (report.precision, report.recall, report.f1) == (0.0, 0.0, 0.0)
    report = entity_report([["B-PER", "I-PER"]], [["B-LOC", "I-LOC"]])
    assert report.f1 == 0.0 and set(report.per_type) == {"PER", "LOC"}


def test_micro_average_pools_counts_not_type_scores():
    # PER: 2 gold, 2 right of 2 predicted; MISC: 1 gold, 0 right of 3 predicted.
    gold = [["B-PER", "O", "B-PER", "O", "B-MISC", "O"]]
    pred = [["B-PER", "O", "B-PER", "B-MISC", "O", "B-MISC"]]
    report = entity_report(gold, pred)
    assert report.precision == pytest.approx(2 / 4)  # macro would be (1 + 0) / 2 too, so check recall
    assert report.recall == pytest.approx(2 / 3)  # macro: (1 + 0) / 2 = 0.5
    assert report.f1 == pytest.approx(2 * (1 / 2) * (2 / 3) / (1 / 2 + 2 / 3))


def test_nothing_expected_nothing_found_scores_zero_not_nan():
    report = entity_report([["O", "O"]], [["O", "O"]])
    assert (report.precision, report.recall, report.f1, report.token_accuracy) == (0.0, 0.0, 0.0, 1.0)
    assert report.per_type == {}


def test_entities_do_not_cross_sentences():
    # Two sentences ending/starting in I-PER: two gold entities, not one spanning both.
    report = entity_report([["B-PER", "I-PER"], ["I-PER"]], [["B-PER", "I-PER"], ["I-PER"]])
    assert report.per_type["PER"]["support"] == 2.0 and report.f1 == 1.0


def test_metrics_and_table():
    report = entity_report([["B-PER", "O"]], [["B-PER", "B-LOC"]])
    metrics = report.metrics()
    assert metrics["entity_f1"] == pytest.approx(2 / 3) and metrics["f1_PER"] == 1.0 and metrics["f1_LOC"] == 0.0
    assert report.metrics(["LOC", "ORG", "PER"])["f1_ORG"] == 0.0  # a type of the task absent here
    assert "f1_ORG" not in metrics
    table = report.table()
    assert "micro avg" in table and "PER" in table and len(table.splitlines()) == 5


def test_length_mismatch_is_a_bug_not_a_score():
    with pytest.raises(ValueError, match="2 gold tags but 1 predicted"):
        entity_report([["O", "O"]], [["O"]])
