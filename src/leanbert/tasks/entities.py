"""Entities from BIO tags, and entity-level precision / recall / F1 as seqeval computes them by default.

seqeval's default (non-strict, "conlleval") rules for BIO tags, which ``extract_entities`` follows:
* ``B-X`` always starts an entity of type X;
* ``I-X`` continues the open entity when that entity has type X, and otherwise starts a new one: an ``I-``
  with no ``B-`` before it (after ``O``, at the start, or after another type) is an entity, not an error;
* ``O`` or a change of type ends the open entity.
An entity is (type, first word, one past the last word); a prediction counts only when type and both
boundaries equal a gold entity's. Sentences are scored separately (seqeval joins them with ``O``, so no entity
crosses a sentence boundary either way).

Scores (seqeval's ``classification_report`` / ``f1_score`` with the default micro average): per type,
precision = correct / predicted, recall = correct / gold, F1 their harmonic mean, 0 where a denominator is 0
(seqeval's ``zero_division`` default after its warning); the micro average pools the counts over types.
The per-type table lists every type that occurs in the gold or the predicted tags, as seqeval's does.
Token accuracy is the fraction of words whose predicted tag equals the gold tag (seqeval's ``accuracy_score``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Entity:
    type: str
    start: int  # first word
    end: int  # one past the last word


def _split(tag: str) -> tuple[str, str]:
    """("B" | "I" | "O", type); O's type is "" (never equal to an entity type)."""
    return ("O", "") if tag == "O" else (tag[0], tag[2:])


def extract_entities(tags: Sequence[str]) -> list[Entity]:
    """Entities of one sentence's BIO tags, with seqeval's default rules (see the module docstring)."""
    entities = []
    open_type, open_start = "", -1
    for i, tag in enumerate(tags):
        prefix, kind = _split(tag)
        continues = prefix == "I" and open_type == kind
        if open_type and not continues:
            entities.append(Entity(open_type, open_start, i))
            open_type = ""
        if prefix != "O" and not continues:
            open_type, open_start = kind, i
    if open_type:
        entities.append(Entity(open_type, open_start, len(tags)))
    return entities


def _ratio(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator else 0.0


def _scores(correct: int, predicted: int, gold: int) -> dict[str, float]:
    precision, recall = _ratio(correct, predicted), _ratio(correct, gold)
    f1 = _ratio(2 * correct, predicted + gold)  # = 2PR / (P + R), and 0 when nothing was found or expected
    return {"precision": precision, "recall": recall, "f1": f1}


@dataclass(frozen=True)
class EntityReport:
    precision: float
    recall: float
    f1: float
    token_accuracy: float
    per_type: dict[str, dict[str, float]]  # type -> precision, recall, f1, support (gold entities)

    def metrics(self, types: Sequence[str] | None = None) -> dict[str, float]:
        """Flat numbers for logs and metrics.json: entity_* micro averages, token_accuracy, and f1_<type> for
        each of ``types`` (default: the table's), 0 for a type neither gold nor predicted (seqeval's 0/0), so
        that every run of one task reports the same keys."""
        flat = {"entity_f1": self.f1, "entity_precision": self.precision, "entity_recall": self.recall,
                "token_accuracy": self.token_accuracy}
        for name in self.per_type if types is None else types:
            flat[f"f1_{name}"] = self.per_type.get(name, {}).get("f1", 0.0)
        return flat

    def table(self) -> str:
        """The per-type table as text (seqeval's classification_report layout)."""
        width = max([len(name) for name in self.per_type] + [len("micro avg")])
        lines = [f"{'':>{width}}  precision    recall  f1-score   support", ""]
        for name, row in [*self.per_type.items(), ("micro avg", self._micro_row())]:
            lines.append(f"{name:>{width}}  {row['precision']:9.4f} {row['recall']:9.4f} {row['f1']:9.4f} "
                         f"{int(row['support']):9d}")
        return "\n".join(lines)

    def _micro_row(self) -> dict[str, float]:
        support = sum(row["support"] for row in self.per_type.values())
        return {"precision": self.precision, "recall": self.recall, "f1": self.f1, "support": support}


def entity_report(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> EntityReport:
    """Scores over sentences of gold and predicted tags (the same number of words in each pair)."""
    correct: Counter[str] = Counter()
    n_gold: Counter[str] = Counter()
    n_pred: Counter[str] = Counter()
    words = right = 0
    for gold_tags, pred_tags in zip(gold, predicted, strict=True):
        if len(gold_tags) != len(pred_tags):
            raise ValueError(f"{len(gold_tags)} gold tags but {len(pred_tags)} predicted in one sentence")
        words += len(gold_tags)
        right += sum(g == p for g, p in zip(gold_tags, pred_tags))
        gold_set, pred_set = set(extract_entities(gold_tags)), set(extract_entities(pred_tags))
        n_gold.update(e.type for e in gold_set)
        n_pred.update(e.type for e in pred_set)
        correct.update(e.type for e in gold_set & pred_set)
    per_type = {}
    for name in sorted(set(n_gold) | set(n_pred)):
        per_type[name] = {**_scores(correct[name], n_pred[name], n_gold[name]), "support": float(n_gold[name])}
    micro = _scores(sum(correct.values()), sum(n_pred.values()), sum(n_gold.values()))
    return EntityReport(micro["precision"], micro["recall"], micro["f1"], _ratio(right, words), per_type)
