"""TNF's rare-word table on a made-up corpus whose word counts are known by construction, and the loader's
rare-word occurrences (exact positions, found before masking, deterministic)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

import leanbert.addons.tnf.rare_words as rare_words
from leanbert.addons.tnf.rare_words import (
    RARE_WORDS_FILE,
    RareWordMatcher,
    RareWordSettings,
    RareWordTable,
    build_rare_word_table,
    load_rare_word_table,
    write_rare_word_table,
)
from leanbert.data.config import DataConfig
from leanbert.data.loader import build_loader
from leanbert.data.prepare import prepare_dataset
from leanbert.data.tokenizer import load_tokenizer, train_tokenizer
from leanbert.errors import UserError

COUNTS = {"apple": 12, "banana": 7, "cherry": 5, "kiwi": 3, "zephyrqux": 6, "mango": 9, "the": 40, "a": 30}


@pytest.fixture(scope="module")
def made_up(tmp_path_factory) -> tuple[Path, object]:
    """A corpus where each word appears exactly COUNTS[word] times, 6 words a line; all lines in train."""
    root = tmp_path_factory.mktemp("rare")
    words = [w for w, c in COUNTS.items() for _ in range(c)]
    random.Random(0).shuffle(words)
    lines = [" ".join(words[i:i + 6]) for i in range(0, len(words), 6)]
    (root / "corpus.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    train_tokenizer([str(root / "corpus.txt")], root / "tok", kind="wordpiece", vocab_size=40, lowercase=True)
    prepare_dataset([str(root / "corpus.txt")], root / "tok", root / "data", valid_fraction=0.0,
                    progress=False)
    return root / "data", load_tokenizer(root / "tok")


def expected_table(tokenizer, low: int, high: int, cap: int) -> list[tuple[tuple[int, ...], int]]:
    """From the construction: words counted in [low, high], most frequent first, ties by pieces."""
    rows = [(tuple(tokenizer.encode(w)), c) for w, c in COUNTS.items() if low <= c <= high]
    return sorted(rows, key=lambda r: (-r[1], r[0]))[:cap]


def test_the_made_up_words_are_several_pieces(made_up):
    _, tok = made_up
    assert all(len(tok.encode(w)) > 1 for w in COUNTS if w != "a")  # the table must join pieces into words
    assert tok.encode("apple")[0] == tok.encode("a")[0]  # "a" is a prefix of "apple": only whole runs count


@pytest.mark.parametrize("chunk_tokens", [1 << 22, 7])  # one chunk, or many chunks of whole lines
def test_table_has_the_known_counts(made_up, chunk_tokens):
    data, tok = made_up
    table = build_rare_word_table(data, tok, RareWordSettings(5, 12, 100), chunk_tokens=chunk_tokens)
    assert list(zip(table.words, table.counts)) == expected_table(tok, 5, 12, 100)
    assert table.collisions == 0


def test_no_word_in_range_gives_an_empty_table(made_up):
    data, tok = made_up
    table = build_rare_word_table(data, tok, RareWordSettings(13, 29, 10))  # counts jump from 12 to 30
    assert len(table) == 0 and table.settings.min_count == 13


def test_max_words_keeps_the_most_frequent(made_up):
    data, tok = made_up
    table = build_rare_word_table(data, tok, RareWordSettings(3, 9, 2))
    assert [c for c in table.counts] == [9, 7]  # mango, banana (kiwi 3, cherry 5, zephyrqux 6 left out)
    assert list(zip(table.words, table.counts)) == expected_table(tok, 3, 9, 2)


def test_a_hash_collision_is_detected_and_dropped(made_up, monkeypatch):
    """With the counting hash reduced to the word length, words of equal length collide: the second hash
    finds them and the entry is dropped rather than merged."""
    data, tok = made_up
    monkeypatch.setattr(rare_words, "MULTIPLIERS", (0, rare_words.MULTIPLIERS[1]))
    table = build_rare_word_table(data, tok, RareWordSettings(1, 1000, 100))
    assert table.collisions > 0
    truth = dict(expected_table(tok, 1, 1000, 100))
    for pieces, count in zip(table.words, table.counts):
        assert truth[pieces] == count  # whatever survives is exact


def test_written_table_round_trips_and_is_checked(made_up, tmp_path):
    data, tok = made_up
    table = build_rare_word_table(data, tok, RareWordSettings(5, 12, 100))
    path = write_rare_word_table(data, table)
    raw = json.loads(path.read_text())
    assert raw["min_count"] == 5 and raw["num_words"] == len(table)
    assert raw["words"][0] == {"id": 0, "pieces": list(table.words[0]), "count": table.counts[0]}
    assert load_rare_word_table(data, tok.fingerprint) == table
    with pytest.raises(UserError, match="another tokenizer"):
        load_rare_word_table(data, "0" * 64)
    with pytest.raises(UserError, match=r"missing; TNF needs .*leanbert rare-words"):
        load_rare_word_table(tmp_path, tok.fingerprint)
    bad_ids = {**raw, "words": [{"id": 3, "pieces": [5], "count": 5}]}
    (tmp_path / RARE_WORDS_FILE).write_text(json.dumps(bad_ids))
    with pytest.raises(UserError, match="word ids must be 0..n-1"):
        load_rare_word_table(tmp_path, tok.fingerprint)
    for piece in (-1, 2**70):  # an edited table: refused by name, not an OverflowError in the matcher
        (tmp_path / RARE_WORDS_FILE).write_text(json.dumps({**raw, "words": [{"id": 0, "pieces": [piece],
                                                                              "count": 5}]}))
        with pytest.raises(UserError, match=f"piece id {piece} is not a token id"):
            load_rare_word_table(tmp_path, tok.fingerprint)


def test_matcher_finds_whole_runs_only(made_up):
    _, tok = made_up
    apple, kiwi, a = tok.encode("apple"), tok.encode("kiwi"), tok.encode("a")
    table = RareWordTable(words=(tuple(kiwi), tuple(a)), counts=(3, 30), settings=RareWordSettings(1, 30, 5),
                          fingerprint=tok.fingerprint)
    matcher = RareWordMatcher(table, tok)
    cls, sep, pad = tok.tokenizer.token_to_id("[CLS]"), tok.tokenizer.token_to_id("[SEP]"), tok.pad_id
    row0 = [cls, *apple, *kiwi, sep] + [pad] * 3  # "a" is apple's first piece, but not a whole word there
    row1 = [*kiwi[1:], *a, sep, *kiwi, pad, pad][:len(row0)]  # a row starting with continuation pieces
    ids = np.array([row0, row1[:len(row0)] + [pad] * (len(row0) - len(row1))], dtype=np.int64)
    rows, starts, ends, word_ids = matcher(ids)
    # row 1 begins with kiwi's continuation pieces: a row start begins a word, and it is not kiwi
    k = len(kiwi)
    assert rows.tolist() == [0, 1, 1]
    assert starts.tolist() == [1 + len(apple), k - 1, k + 1]
    assert ends.tolist() == [1 + len(apple) + k, k, 2 * k + 1]
    assert word_ids.tolist() == [0, 1, 0]


def test_loader_carries_occurrences_before_masking_and_resumes_exactly(made_up):
    data, tok = made_up
    write_rare_word_table(data, build_rare_word_table(data, tok, RareWordSettings(5, 12, 100)))
    table = load_rare_word_table(data, tok.fingerprint)
    config = DataConfig(path=str(data), seq_len=24, valid_split="", features=["rare_words"],
                        mask_prob=0.5)
    loader = build_loader(config, tok, batch_size=4, prefetch=0)
    plain = build_loader(DataConfig(path=str(data), seq_len=24, valid_split="", masking="none"), tok,
                         batch_size=4, prefetch=0)
    batches = [b for _, b in zip(range(3), loader)]
    state = loader.state_dict()
    found = 0
    for batch, raw in zip(batches, plain):
        rare = batch.extras["rare_words"]
        assert rare.settings == (5, 12, 100)
        columns = (rare.rows, rare.starts, rare.ends, rare.word_ids)
        for r, s, e, w in zip(*(c.tolist() for c in columns)):
            assert tuple(raw.input_ids[r, s:e].tolist()) == table.words[w]  # the uncorrupted pieces
            found += 1
    assert found > 0
    assert batches[0].extras["rare_words"].rows.shape == batches[0].extras["rare_words"].word_ids.shape
    assert build_loader(DataConfig(path=str(data), seq_len=24, valid_split=""), tok, batch_size=4,
                        prefetch=0).make_batch(0, 0).extras == {}  # off unless asked for
    resumed = build_loader(config, tok, batch_size=4, prefetch=0)
    resumed.load_state_dict(state)
    again, reference = next(iter(resumed)), next(iter(loader))
    for name in ("rows", "starts", "ends", "word_ids"):
        assert getattr(again.extras["rare_words"], name).tolist() == \
            getattr(reference.extras["rare_words"], name).tolist()


def test_cli_verb_writes_the_table_with_the_tnf_settings(made_up, tmp_path):
    from leanbert.cli import main

    data, tok = made_up
    recipe = tmp_path / "run.yaml"
    recipe.write_text("tnf: {enabled: true, min_count: 5, max_count: 12}\n")
    assert main(["rare-words", str(data), "--config", str(recipe), "tnf.max_words=2"]) == 0
    table = load_rare_word_table(data, tok.fingerprint)
    assert table.settings == RareWordSettings(5, 12, 2)
    assert list(zip(table.words, table.counts)) == expected_table(tok, 5, 12, 2)
