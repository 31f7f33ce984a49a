"""Training and loading tokenizers (Hugging Face ``tokenizers``).

Two kinds, both with BERT's special tokens at fixed ids so the rest of the pipeline is uniform:
``[PAD]=0 [UNK]=1 [CLS]=2 [SEP]=3 [MASK]=4``.

* ``wordpiece`` (BERT, ELECTRA): BERT normalizer (CJK ideographs split into single characters, so text without
  spaces works), BERT pre-tokenizer, WordPiece with "##" continuation pieces.
* ``unigram`` (ALBERT): SentencePiece-style Unigram LM over Metaspace ("▁" marks a word start) after NFKC, so
  text without spaces (Japanese, Chinese) is segmented by the model itself.

A tokenizer directory holds ``tokenizer.json`` plus ``tokenizer_config.json`` and ``special_tokens_map.json``, so
``transformers.AutoTokenizer.from_pretrained(DIR)`` loads it and encodes identically. Its fingerprint is the
SHA-256 of the canonical JSON of ``tokenizer.json``; prepared datasets record it.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

from leanbert.config import check_integer
from leanbert.data.sources import DEFAULT_MAX_LINE_BYTES, SkipStats, expand_inputs, iter_corpus_lines
from leanbert.errors import UserError
from leanbert.memory_check import check_tokenizer_vocab_fits
from leanbert.outdir import check_out_dir, publish_dir

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
_ROLES = ("pad", "unk", "cls", "sep", "mask")
KINDS = ("wordpiece", "unigram")
METASPACE = "\u2581"  # "▁"


def fingerprint_file(path: str | Path) -> str:
    """SHA-256 of tokenizer.json's canonical JSON (key order and whitespace do not matter)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise UserError(f"{path}: cannot read tokenizer ({err})") from None
    canonical = json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass
