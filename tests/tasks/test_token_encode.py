"""Word -> sub-word label alignment: by hand, and against the fast tokenizer's own pre-split encoding."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tokenizers import Tokenizer

from leanbert.batch import IGNORE_INDEX as X
from leanbert.tasks.word_align import (
    WordCollator,
    WordEncoder,
    align,
    continuation_labels,
    word_predictions,
)
from tagging_helpers import make_tokenizer_dir

LABELS = ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]


@pytest.fixture(scope="module")
def tok_dir(tmp_path_factory):
    return make_tokenizer_dir(tmp_path_factory.mktemp("tok"))


def test_first_piece_carries_the_label_by_hand():
    # words: [7 8] [9] [10 11 12], labels B-PER O B-LOC; CLS=1, SEP=2
    f = align([[7, 8], [9], [10, 11, 12]], [3, 0, 1], 1, 2, max_len=16)
    assert f.input_ids.tolist() == [1, 7, 8, 9, 10, 11, 12, 2]
    assert f.labels.tolist() == [X, 3, X, 0, 1, X, X, X]
    assert f.first_pieces.tolist() == [1, 3, 4]


def test_label_all_subwords_turns_b_into_i_for_later_pieces():
    cont = continuation_labels(LABELS)
    assert cont == {1: 2, 3: 4}
    f = align([[7, 8], [9], [10, 11, 12]], [3, 0, 2], 1, 2, max_len=16, label_all=True, continuation=cont)
    assert f.labels.tolist() == [X, 3, 4, 0, 2, 2, 2, X]
    # a B- type whose I- is not in the label set keeps its B-
    assert continuation_labels(["O", "B-X"]) == {1: 1}


def test_truncation_cuts_words_and_leaves_them_without_a_piece():
    f = align([[7, 8], [9], [10, 11, 12], [13]], [3, 0, 1, 0], 1, 2, max_len=6)  # room for 4 pieces
    assert f.input_ids.tolist() == [1, 7, 8, 9, 10, 2]
    assert f.labels.tolist() == [X, 3, X, 0, 1, X]
    assert f.first_pieces.tolist() == [1, 3, 4, -1]


def test_a_word_without_pieces_is_skipped():
    f = align([[7], [], [9]], [0, 1, 0], 1, 2, max_len=10)
    assert f.input_ids.tolist() == [1, 7, 9, 2] and f.first_pieces.tolist() == [1, -1, 2]


def test_encoder_matches_the_fast_tokenizer_on_pre_split_words(tok_dir):
    words = [["Empire", "State", "Building", "is", "in", "New", "York"], ["@paulwalk", "it's", "Berlin", "!"]]
    labels = [[1, 2, 2, 0, 0, 1, 2], [3, 0, 1, 0]]
    encoder = WordEncoder.from_dir(tok_dir, max_seq_len=64)
    features = encoder.encode_words(words, labels)
    reference = Tokenizer.from_file(str(tok_dir / "tokenizer.json"))
    for sentence, sentence_labels, f in zip(words, labels, features):
        enc = reference.encode(sentence, is_pretokenized=True)
        assert f.input_ids.tolist() == enc.ids
        firsts = [enc.word_ids.index(w) for w in range(len(sentence))]
        assert f.first_pieces.tolist() == firsts
        expected = [X] * len(enc.ids)
        for w, position in enumerate(firsts):
            expected[position] = sentence_labels[w]
        assert f.labels.tolist() == expected


def test_collator_pads_labels_with_ignore_index():
    a = align([[7, 8]], [1], 1, 2, 8)
    b = align([[7], [9], [10]], [0, 3, 4], 1, 2, 8)
    batch = WordCollator(pad_id=0)([a, b])
    assert batch.input_ids.tolist() == [[1, 7, 8, 2, 0], [1, 7, 9, 10, 2]]
    assert batch.attention_mask.tolist() == [[1, 1, 1, 1, 0], [1, 1, 1, 1, 1]]
    assert batch.targets["token_labels"].tolist() == [[X, 1, X, X, X], [X, 0, 3, 4, X]]
    assert torch.equal(batch.token_type_ids, torch.zeros_like(batch.input_ids))


def test_word_predictions_read_first_pieces():
    logits = np.log(np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.7, 0.3]]))
    labels, scores = word_predictions(logits, np.array([1, 2, -1]), outside=0)
    assert labels.tolist() == [1, 0, 0]
    assert scores[:2] == pytest.approx([0.8, 0.6]) and np.isnan(scores[2])
