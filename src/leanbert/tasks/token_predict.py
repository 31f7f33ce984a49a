"""``leanbert predict`` for a token-classification (NER) model: raw text -> entities, or words -> tags.

Input, by ``--input``:
* a CoNLL file (``.conll``, ``.bio``, ``.iob``, ``.iob2``): one word per line in the first column, blank lines
  between sentences; the output repeats every input line and appends the predicted tag (other columns, a gold
  tag included, are kept as they are);
* JSONL (``.jsonl``, ``.json``): ``{"tokens": [...]}`` rows (words; CoNLL output as above) or ``{"text": ...}``
  rows (raw text);
* anything else, or ``-`` for stdin: one raw text per line.
Raw text is split into words as the model's tokenizer pre-splits it (BERT: whitespace and punctuation), each
word tagged from its first piece. The output is JSONL, one ``{"index", "text", "entities": [{"type", "score",
"start", "end", "text"}]}`` per input text: entities by seqeval's rules over the word tags; ``score`` is the
mean over the entity's words of the first piece's softmax probability, ``start``/``end`` character offsets
into the text (end exclusive). That is what transformers' ``pipeline("token-classification",
aggregation_strategy="first")`` reports (as ``entity_group``, ``score``, ``start``, ``end``, ``word``).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tokenizers import Tokenizer

from leanbert.errors import UserError
from leanbert.paths import check_regular_file
from leanbert.safe_io import read_json_object
from leanbert.tasks.base import PredictSpec
from leanbert.tasks.encode import load_any_tokenizer
from leanbert.tasks.entities import extract_entities
from leanbert.tasks.predict_length import predict_max_len
from leanbert.tasks.tag_files import JSONL_SUFFIXES, TaggedSentence, conll_lines, read_conll, read_tag_jsonl
from leanbert.tasks.word_align import WordCollator, WordEncoder, WordFeatures, align, word_predictions

CONLL_SUFFIXES = (".conll", ".bio", ".iob", ".iob2")


@dataclass(frozen=True)
class Text:
    text: str
    line: int


def read(source: str, stdin: Any) -> list:
    """Texts or words to tag (module docstring)."""
    if source == "-":
        return _texts(stdin.read().split("\n"))
    path = check_regular_file(Path(source))
    if path.suffix.lower() in CONLL_SUFFIXES:
        return read_conll(path, tagged=False)
    if path.suffix.lower() in JSONL_SUFFIXES:
        return _jsonl_texts(path) if _first_row_has_text(path) else read_tag_jsonl(path, tagged=False)
    return _texts(path.read_text(encoding="utf-8").split("\n"))


def _texts(lines: list[str]) -> list[Text]:
    return [Text(line, number) for number, line in enumerate(lines, start=1) if line.strip()]


def _first_row_has_text(path: Path) -> bool:
    for line in path.read_text(encoding="utf-8").split("\n"):
        if line.strip():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                return False  # the tokens reader reports it
            return isinstance(row, dict) and "text" in row
    return False


def _jsonl_texts(path: Path) -> list[Text]:
    texts = []
    for number, line in enumerate(path.read_text(encoding="utf-8").split("\n"), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise UserError(f"{path}:{number}: invalid JSON ({err.msg}); expected one object per line") from None
        if not isinstance(row, dict) or not isinstance(row.get("text"), str):
            raise UserError(f"{path}:{number}: expected an object with a string field 'text'")
        texts.append(Text(row["text"], number))
    return texts


def model_labels(tokenizer_dir: Path, task_meta: dict[str, Any]) -> tuple[str, ...]:
    """Tag names by label index: the saved task's, else a Hugging Face config's id2label."""
    labels = task_meta.get("labels")
    if isinstance(labels, list) and labels:
        return tuple(str(label) for label in labels)
    config = tokenizer_dir / "config.json"
    if config.is_file():
        id2label = read_json_object(config, "a model config").get("id2label")
        if isinstance(id2label, dict) and id2label:
            return tuple(str(id2label[k]) for k in sorted(id2label, key=int))
    raise UserError(f"{tokenizer_dir}: the model names no tags (no task labels, no id2label); cannot tag")


@dataclass(frozen=True)
class Context:
    labels: tuple[str, ...]
    examples: list
    spans: list  # per raw text: (W, 2) character start/end of each word; None for word input


def _fast_tokenizer(tokenizer_dir: Path) -> Tokenizer:
    tokenizer = load_any_tokenizer(tokenizer_dir)
    fast = tokenizer if isinstance(tokenizer, Tokenizer) else getattr(tokenizer, "backend_tokenizer", None)
    if fast is None:
        raise UserError(f"{tokenizer_dir}: tagging raw text needs a fast tokenizer (tokenizer.json) for "
                        "character offsets")
    fast = Tokenizer.from_str(fast.to_str())
    fast.no_truncation()
    fast.no_padding()
    return fast


def _encode_texts(texts: list[Text], encoder: WordEncoder, fast: Tokenizer) -> tuple[list, list]:
    features, spans = [], []
    for encoding in fast.encode_batch([t.text for t in texts], add_special_tokens=False):
        pieces: dict[int, list[int]] = {}
        bounds: dict[int, list[int]] = {}
        for token_id, word, (start, end) in zip(encoding.ids, encoding.word_ids, encoding.offsets):
            if word is None:
                continue
            pieces.setdefault(word, []).append(token_id)
            bounds.setdefault(word, [start, end])[1] = end
        order = sorted(pieces)
        features.append(align([pieces[w] for w in order], None, encoder.cls_id, encoder.sep_id,
                              encoder.max_seq_len))
        spans.append(np.asarray([bounds[w] for w in order], dtype=np.int64).reshape(-1, 2))
    return features, spans


def encode(examples: list, tokenizer_dir: Path, task_meta: dict[str, Any]) -> tuple[list, WordCollator, Context]:
    labels = model_labels(tokenizer_dir, task_meta)
    max_len = predict_max_len(tokenizer_dir, task_meta)
    encoder = WordEncoder.from_dir(tokenizer_dir, max_len)
    if examples and isinstance(examples[0], Text):
        features, spans = _encode_texts(examples, encoder, _fast_tokenizer(tokenizer_dir))
    else:
        features, spans = encoder.encode_words([s.tokens for s in examples], None), None
    return features, WordCollator(encoder.pad_id), Context(labels, examples, spans)


def text_entities(text: str, logits: np.ndarray, feature: WordFeatures, spans: np.ndarray,
                  labels: tuple[str, ...]) -> list[dict[str, Any]]:
    """Entities of one raw text from its (T, L) logits (module docstring)."""
    ids, scores = word_predictions(logits, feature.first_pieces, labels.index("O") if "O" in labels else 0)
    tags = [labels[i] for i in ids]
    entities = []
    for entity in extract_entities(tags):
        start, end = int(spans[entity.start, 0]), int(spans[entity.end - 1, 1])
        entities.append({"type": entity.type, "score": float(np.mean(scores[entity.start:entity.end])),
                         "start": start, "end": end, "text": text[start:end]})
    return entities


def format_outputs(outputs: list[dict[str, Any]], features: list, context: Context) -> str:
    labels = context.labels
    if context.spans is None:
        outside = labels.index("O") if "O" in labels else 0
        tags = [[labels[i] for i in word_predictions(out["logits"], f.first_pieces, outside)[0]]
                for out, f in zip(outputs, features)]
        sentences: list[TaggedSentence] = context.examples
        return "\n".join(conll_lines(sentences, tags)) + "\n"
    rows = []
    for index, (out, feature, spans, example) in enumerate(zip(outputs, features, context.spans,
                                                                context.examples)):
        entities = text_entities(example.text, out["logits"], feature, spans, labels)
        rows.append(json.dumps({"index": index, "text": example.text, "entities": entities}, ensure_ascii=False))
    return "\n".join(rows) + "\n"


TOKEN_PREDICT = PredictSpec(read=lambda source, stdin: read(source, stdin or sys.stdin), encode=encode,
                            format=format_outputs)
