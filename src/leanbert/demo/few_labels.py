"""The few-label setting of ``leanbert demo``: L labelled training snippets, the rest as unlabeled text.

The labelled sample is stratified (each label keeps its share of the training set, the remainder going to the
labels with the largest fractional parts) and seeded; both parts keep the training file's order. The
unlabeled pool is written as plain text, one snippet per line, without its labels: what
``leanbert distill --unlabeled`` reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from leanbert.demo.data import write_tsv
from leanbert.errors import UserError

Row = tuple[str, str]  # (text, label)


def stratified_sample(labels: list[str], count: int, seed: int) -> list[int]:
    """Indices of ``count`` rows, each label's share as in ``labels`` (largest remainders), in file order."""
    if not 0 < count <= len(labels):
        raise ValueError(f"cannot sample {count} of {len(labels)} rows")
    names = sorted(set(labels))
    members = {name: [i for i, label in enumerate(labels) if label == name] for name in names}
    exact = {name: count * len(members[name]) / len(labels) for name in names}
    take = {name: int(exact[name]) for name in names}
    by_remainder = sorted(names, key=lambda n: (-(exact[n] - take[n]), n))
    for name in by_remainder[: count - sum(take.values())]:
        take[name] += 1
    rng = np.random.default_rng(seed)
    chosen: list[int] = []
    for name in names:
        picked = rng.permutation(len(members[name]))[: take[name]]
        chosen.extend(members[name][i] for i in picked)
    return sorted(chosen)


@dataclass
class LabelSplit:
    labelled: list[Row]
    unlabeled: list[Row]  # their labels are never written where training reads them


def split_labels(train: list[Row], labels: int, seed: int) -> LabelSplit:
    """``labels`` = 0: every row labelled; else a stratified sample of that many rows and the rest unlabeled."""
    if labels == 0:
        return LabelSplit(list(train), [])
    if labels >= len(train):
        raise UserError(f"--labels {labels}: the training set has {len(train):,} snippets; give fewer, or "
                        "--labels all")
    chosen = set(stratified_sample([label for _, label in train], labels, seed))
    return LabelSplit([r for i, r in enumerate(train) if i in chosen],
                      [r for i, r in enumerate(train) if i not in chosen])


def write_split(split: LabelSplit, data_dir: Path) -> tuple[Path, Path | None]:
    """data/train-labelled.tsv and, when there is a pool, data/unlabeled.txt (text only)."""
    labelled = data_dir / "train-labelled.tsv"
    write_tsv(labelled, split.labelled)
    if not split.unlabeled:
        return labelled, None
    pool = data_dir / "unlabeled.txt"
    lines = [" ".join(text.split()) for text, _ in split.unlabeled]  # one line each, no tabs
    pool.write_text("".join(line + "\n" for line in lines if line), encoding="utf-8")
    return labelled, pool


def parse_labels(text: str) -> int:
    """``--labels``: ``all`` -> 0, else a positive integer."""
    if text.strip().lower() == "all":
        return 0
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 2:
        raise UserError(f"--labels {text!r}: expected `all` or a number of labelled snippets >= 2 (e.g. 1000)")
    return value