class TokenizerInfo:
    """A loaded tokenizer plus what the data pipeline needs to know about its vocabulary.

    word_start: (V,) bool, True where a piece begins a word (whole-word and n-gram masking).
    is_special: (V,) bool, True for special/added tokens (never masked, never drawn as random replacements).
    """

    path: Path
    tokenizer: Tokenizer
    fingerprint: str
    kind: str
    vocab_size: int
    pad_id: int
    unk_id: int
    cls_id: int
    sep_id: int
    mask_id: int
    word_start: np.ndarray
    is_special: np.ndarray

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` without [CLS]/[SEP]."""
        return self.tokenizer.encode(text, add_special_tokens=False).ids


def _special_names(directory: Path) -> dict[str, str]:
    """Special-token strings by role: ours by default, overridden by tokenizer_config.json when present."""
    names = dict(zip(_ROLES, SPECIAL_TOKENS))
    config_path = directory / "tokenizer_config.json"
    if config_path.is_file():
        try:
            config = json.loads(config_path.read_text(encoding="utf-8"))
        except ValueError as err:
            raise UserError(f"{config_path}: invalid JSON ({err})") from None
        for role in _ROLES:
            value = config.get(f"{role}_token")
            if isinstance(value, dict):
                value = value.get("content")
            if isinstance(value, str):
                names[role] = value
    return names


def _is_cjk(char: str) -> bool:
    """Chinese/Japanese characters (ideographs, kana): text without spaces, where one character is a word for
    whole-word masking (as in BERT's Chinese models); otherwise a whole sentence would be one "word"."""
    code = ord(char)
    return (0x3040 <= code <= 0x30FF or 0x31F0 <= code <= 0x31FF or 0x3400 <= code <= 0x4DBF
            or 0x4E00 <= code <= 0x9FFF or 0xF900 <= code <= 0xFAFF or 0xFF66 <= code <= 0xFF9F
            or 0x20000 <= code <= 0x2FFFF)


def _word_start_table(tokenizer: Tokenizer, is_special: np.ndarray) -> tuple[str, np.ndarray]:
    """Which pieces start a word: WordPiece pieces not starting with "##"; Metaspace/byte-level BPE and Unigram
    pieces starting with "▁" / "Ġ"; and any piece that begins with a CJK character. Special tokens count as
    word starts (they are never masked anyway)."""
    spec = json.loads(tokenizer.to_str())
    model_type = spec["model"]["type"]
    vocab = tokenizer.get_vocab(with_added_tokens=True)
    size = tokenizer.get_vocab_size(with_added_tokens=True)
    starts = np.ones(size, dtype=bool)
    if model_type == "WordPiece":
        prefix = spec["model"].get("continuing_subword_prefix") or "##"
        for token, i in vocab.items():
            body = token[len(prefix):] if token.startswith(prefix) else None
            starts[i] = body is None or (body != "" and _is_cjk(body[0]))
        kind = "wordpiece"
    else:
        marker = "\u0120" if "ByteLevel" in json.dumps(spec.get("pre_tokenizer")) else METASPACE
        for token, i in vocab.items():
            starts[i] = token.startswith(marker) or (token != "" and _is_cjk(token[0]))
        kind = "unigram" if model_type == "Unigram" else model_type.lower()
    starts |= is_special
    return kind, starts


def load_tokenizer(directory: str | Path) -> TokenizerInfo:
    """Load a tokenizer directory (``tokenizer.json`` inside); errors name the file and what is missing."""
    directory = Path(directory)
    path = directory / "tokenizer.json"
    if not path.is_file():
        raise UserError(f"{directory}: not a tokenizer directory (no tokenizer.json); "
                        "train one with `leanbert tokenizer train`")
    try:
        tokenizer = Tokenizer.from_file(str(path))
    except Exception as err:  # tokenizers raises a bare Exception on malformed files
        raise UserError(f"{path}: cannot load tokenizer ({err})") from None
    names = _special_names(directory)
    ids = {}
    for role, name in names.items():
        token_id = tokenizer.token_to_id(name)
        if token_id is None:
            raise UserError(f"{path}: the {role} token {name!r} is not in the vocabulary")
        ids[role] = token_id
    size = tokenizer.get_vocab_size(with_added_tokens=True)
    is_special = np.zeros(size, dtype=bool)
    for token_id in ids.values():
        is_special[token_id] = True
    for added in tokenizer.get_added_tokens_decoder().values() if hasattr(tokenizer, "get_added_tokens_decoder") \
            else []:
        if added.special:
            is_special[tokenizer.token_to_id(added.content)] = True
    kind, word_start = _word_start_table(tokenizer, is_special)
    return TokenizerInfo(path=directory, tokenizer=tokenizer, fingerprint=fingerprint_file(path), kind=kind,
                         vocab_size=size, pad_id=ids["pad"], unk_id=ids["unk"], cls_id=ids["cls"],
                         sep_id=ids["sep"], mask_id=ids["mask"], word_start=word_start, is_special=is_special)


def _new_tokenizer(kind: str, vocab_size: int, lowercase: bool, min_frequency: int):
    if kind == "wordpiece":
        tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]", max_input_chars_per_word=100))
        tokenizer.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True,
                                                          strip_accents=None, lowercase=lowercase)
        tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tokenizer.decoder = decoders.WordPiece(prefix="##")
        trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                            special_tokens=list(SPECIAL_TOKENS), show_progress=False)
    elif kind == "unigram":
        tokenizer = Tokenizer(models.Unigram())
        # whitespace runs -> one space, then strip: "▁" pieces never stand for stray spaces or newlines
        steps = [normalizers.NFKC(), normalizers.Replace(Regex(r"\s+"), " "), normalizers.Strip()]
        if lowercase:
            steps.append(normalizers.Lowercase())
        tokenizer.normalizer = normalizers.Sequence(steps)
        tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement=METASPACE, prepend_scheme="always")
        tokenizer.decoder = decoders.Metaspace(replacement=METASPACE, prepend_scheme="always")
        trainer = trainers.UnigramTrainer(vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS),
                                          unk_token="[UNK]", show_progress=False)
    else:
        raise UserError(f"--kind {kind!r} is not supported; choose one of {', '.join(KINDS)}")
    return tokenizer, trainer


def _batches(lines: Iterator[tuple[bool, str]], size: int = 1000) -> Iterator[list[str]]:
    batch: list[str] = []
    for _, line in lines:
        batch.append(line)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def write_tokenizer_files(tokenizer: Tokenizer, directory: Path, model_max_length: int = 512,
                          lowercase: bool | None = None) -> None:
    """tokenizer.json + the transformers config files, into an existing ``directory``."""
    tokenizer.save(str(directory / "tokenizer.json"))
    special = dict(zip((f"{r}_token" for r in _ROLES), SPECIAL_TOKENS))
    config = {"tokenizer_class": "PreTrainedTokenizerFast", **special, "model_max_length": model_max_length,
              "model_input_names": ["input_ids", "token_type_ids", "attention_mask"],
              "clean_up_tokenization_spaces": False}
    if lowercase is not None:
        config["do_lower_case"] = lowercase
    (directory / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    (directory / "special_tokens_map.json").write_text(json.dumps(special, indent=2) + "\n", encoding="utf-8")


def save_tokenizer(tokenizer: Tokenizer, out_dir: str | Path, model_max_length: int = 512,
                   lowercase: bool | None = None, inputs: Iterable[str | Path] = (),
                   overwrite: bool = False) -> None:
    """Write the tokenizer directory atomically under the output-directory policy (``leanbert.outdir``)."""
    def fill(tmp: Path) -> None:
        write_tokenizer_files(tokenizer, tmp, model_max_length, lowercase)

    publish_dir(out_dir, "tokenizer", fill, inputs=inputs, overwrite=overwrite)


def train_tokenizer(inputs: list[str], out_dir: str | Path, kind: str = "wordpiece", vocab_size: int = 30000,
                    lowercase: bool = False, min_frequency: int = 2, text_field: str = "text",
                    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES, stats: SkipStats | None = None,
                    max_lines: int = 0, overwrite: bool = False) -> TokenizerInfo:
    """Train a tokenizer on corpus files (streamed line by line, never read whole) and save it to ``out_dir``.

    ``max_lines`` > 0 trains on the first that many lines only (like SentencePiece's input_sentence_size; the
    trainers keep counts of distinct words, so time and memory grow with the text read). Returns the loaded
    result. Bad input lines are skipped and counted in ``stats`` like ``leanbert prepare``.
    """
    if vocab_size < len(SPECIAL_TOKENS) + 1:
        raise UserError(f"--vocab-size {vocab_size} is too small (at least {len(SPECIAL_TOKENS) + 1})")
    check_tokenizer_vocab_fits(vocab_size)  # the Rust trainer aborts the process when it cannot allocate
    if min_frequency < 0:
        raise UserError(f"--min-frequency {min_frequency} must be >= 0")
    if max_lines < 0:
        raise UserError(f"--max-lines {max_lines} must be >= 0 (0 = every line)")
    check_integer("--max-lines", max_lines, 0)  # and <= 2**63 - 1: the line reader takes no larger count
    check_integer("--max-line-bytes", max_line_bytes, 1)
    files = expand_inputs(inputs)
    check_out_dir(out_dir, "tokenizer", [*inputs, *files], overwrite)  # before the long training, not after
    stats = stats if stats is not None else SkipStats()
    tokenizer, trainer = _new_tokenizer(kind, vocab_size, lowercase, min_frequency)
    lines = iter_corpus_lines(files, stats, text_field=text_field, max_line_bytes=max_line_bytes)
    if max_lines > 0:
        lines = itertools.islice(lines, max_lines)
    seen = [0]

    def counted() -> Iterator[list[str]]:
        for batch in _batches(lines):
            seen[0] += len(batch)
            yield batch

    tokenizer.train_from_iterator(counted(), trainer=trainer)
    if seen[0] == 0:
        raise UserError(f"no text found in {', '.join(map(str, inputs))} (all input empty or skipped)")
    for token_id, token in enumerate(SPECIAL_TOKENS):
        if tokenizer.token_to_id(token) != token_id:
            raise UserError(f"tokenizer training put {token} at id {tokenizer.token_to_id(token)}, expected "
                            f"{token_id}")  # guards the fixed-id contract against library changes
    cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)])
    save_tokenizer(tokenizer, out_dir, lowercase=lowercase, inputs=[*inputs, *files], overwrite=overwrite)
    return load_tokenizer(out_dir)
