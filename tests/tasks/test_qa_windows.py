"""Doc-stride windows: the same ids as transformers' fast tokenizer with overflow, answers mapped to tokens
and back to the original characters, [CLS] for windows without the answer."""

from __future__ import annotations

import numpy as np
import transformers

from leanbert.tasks.qa_data import read_squad
from leanbert.tasks.qa_features import NOT_CONTEXT, QACollator, WindowEncoder, answer_tokens
from qa_helpers import SQUAD_V1, SQUAD_V2, minilm_dir


def test_windows_match_transformers_overflow():
    tok_dir = minilm_dir()
    reference = transformers.AutoTokenizer.from_pretrained(tok_dir)
    examples = read_squad(SQUAD_V1)
    encoder = WindowEncoder(tok_dir, max_seq_len=64, doc_stride=16, max_query_length=64)
    features = encoder.encode(examples, labels=True)
    for index, example in enumerate(examples):
        ours = [f for f in features if f.example == index]
        theirs = reference(example.question, example.context, truncation="only_second", max_length=64,
                           stride=16, return_overflowing_tokens=True, return_offsets_mapping=True)
        assert [f.input_ids.tolist() for f in ours] == theirs["input_ids"]
        assert [f.token_type_ids.tolist() for f in ours] == theirs["token_type_ids"]
        for f, offsets, types in zip(ours, theirs["offset_mapping"], theirs["token_type_ids"]):
            context = [tuple(o) for o, t in zip(offsets, types) if t == 1][:-1]  # without the last [SEP]
            assert [tuple(o) for o in f.offsets.tolist() if o[0] != NOT_CONTEXT] == context
    assert max(sum(f.example == i for f in features) for i in range(len(examples))) > 2  # long ones split


def test_answer_positions_map_back_to_the_answer_text():
    examples = read_squad(SQUAD_V2)
    features = WindowEncoder(minilm_dir(), 48, 8, 64).encode(examples, labels=True)
    inside = outside = 0
    for f in features:
        example = examples[f.example]
        if example.impossible:
            assert (f.start, f.end) == (0, 0)
            continue
        text, start = example.answers[0]
        spans = f.offsets[f.offsets[:, 0] != NOT_CONTEXT]
        holds = spans[0, 0] <= start and spans[-1, 1] >= start + len(text)
        if holds:
            inside += 1
            got = example.context[f.offsets[f.start, 0]:f.offsets[f.end, 1]]
            assert got.lower() == text.lower(), (example.qid, got, text)
        else:
            outside += 1
            assert (f.start, f.end) == (0, 0)
    assert inside >= 10 and outside > 0


def test_answer_tokens_by_hand():
    starts, ends = np.array([0, 6, 10, 15]), np.array([5, 9, 14, 20])  # "Paris is the capital" style spans
    assert answer_tokens(starts, ends, 6, 14) == (1, 2)
    assert answer_tokens(starts, ends, 7, 9) == (1, 1)  # inside a token: that token
    assert answer_tokens(starts, ends, 15, 25) is None  # runs past the window
    assert answer_tokens(starts[1:], ends[1:], 0, 5) is None  # starts before it


def test_collator_pads_and_carries_positions():
    examples = read_squad(SQUAD_V1)[:3]
    encoder = WindowEncoder(minilm_dir(), 64, 16, 64)
    features = encoder.encode(examples, labels=True)
    batch = QACollator(encoder.pad_id)(features[:3])
    width = max(f.input_ids.shape[0] for f in features[:3])
    assert batch.input_ids.shape == (3, width) and batch.attention_mask.sum() == sum(
        f.input_ids.shape[0] for f in features[:3])
    assert batch.targets["start_positions"].tolist() == [f.start for f in features[:3]]
    assert batch.targets["end_positions"].tolist() == [f.end for f in features[:3]]
