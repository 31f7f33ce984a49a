"""Multiple-choice files: JSON lines in one of three field layouts, read into ``ChoiceExample``s.

* leanbert's own: ``{"context", "question", "options": [...], "label"}``, label a 0-based option index
  (``question`` may be missing or empty);
* SWAG / HellaSwag: ``{"ctx_a", "ctx_b", "endings": [...], "label"}`` (HellaSwag; ``ctx`` alone also works)
  or ``{"sent1", "sent2", "ending0".."ending3", "label"}`` (SWAG). The context is ``ctx_a`` / ``sent1``; the
  start of the sentence to complete (``ctx_b`` / ``sent2``) goes in front of each ending, as transformers'
  run_swag does; labels are 0-based (HellaSwag stores them as strings "0".."3");
* Social IQa: ``{"context", "question", "answerA", "answerB", "answerC", "label"}``, label 1-based "1".."3".

The layout is recognised per row from its keys, so one file may not mix them by accident without an error
naming the row. Labels become 0-based ints; a label outside the options is refused, naming file, line and
the allowed range. ``label`` may be missing only where labels are not needed (``leanbert predict``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from leanbert.errors import UserError
from leanbert.paths import check_regular_file
from leanbert.safe_io import json_object_line


@dataclass(frozen=True)
class ChoiceExample:
    context: str
    question: str
    options: tuple[str, ...]
    label: int | None  # 0-based, None when the file gives none
    line: int
    path: str = ""  # the file it was read from


def _text(path: Path, number: int, record: dict, key: str, default: str | None = None) -> str:
    value = record.get(key, default)
    if not isinstance(value, str):
        found = "missing" if key not in record else f"{type(value).__name__} {value!r:.60}"
        raise UserError(f"{path}:{number}: field {key!r} must be a string, found {found}")
    return value


def _generic(path: Path, number: int, record: dict) -> tuple[str, str, list[Any], Any, int]:
    options = record["options"]
    if not isinstance(options, list):
        raise UserError(f"{path}:{number}: field 'options' must be a list of strings, found {options!r:.60}")
    return (_text(path, number, record, "context"), _text(path, number, record, "question", ""), options,
            record.get("label"), 0)


def _hellaswag(path: Path, number: int, record: dict) -> tuple[str, str, list[Any], Any, int]:
    endings = record["endings"]
    if not isinstance(endings, list):
        raise UserError(f"{path}:{number}: field 'endings' must be a list of strings, found {endings!r:.60}")
    if "ctx_a" in record:
        return (_text(path, number, record, "ctx_a"), _text(path, number, record, "ctx_b", ""), endings,
                record.get("label"), 0)
    return _text(path, number, record, "ctx"), "", endings, record.get("label"), 0


def _swag(path: Path, number: int, record: dict) -> tuple[str, str, list[Any], Any, int]:
    endings = [record[f"ending{i}"] for i in range(10) if f"ending{i}" in record]
    return (_text(path, number, record, "sent1"), _text(path, number, record, "sent2", ""), endings,
            record.get("label"), 0)


def _social_iqa(path: Path, number: int, record: dict) -> tuple[str, str, list[Any], Any, int]:
    answers = [record[f"answer{letter}"] for letter in "ABCDE" if f"answer{letter}" in record]
    return (_text(path, number, record, "context"), _text(path, number, record, "question", ""), answers,
            record.get("label"), 1)


Layout = Callable[[Path, int, dict], tuple[str, str, list[Any], Any, int]]
# (layout name, key that marks it, reader): the first whose key the row has wins.
LAYOUTS: tuple[tuple[str, str, Layout], ...] = (
    ("options", "options", _generic), ("hellaswag", "endings", _hellaswag), ("swag", "ending0", _swag),
    ("social_iqa", "answerA", _social_iqa))


def _label(path: Path, number: int, raw: Any, base: int, count: int) -> int:
    """0-based label from an int or a digit string (HellaSwag "0".., Social IQa "1".."3")."""
    value = raw
    if isinstance(raw, str) and raw.strip().lstrip("-").isdigit():
        value = int(raw)
    if isinstance(value, bool) or not isinstance(value, int):
        raise UserError(f"{path}:{number}: label {raw!r} must be an option index (an integer)")
    if not base <= value < count + base:
        raise UserError(f"{path}:{number}: label {raw!r} is out of range; expected {base}..{count + base - 1} "
                        f"for {count} options ({'1' if base else '0'}-based)")
    return value - base


def _example(path: Path, number: int, record: dict, need_label: bool) -> ChoiceExample:
    layout = next((item for item in LAYOUTS if item[1] in record), None)
    if layout is None:
        raise UserError(f"{path}:{number}: no options; expected 'options' (with context, question, label), "
                        f"'endings' (HellaSwag), 'ending0'.. (SWAG) or 'answerA'.. (Social IQa); the object has: "
                        f"{', '.join(repr(k) for k in record)}")
    context, question, options, raw_label, base = layout[2](path, number, record)
    if not options:
        raise UserError(f"{path}:{number}: no options; expected at least one answer to choose from")
    for i, option in enumerate(options):
        if not isinstance(option, str):
            raise UserError(f"{path}:{number}: option {i} must be a string, found {option!r:.60}")
    if raw_label is None:
        if need_label:
            raise UserError(f"{path}:{number}: missing field 'label'; expected the index of the right option")
        return ChoiceExample(context, question, tuple(options), None, number, str(path))
    label = _label(path, number, raw_label, base, len(options))
    return ChoiceExample(context, question, tuple(options), label, number, str(path))


def read_choices(path: str | Path, need_label: bool = True) -> list[ChoiceExample]:
    """Every row of a multiple-choice JSONL file (layouts in the module docstring)."""
    path = check_regular_file(Path(path))
    with path.open("rb") as handle:
        return parse_choices(path, handle, need_label)


def parse_choices(path: Path, lines: Iterable[bytes | str], need_label: bool = True) -> list[ChoiceExample]:
    """``read_choices`` on lines already open (``path`` names them in messages; ``-`` for stdin)."""
    examples = []
    for number, raw in enumerate(lines, start=1):
        try:
            text = raw if isinstance(raw, str) else raw.decode("utf-8")
        except UnicodeDecodeError as err:
            raise UserError(f"{path}:{number}: not valid UTF-8 ({err.reason} at byte {err.start})") from None
        text = text.lstrip("\ufeff") if number == 1 else text
        if not text.strip():
            continue
        record = json_object_line(path, number, text)
        examples.append(_example(path, number, record, need_label))
    if not examples:
        raise UserError(f"{path}: no rows; expected one JSON object per line with a context and its options")
    return examples
