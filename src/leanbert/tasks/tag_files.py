"""Token-tagging files (NER): CoNLL-style columns or JSONL ``{tokens, tags}``, read into ``TaggedSentence``s.

CoNLL: one token per line, whitespace-separated columns, the token in the first column and the tag in the last
(CoNLL-2003's ``EU NNP B-NP B-ORG``, WNUT's ``token<TAB>tag``); a blank or whitespace-only line ends a sentence
(WNUT-16 separates sentences with a line holding a single tab); ``-DOCSTART-`` lines are skipped. Every token
line of a file must have the same number of columns: a line with another count is a shifted or broken file,
and reading on would silently take a wrong column as the tag.

Tags are BIO: ``O``, ``B-TYPE`` or ``I-TYPE`` (IOB2, and IOB1 files whose entities may start with ``I-``: an
``I-`` tag with no ``B-`` before it starts an entity, as seqeval reads it; see ``entities.py``). Anything else
(``E-``/``S-`` of BIOES, a bare ``PER``) is refused, naming the line: the entity rules here are BIO's.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from leanbert.errors import UserError
from leanbert.paths import check_regular_file
from leanbert.safe_io import json_object_line
from leanbert.tasks.readers import decoded_lines

JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")
DOCSTART = "-DOCSTART-"
_TAG = re.compile(r"^(O|[BI]-\S+)$")


@dataclass(frozen=True)
class TaggedSentence:
    """One sentence: its words, their gold tags (None when the file has none: text to tag), and where it came
    from. ``fields`` keeps each word's input columns (without the tag) so predictions repeat them."""

    tokens: tuple[str, ...]
    tags: tuple[str, ...] | None
    line: int  # 1-based line of the first token (CoNLL) or of the JSON object (JSONL)
    fields: tuple[tuple[str, ...], ...]
    jsonl: bool = False  # CoNLL: word i is on line ``line + i``; JSONL: all on ``line``
    path: str = ""  # the file it was read from

    def where(self, i: int) -> str:
        """Where word i came from, for error messages: ``LINE`` or ``LINE: tags[i]``."""
        return f"{self.line}: tags[{i}]" if self.jsonl else str(self.line + i)


def check_tag(path: Path, where: str, tag: str) -> None:
    if not _TAG.match(tag):
        raise UserError(f"{path}:{where}: tag {tag!r} is not BIO; expected O, B-TYPE or I-TYPE")


def read_conll(path: str | Path, tagged: bool = True) -> list[TaggedSentence]:
    """Sentences of a CoNLL-style file. ``tagged=False`` reads a file of tokens to tag: one column is then
    allowed and no column is taken as the tag."""
    path = check_regular_file(Path(path))
    sentences: list[TaggedSentence] = []
    rows: list[tuple[str, ...]] = []
    start = 0
    width: tuple[int, int] | None = None  # (columns, line that set it)

    def close() -> None:
        if rows:
            tokens = tuple(r[0] for r in rows)
            tags = tuple(r[-1] for r in rows) if tagged else None
            fields = tuple(r[:-1] if tagged else r for r in rows)
            sentences.append(TaggedSentence(tokens, tags, start, fields, path=str(path)))
            rows.clear()

    for number, text in decoded_lines(path):
        columns = tuple(text.split())
        if not columns:
            close()
            continue
        if columns[0] == DOCSTART:
            close()
            continue
        if width is None:
            if tagged and len(columns) < 2:
                raise UserError(f"{path}:{number}: expected a token and its tag separated by whitespace, "
                                f"found one column {columns[0]!r}")
            width = (len(columns), number)
        elif len(columns) != width[0]:
            raise UserError(f"{path}:{number}: expected {width[0]} whitespace-separated columns like line "
                            f"{width[1]} (the token first, the tag last), found {len(columns)}")
        if tagged:
            check_tag(path, str(number), columns[-1])
        if not rows:
            start = number
        rows.append(columns)
    close()
    return _nonempty(path, sentences)


