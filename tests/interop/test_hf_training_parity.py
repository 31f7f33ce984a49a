"""Training, not just inference, matches transformers: on the same batch our MLM objective gives the loss and
every gradient of transformers' *ForMaskedLM, and a few optimizer steps keep the two models' weights together
(float64). Forward parity (test_hf_parity.py) cannot see the fused MLM loss/gradient of
objectives/vocab_softmax.py, the tied input/output embeddings, or ALBERT's shared layers collecting gradients."""

import copy

import pytest
import torch

from helpers import random_inputs, randomize_, tiny_config
from leanbert.batch import IGNORE_INDEX, Batch
from leanbert.interop.hf import build_hf_model, to_hf_state
from leanbert.objectives.mlm import MaskedLM

CASES = {
    "bert": dict(family="bert"),
    "albert-shared-factorized": dict(family="albert", embedding_size=16, sharing="all", hidden_act="gelu_new"),
    "electra-generator": dict(family="electra", embedding_size=16),
}


def _masked_batch() -> Batch:
    ids, mask, types = random_inputs()
    g = torch.Generator().manual_seed(1)
    chosen = (torch.rand(ids.shape, generator=g) < 0.3) & mask.bool()
    labels = torch.where(chosen, ids, torch.full_like(ids, IGNORE_INDEX))
    return Batch(input_ids=torch.where(chosen, torch.full_like(ids, 4), ids), attention_mask=mask,
                 token_type_ids=types, labels=labels)


def _as_hf_names(model, tensors) -> dict[str, torch.Tensor]:
    """``tensors`` (one per parameter of ``model``, e.g. its gradients) under transformers' names."""
    ghost = copy.deepcopy(model)
    for p, t in zip(ghost.parameters(), tensors):
        p.data = t
    return to_hf_state(ghost)


def _key_bias(name: str) -> bool:
    """The key projection's bias adds the same score to every key of a query, which softmax cancels: its
    gradient is zero up to rounding in both libraries."""
    return name.endswith("key.bias")


@pytest.mark.parametrize("case", list(CASES))
def test_mlm_loss_gradients_and_steps_match_transformers(case):
    objective = MaskedLM(tiny_config(heads=["mlm"], **CASES[case]))
    randomize_(objective.model, std=0.1)
    objective.double().train()
    hf = build_hf_model(objective.model).double().train()  # dropout is 0 in tiny_config
    batch = _masked_batch()
    start = {k: v.clone() for k, v in hf.state_dict().items()}
    ours_sgd = torch.optim.SGD(objective.parameters(), lr=0.5, momentum=0.9)
    hf_sgd = torch.optim.SGD(hf.parameters(), lr=0.5, momentum=0.9)
    for step in range(3):
        loss = objective(batch).loss
        hf_loss = hf(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                     token_type_ids=batch.token_type_ids, labels=batch.labels).loss
        torch.testing.assert_close(loss, hf_loss, rtol=1e-10, atol=0)
        loss.backward()
        hf_loss.backward()
        if step == 0:
            grads = _as_hf_names(objective.model, [torch.zeros_like(p) if p.grad is None else p.grad
                                                   for p in objective.model.parameters()])  # the pooler: none
            hf_grads = {name: p.grad for name, p in hf.named_parameters()}
            assert set(hf_grads) <= set(grads)
            for name, grad in hf_grads.items():
                assert _key_bias(name) or grad.abs().max() > 1e-8, name  # every other weight takes part
                torch.testing.assert_close(grads[name], grad, rtol=1e-9, atol=1e-12, msg=name)
        ours_sgd.step()
        hf_sgd.step()
        ours_sgd.zero_grad()
        hf_sgd.zero_grad()
    hf_state = hf.state_dict()
    for name, value in to_hf_state(objective.model).items():
        if name in hf_state:  # all but the pooler, which *ForMaskedLM lacks
            assert _key_bias(name) or not torch.equal(value, start[name]), name  # the steps changed it
            torch.testing.assert_close(value, hf_state[name], rtol=1e-9, atol=1e-12, msg=name)
