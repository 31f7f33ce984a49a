"""TinyBERT's data augmentation for task distillation (Jiao et al., 2020, sec. 3.3 and Algorithm 1;
huawei-noah's TinyBERT/data_augmentation.py).

For each text, every word that is alphabetic and not a stopword gets up to K candidates once: an MLM's top-K
predictions when the MLM's tokenizer keeps it as one piece (``mlm_candidates.py``, batched), else its K
nearest GloVe neighbours (all words when no MLM is given). Then N_a times: each candidate word is replaced, with
probability p_t, by one of its candidates drawn uniformly; stopwords, numbers and punctuation never change.
Variants equal to the original or to an earlier variant are dropped (as in the reference), so an example gets
at most N_a variants. The output holds every original row followed by its variants, all other columns copied.

Differences from the reference, on purpose:
* sentence pairs: each variant augments every text field together (field 2's variants are not glued to the last
  variant of field 1, the reference's bug); each field's words are sampled independently;
* the text outside replaced words is kept as it was (spacing, case, punctuation), and a capitalised word gets a
  capitalised replacement;
* the word itself is never its own candidate, so p_t is the rate at which candidate words really change;
* randomness comes from one generator per example seeded by (seed, example index): the output does not depend
  on batch sizes or chunking.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from leanbert.config import check_seed
from leanbert.distill.glove import GloveVectors
from leanbert.distill.mlm_candidates import MaskRequest, MlmCandidates
from leanbert.distill.table import RecordWriter, read_records, record_texts, text_keys, with_texts
from leanbert.errors import UserError

# NLTK's English stopword list (as the reference uses), plus the clitics "'s"/"'re" it adds.
STOPWORDS = frozenset("""
i me my myself we our ours ourselves you you're you've you'll you'd your yours yourself yourselves he him his
himself she she's her hers herself it it's its itself they them their theirs themselves what which who whom
this that that'll these those am is are was were be been being have has had having do does did doing a an the
and but if or because as until while of at by for with about against between into through during before after
above below to from up down in out on off over under again further then once here there when where why how all
any both each few more most other some such no nor not only own same so than too very s t can will just don
don't should should've now d ll m o re ve y ain aren aren't couldn couldn't didn didn't doesn doesn't hadn
hadn't hasn hasn't haven haven't isn isn't ma mightn mightn't mustn mustn't needn needn't shan shan't shouldn
shouldn't wasn wasn't weren weren't won won't wouldn wouldn't 's 're
""".split())
_TOKEN = re.compile(r"\w+|[^\w\s]")
_REPLACEABLE = re.compile(r"^[A-Za-z]+$")


@dataclass(frozen=True)
class AugmentConfig:
    """TinyBERT's defaults: p_t = 0.4, K = 15, N_a = 20 (the reference uses 20 for SST-2/QNLI, 10 for
    MNLI/QQP, 30 otherwise)."""

    replace_prob: float = 0.4
    top_k: int = 15
    num_augmented: int = 20
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0.0 <= self.replace_prob <= 1.0:
            raise UserError(f"--replace-prob must be in [0, 1], got {self.replace_prob}")
        if self.top_k < 1:
            raise UserError(f"--top-k must be at least 1, got {self.top_k}")
        if self.num_augmented < 0:
            raise UserError(f"--num-augmented must be at least 0, got {self.num_augmented}")
        check_seed("--seed", self.seed)


@dataclass(frozen=True)
class Word:
    """A replaceable word: ``text[start:end]``."""

    start: int
    end: int
    text: str


def replaceable_words(text: str) -> list[Word]:
    """Words (runs of letters/digits; punctuation split off, as BERT's basic tokenizer does) that are purely
    alphabetic and not stopwords."""
    words = []
    for match in _TOKEN.finditer(text):
        token = match.group()
        if _REPLACEABLE.match(token) and token.lower() not in STOPWORDS:
            words.append(Word(match.start(), match.end(), token))
    return words


def match_case(candidate: str, word: str) -> str:
    """``candidate`` in ``word``'s case: UPPER, Capitalised, or as predicted."""
    if len(word) > 1 and word.isupper():
        return candidate.upper()
    if word[:1].isupper():
        return candidate[:1].upper() + candidate[1:]
    return candidate


def rebuild(text: str, words: Sequence[Word], replacements: dict[int, str]) -> str:
    """``text`` with ``words[i]`` replaced by ``replacements[i]``; everything else unchanged."""
    pieces, cursor = [], 0
    for i in sorted(replacements):
        word = words[i]
        pieces.append(text[cursor:word.start])
        pieces.append(replacements[i])
        cursor = word.end
    pieces.append(text[cursor:])
    return "".join(pieces)


class Augmenter:
    """Candidates (MLM + GloVe) and sampled variants; ``augment_batch`` handles many examples at once so the
    MLM runs in batches."""

    def __init__(self, config: AugmentConfig, glove: GloveVectors, mlm: MlmCandidates | None = None):
        self.config = config
        self.glove = glove
        self.mlm = mlm
        self._glove_cache: dict[str, list[str]] = {}

    def _glove_candidates(self, words: list[str]) -> list[list[str]]:
        missing = [w.lower() for w in words if w.lower() not in self._glove_cache]
        if missing:
            self._glove_cache.update(self.glove.neighbours(missing, self.config.top_k))
        return [self._glove_cache[w.lower()] for w in words]

    def candidates(self, texts: list[str]) -> list[tuple[list[Word], list[list[str]]]]:
        """For each text, its replaceable words and each word's candidates (case matched; may be empty)."""
        words = [replaceable_words(t) for t in texts]
        found: list[list[list[str]]] = [[[] for _ in ws] for ws in words]
        glove_slots: list[tuple[int, int]] = []
        requests, request_words, request_slots = [], [], []
        for t, (text, ws) in enumerate(zip(texts, words)):
            if self.mlm is None:
                glove_slots.extend((t, w) for w in range(len(ws)))
                continue
            ids, offsets = self.mlm.encode(text)
            for w, word in enumerate(ws):
                piece = self.mlm.single_piece(ids, offsets, word.start, word.end)
                if piece is None:
                    glove_slots.append((t, w))
                else:
                    requests.append(MaskRequest(tuple(ids), piece))
                    request_words.append(word.text)
                    request_slots.append((t, w))
        if requests:
            for (t, w), options in zip(request_slots, self.mlm.candidates(requests, request_words)):
                found[t][w] = options
        neighbours = self._glove_candidates([words[t][w].text for t, w in glove_slots])
        for (t, w), options in zip(glove_slots, neighbours):
            found[t][w] = options
        return [(ws, [[match_case(c, word.text) for c in options] for word, options in zip(ws, opts)])
                for ws, opts in zip(words, found)]

    def sample(self, texts: Sequence[str], prepared: Sequence[tuple[list[Word], list[list[str]]]],
               rng: np.random.Generator) -> list[list[str]]:
        """Up to N_a distinct variants of one example (all its text fields together), original excluded."""
        seen = {tuple(texts)}
        variants = []
        for _ in range(self.config.num_augmented):
            variant = []
            for text, (words, options) in zip(texts, prepared):
                replacements = {}
                for i, choices in enumerate(options):
                    if not choices:
                        continue
                    choice = choices[int(rng.integers(len(choices)))]
                    if rng.random() < self.config.replace_prob:
                        replacements[i] = choice
                variant.append(rebuild(text, words, replacements))
            key = tuple(variant)
            if key not in seen:
                seen.add(key)
                variants.append(variant)
        return variants

    def augment_batch(self, examples: Sequence[Sequence[str]], first_index: int) -> list[list[list[str]]]:
        """Variants for each example (a list of its text fields); example i uses the generator seeded by
        (seed, first_index + i)."""
        flat = [text for fields in examples for text in fields]
        prepared = self.candidates(flat)
        results, cursor = [], 0
        for offset, fields in enumerate(examples):
            rng = np.random.default_rng([self.config.seed, first_index + offset])
            results.append(self.sample(fields, prepared[cursor:cursor + len(fields)], rng))
            cursor += len(fields)
        return results


def check_paths(input_path: Path, output_path: Path, overwrite: bool) -> None:
    """The output must not be the input, nor a directory, nor exist unless ``overwrite``. (``leanbert augment``
    applies the whole single-file policy, ``outdir.check_out_file``, before this; a caller such as the demo
    writes into its own output directory.)"""
    if output_path.resolve() == input_path.resolve():
        raise UserError(f"--out {output_path}: is the input file; write the augmented data elsewhere")
    if output_path.is_dir():
        raise UserError(f"--out {output_path}: is a directory; expected a file name")
    if output_path.exists() and not overwrite:
        raise UserError(f"--out {output_path}: exists; pass --overwrite to replace it")


@dataclass
class AugmentSummary:
    examples: int
    variants: int
    output: Path


def augment_file(input_path: str | Path, output_path: str | Path, augmenter: Augmenter,
                 text_columns: Sequence[str | int], fmt: str, header: bool = True, overwrite: bool = False,
                 chunk_size: int = 256, progress: bool | None = None, total: int | None = None) -> AugmentSummary:
    """Augment every row of ``input_path`` into ``output_path`` (same format): each original row, then its
    variants with the text columns replaced and every other column copied. Written atomically; examples are
    processed ``chunk_size`` at a time (memory stays flat, the MLM sees full batches). ``total``: the expected
    number of examples, for the progress bar's ETA."""
    from tqdm import tqdm

    input_path, output_path = Path(input_path), Path(output_path)
    check_paths(input_path, output_path, overwrite)
    names, rows = read_records(input_path, fmt, header)
    keys = text_keys(input_path, fmt, names, text_columns)
    examples = variants = 0
    disable = None if progress is None else not progress  # None: a bar only on a terminal
    with RecordWriter(output_path, fmt) as writer, tqdm(desc="augment", unit="ex", total=total,
                                                               disable=disable) as bar:
        if names is not None:
            writer.write(names)

        def flush(chunk: list[tuple[int, object]]) -> None:
            nonlocal examples, variants
            texts = [record_texts(input_path, line, record, keys) for line, record in chunk]
            for (_, record), found in zip(chunk, augmenter.augment_batch(texts, examples)):
                writer.write(record)
                for variant in found:
                    writer.write(with_texts(record, keys, variant))
                variants += len(found)
            examples += len(chunk)
            bar.update(len(chunk))

        chunk: list[tuple[int, object]] = []
        for row in rows:
            chunk.append(row)
            if len(chunk) == chunk_size:
                flush(chunk)
                chunk = []
        if chunk:
            flush(chunk)
        if examples == 0:
            raise UserError(f"{input_path}: no examples (only a header or blank lines)")
        writer.commit()
    return AugmentSummary(examples, variants, output_path)