def _string_list(path: Path, number: int, record: dict, key: str) -> list[str]:
    value = record.get(key)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise UserError(f"{path}:{number}: field {key!r} must be a list of strings, found {value!r:.80}")
    return value


def read_tag_jsonl(path: str | Path, tagged: bool = True) -> list[TaggedSentence]:
    """Sentences of a JSON-lines file, one ``{"tokens": [...], "tags": [...]}`` object per line (``tags``
    optional when ``tagged`` is False). A token must be one non-empty word without whitespace, so that
    predictions.conll keeps one token per line."""
    path = check_regular_file(Path(path))
    sentences: list[TaggedSentence] = []
    for number, text in decoded_lines(path):
        if not text.strip():
            continue
        record = json_object_line(path, number, text)
        tokens = _string_list(path, number, record, "tokens")
        for i, token in enumerate(tokens):
            if not token or token.split() != [token]:
                raise UserError(f"{path}:{number}: tokens[{i}]={token!r} must be one non-empty word "
                                "without whitespace")
        tags = None
        if tagged or "tags" in record:
            tags = _string_list(path, number, record, "tags")
            if len(tags) != len(tokens):
                raise UserError(f"{path}:{number}: {len(tokens)} tokens but {len(tags)} tags; "
                                "expected one tag per token")
            for i, tag in enumerate(tags):
                check_tag(path, f"{number}: tags[{i}]", tag)
        if tokens:
            sentences.append(TaggedSentence(tuple(tokens), None if tags is None else tuple(tags), number,
                                            tuple((t,) for t in tokens), jsonl=True, path=str(path)))
    return _nonempty(path, sentences)


def _nonempty(path: Path, sentences: list[TaggedSentence]) -> list[TaggedSentence]:
    if not sentences:
        raise UserError(f"{path}: no sentences; expected tokens with tags (CoNLL columns or JSONL)")
    return sentences


def read_tagged(path: str | Path, tagged: bool = True) -> list[TaggedSentence]:
    """CoNLL or JSONL by the suffix (.jsonl/.ndjson/.json are JSONL, anything else CoNLL)."""
    if Path(path).suffix.lower() in JSONL_SUFFIXES:
        return read_tag_jsonl(path, tagged)
    return read_conll(path, tagged)


def check_known_tags(path: str | Path, sentences: Sequence[TaggedSentence], known: Sequence[str]) -> None:
    """A dev/test tag the model has no label for cannot be predicted and would quietly count as an error:
    refuse it, naming the first line that has it."""
    allowed = set(known)
    for sentence in sentences:
        for offset, tag in enumerate(sentence.tags or ()):
            if tag not in allowed:
                types = sorted({t[2:] for t in allowed if t != "O"})
                raise UserError(f"{path}:{sentence.where(offset)}: tag {tag!r}: the training data has no entity "
                                f"type {tag[2:]!r}; expected O or B-/I- of {', '.join(types) or '(none)'}")


def label_list(sentences: Iterable[TaggedSentence]) -> list[str]:
    """The label set: O, then B- and I- of every entity type seen (both, so that a type seen only as
    single-word B- entities can still label a word's later sub-words I-), by type. Stable across runs."""
    types = {tag[2:] for s in sentences for tag in (s.tags or ()) if tag != "O"}
    return ["O", *(f"{prefix}-{name}" for name in sorted(types) for prefix in "BI")]


def conll_lines(sentences: Sequence[TaggedSentence], predicted: Sequence[Sequence[str]]) -> list[str]:
    """predictions.conll: each input line's columns (gold tag included) with the predicted tag appended, a
    blank line after each sentence (the layout conlleval reads)."""
    lines = []
    for sentence, tags in zip(sentences, predicted, strict=True):
        gold = sentence.tags or (None,) * len(sentence.tokens)
        for fields, gold_tag, tag in zip(sentence.fields, gold, tags, strict=True):
            lines.append("\t".join([*fields, *([gold_tag] if gold_tag is not None else []), tag]))
        lines.append("")
    return lines
