"""The QA loss against its formula in float64: the mean of the start and end cross-entropies over each window's
real tokens (padding masked), gold positions outside the window ignored; and the same loss and gradients whether
the encoder unpads or not (unpadding leaves padded hidden states at zero, which must not reach the softmax)."""

from __future__ import annotations

import math

import torch

from helpers import random_inputs, tiny_config
from leanbert.batch import Batch
from leanbert.model.model import LeanBertModel
from leanbert.model.padding import set_unpadding
from leanbert.tasks.qa import loss as qa_loss


class _Out:
    def __init__(self, span_logits: torch.Tensor):
        self.span_logits = span_logits


def _batch(mask: torch.Tensor, starts: list[int], ends: list[int]) -> Batch:
    ids = torch.ones_like(mask)
    targets = {"start_positions": torch.tensor(starts), "end_positions": torch.tensor(ends)}
    return Batch(input_ids=ids, attention_mask=mask, token_type_ids=torch.zeros_like(mask), targets=targets)


def _reference(logits: torch.Tensor, mask: torch.Tensor, gold: list[int]) -> float:
    """-log softmax over the real tokens at the gold position, averaged over the rows whose gold is inside."""
    terms = []
    for row, g in enumerate(gold):
        if g >= logits.shape[1]:
            continue  # transformers clamps it to T and ignores it
        real = [float(x) for x, m in zip(logits[row], mask[row]) if m]
        log_z = math.log(sum(math.exp(x) for x in real))
        terms.append(log_z - float(logits[row, g]))
    return sum(terms) / len(terms)


def test_loss_is_the_cross_entropy_over_real_tokens_in_float64():
    g = torch.Generator().manual_seed(0)
    mask = torch.tensor([[1] * 7, [1] * 4 + [0] * 3, [1] * 5 + [0] * 2])
    logits = torch.randn(3, 7, 2, generator=g, dtype=torch.float64) * 3
    logits[1, 4:] = 9.0  # large logits at padded positions must not count
    starts, ends = [2, 0, 99], [5, 3, 4]  # row 2's start lies outside the window: ignored
    value = qa_loss(_Out(logits), _batch(mask, starts, ends)).loss
    expected = (_reference(logits[..., 0], mask, starts) + _reference(logits[..., 1], mask, ends)) / 2
    assert math.isclose(float(value), expected, rel_tol=1e-9)


def test_unpadding_does_not_change_the_loss_or_its_gradients():
    torch.manual_seed(0)
    model = LeanBertModel(tiny_config(heads=["span"])).train()  # dropout 0: deterministic
    ids, mask, types = random_inputs(batch=3, length=17)  # row 1 half padding: 82% real, so the encoder unpads
    batch = Batch(input_ids=ids, attention_mask=mask, token_type_ids=types,
                  targets={"start_positions": torch.tensor([1, 2, 30]), "end_positions": torch.tensor([4, 5, 6])})
    results = []
    for unpad in (True, False):
        model.zero_grad()
        set_unpadding(model, unpad)
        value = qa_loss(model(ids, mask, types), batch).loss
        value.backward()
        results.append((value.detach(), [p.grad.clone() for p in model.parameters() if p.grad is not None]))
    (loss_a, grads_a), (loss_b, grads_b) = results
    assert len(grads_a) == len(grads_b) > 10
    torch.testing.assert_close(loss_a, loss_b, rtol=1e-5, atol=1e-6)
    for a, b in zip(grads_a, grads_b):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
