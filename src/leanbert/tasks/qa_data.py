"""Reading extractive-QA questions: SQuAD JSON (v1.1 and v2.0) and, for ``leanbert predict``, JSONL.

SQuAD JSON: ``{"data": [{"title", "paragraphs": [{"context", "qas": [{"id", "question", "answers":
[{"text", "answer_start"}], "is_impossible"}]}]}]}``. A v2.0 question is unanswerable when ``is_impossible`` is
true or its ``answers`` list is empty (its gold answer is then ""). Every ``answer_start`` must point at its
``text`` in the context. JSONL (predict): one ``{"question", "context"}`` object per line, ``id`` optional (the
line number otherwise). A malformed question stops with one line naming the file and the question id (or the
JSON path / line when there is no id).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from leanbert.errors import UserError


@dataclass(frozen=True)
class QAExample:
    """One question on its context. ``answers``: (text, character start) pairs, empty when unanswerable or
    unknown (predict input)."""

    qid: str
    question: str
    context: str
    answers: tuple[tuple[str, int], ...]
    impossible: bool
    path: str = ""

    @property
    def answer_texts(self) -> list[str]:
        return [text for text, _ in self.answers]


def _load_json(path: Path) -> Any:
    if not path.is_file():
        raise UserError(f"{path}: no such file (expected SQuAD JSON)")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UserError(f"{path}: not valid JSON ({err})") from None


def _field(obj: Any, key: str, kind: type, where: str) -> Any:
    if not isinstance(obj, dict) or key not in obj:
        raise UserError(f"{where}: missing key {key!r}")
    value = obj[key]
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise UserError(f"{where}: {key!r} must be an integer, found {value!r}")
    if kind is not int and not isinstance(value, kind):
        raise UserError(f"{where}: {key!r} must be a {kind.__name__}, found {type(value).__name__} {value!r:.60}")
    return value


def _answers(qa: dict, context: str, where: str) -> tuple[tuple[str, int], ...]:
    out = []
    for k, answer in enumerate(_field(qa, "answers", list, where)):
        spot = f"{where} answer {k}"
        text = _field(answer, "text", str, spot)
        start = _field(answer, "answer_start", int, spot)
        if context[start:start + len(text)] != text:
            found = context[max(start, 0):max(start, 0) + len(text)]
            raise UserError(f"{spot}: answer_start {start} does not point at its text {text!r} (the context has "
                            f"{found!r} there)")
        out.append((text, start))
    return tuple(out)


def _question(qa: Any, context: str, where: str, path: Path) -> QAExample:
    if not isinstance(qa, dict):
        raise UserError(f"{where}: expected a question object, found {type(qa).__name__}")
    qid = _field(qa, "id", str, where)
    where = f"{path}: question {qid}"
    question = _field(qa, "question", str, where)
    impossible = qa.get("is_impossible", False)
    if not isinstance(impossible, bool):
        raise UserError(f"{where}: 'is_impossible' must be true or false, found {impossible!r}")
    answers = _answers(qa, context, where)
    return QAExample(qid, question, context, () if impossible else answers, impossible or not answers,
                     str(path))


def read_squad(path: str | Path) -> list[QAExample]:
    """Every question of a SQuAD JSON file (module docstring)."""
    path = Path(path)
    doc = _load_json(path)
    articles = _field(doc, "data", list, str(path))
    examples: list[QAExample] = []
    seen: set[str] = set()
    for i, article in enumerate(articles):
        for j, paragraph in enumerate(_field(article, "paragraphs", list, f"{path}: data[{i}]")):
            where = f"{path}: data[{i}].paragraphs[{j}]"
            qas = _field(paragraph, "qas", list, where)
            first = qas[0].get("id") if qas and isinstance(qas[0], dict) else None
            if first is not None:  # name the context's first question, as users search by id
                where = f"{path}: question {first} (data[{i}].paragraphs[{j}])"
            context = _field(paragraph, "context", str, where)
            for k, qa in enumerate(qas):
                example = _question(qa, context, f"{path}: data[{i}].paragraphs[{j}].qas[{k}]", path)
                if example.qid in seen:
                    raise UserError(f"{path}: question {example.qid}: the id is used twice")
                seen.add(example.qid)
                examples.append(example)
    if not examples:
        raise UserError(f"{path}: no questions")
    return examples


def read_jsonl(path: str | Path, lines: list[str] | None = None) -> list[QAExample]:
    """Questions from JSONL ``{"question", "context", "id"?}`` (``lines``: the text already read, e.g. stdin)."""
    if lines is None:
        try:
            lines = Path(path).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as err:
            raise UserError(f"{path}: cannot read ({err})") from None
    examples = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise UserError(f"{where}: not valid JSON ({err})") from None
        qid = row.get("id", str(number)) if isinstance(row, dict) else str(number)
        if not isinstance(qid, str | int) or isinstance(qid, bool):
            raise UserError(f"{where}: 'id' must be a string or integer, found {qid!r}")
        where = f"{where} (question {qid})"
        examples.append(QAExample(str(qid), _field(row, "question", str, where), _field(row, "context", str, where),
                                  (), False, str(path)))
    return examples


def read_questions(path: str, stdin_text: str | None = None) -> list[QAExample]:
    """predict's input: SQuAD JSON (a ``.json`` file) or JSONL (any other name); ``-`` reads JSONL from
    ``stdin_text``."""
    if path == "-":
        return read_jsonl("<stdin>", (stdin_text or "").splitlines())
    file = Path(path)
    if not file.is_file():
        raise UserError(f"--input {path}: no such file")
    if file.suffix.lower() == ".json":
        return read_squad(file)
    return read_jsonl(file)
