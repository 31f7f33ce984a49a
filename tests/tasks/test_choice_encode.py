"""Multiple-choice encoding (context truncated first) and batches with varying option counts (masked)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from tokenizers import Tokenizer

from leanbert.batch import IGNORE_INDEX
from leanbert.tasks.choice_encode import ChoiceCollator, ChoiceEncoder, choice_lengths, masked_scores
from leanbert.tasks.choice_files import ChoiceExample
from tagging_helpers import make_tokenizer_dir


@pytest.fixture(scope="module")
def tok_dir(tmp_path_factory):
    return make_tokenizer_dir(tmp_path_factory.mktemp("tok"))


def test_choice_lengths_truncate_the_context_first():
    assert choice_lengths(10, 5, 20) == (10, 5)
    assert choice_lengths(10, 5, 12) == (7, 5)
    assert choice_lengths(10, 15, 12) == (0, 12)


def test_each_option_is_context_then_question_and_option(tok_dir):
    example = ChoiceExample("Tracy went home.", "What does Tracy need to do before this?",
                            ("make a new plan", "go home"), 1, 1)
    (features,) = ChoiceEncoder.from_dir(tok_dir, 64).encode_choices([example])
    reference = Tokenizer.from_file(str(tok_dir / "tokenizer.json"))
    for option, ids, types in zip(example.options, features.input_ids, features.token_type_ids):
        enc = reference.encode(example.context, f"{example.question} {option}")
        assert ids.tolist() == enc.ids and types.tolist() == enc.type_ids
    assert features.label == 1


def test_long_context_is_cut_and_the_answer_kept(tok_dir):
    context = "the man is sitting on a roof and he starts pulling up roofing " * 4
    example = ChoiceExample(context, "", ("make a new plan",), None, 1)
    encoder = ChoiceEncoder.from_dir(tok_dir, 16)
    (features,) = encoder.encode_choices([example])
    (ids,) = features.input_ids
    reference = Tokenizer.from_file(str(tok_dir / "tokenizer.json"))
    answer = reference.encode("make a new plan", add_special_tokens=False).ids
    context_ids = reference.encode(context, add_special_tokens=False).ids
    keep = 16 - 3 - len(answer)
    assert ids.tolist() == [encoder.cls_id, *context_ids[:keep], encoder.sep_id, *answer, encoder.sep_id]
    assert features.label == IGNORE_INDEX


def test_collator_masks_missing_options(tok_dir):
    encoder = ChoiceEncoder.from_dir(tok_dir, 32)
    two = ChoiceExample("Paris", "", ("big", "small"), 0, 1)
    three = ChoiceExample("Peter lives in Berlin", "who?", ("a man", "a city", "a dog"), 2, 2)
    features = encoder.encode_choices([two, three])
    batch = ChoiceCollator(encoder.pad_id, encoder.cls_id, encoder.sep_id)(features)
    assert batch.input_ids.shape[0] == 6
    assert batch.targets["choice_mask"].tolist() == [[True, True, False], [True, True, True]]
    assert batch.targets["choice_labels"].tolist() == [0, 2]
    pad_row = batch.input_ids[2]
    assert pad_row[:2].tolist() == [encoder.cls_id, encoder.sep_id] and batch.attention_mask[2].sum() == 2
    n = features[1].input_ids[1].shape[0]
    assert batch.input_ids[4, :n].tolist() == features[1].input_ids[1].tolist()


def test_masked_options_get_zero_probability_and_no_gradient():
    logits = torch.tensor([2.0, 1.0, 5.0, 0.5, 0.1, 0.3], requires_grad=True)
    mask = torch.tensor([[True, True, False], [True, True, True]])
    scores = masked_scores(logits, mask)
    probs = scores.softmax(-1)
    assert probs[0, 2] == 0 and probs[0, :2].sum().item() == pytest.approx(1.0)
    expected = torch.tensor([2.0, 1.0]).softmax(-1)
    assert torch.allclose(probs[0, :2], expected)
    loss = F.cross_entropy(scores, torch.tensor([0, 2]))
    loss.backward()
    assert torch.isfinite(loss) and logits.grad[2] == 0 and torch.all(torch.isfinite(logits.grad))
