"""Shared fixtures: small slices of the real corpora, a tokenizer trained on them, a prepared dataset."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import shared_data_dir
from leanbert.data.prepare import prepare_dataset
from leanbert.data.tokenizer import train_tokenizer

CORPUS = (shared_data_dir() or Path("shared-data-not-found")) / "corpus"


def head_lines(path: Path, n: int) -> str:
    """The first ``n`` lines of a corpus file, cut at a document boundary (blank line) when possible."""
    lines = path.read_text(encoding="utf-8").splitlines()[:n]
    while lines and lines[-1].strip():
        lines.pop()
    return "\n".join(lines).strip() + "\n"


@pytest.fixture(scope="session")
def corpus_dir(tmp_path_factory) -> Path:
    """~2,500 lines of movie reviews (short documents) + ~600 lines of Wikipedia (long documents)."""
    out = tmp_path_factory.mktemp("corpus")
    (out / "movie-reviews.txt").write_text(head_lines(CORPUS / "movie-reviews.txt", 2500), encoding="utf-8")
    (out / "wiki-sample.txt").write_text(head_lines(CORPUS / "wiki-sample.txt", 600), encoding="utf-8")
    return out


@pytest.fixture(scope="session")
def wordpiece_dir(tmp_path_factory, corpus_dir) -> Path:
    out = tmp_path_factory.mktemp("tok") / "wordpiece"
    train_tokenizer([str(corpus_dir)], out, kind="wordpiece", vocab_size=2000, lowercase=True)
    return out


@pytest.fixture(scope="session")
def unigram_dir(tmp_path_factory, corpus_dir) -> Path:
    out = tmp_path_factory.mktemp("tok") / "unigram"
    train_tokenizer([str(corpus_dir / "movie-reviews.txt")], out, kind="unigram", vocab_size=800, lowercase=True)
    return out


@pytest.fixture(scope="session")
def dataset_dir(tmp_path_factory, corpus_dir, wordpiece_dir) -> Path:
    out = tmp_path_factory.mktemp("data") / "wp"
    prepare_dataset([str(corpus_dir)], wordpiece_dir, out, valid_fraction=0.1, progress=False)
    return out
