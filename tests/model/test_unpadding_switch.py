"""``set_unpadding(model, False)``: the same outputs and gradients as unpadding, with no data-dependent control
flow and no host sync (the encoder runs on the meta device, where any read of the mask's values fails)."""

import warnings

import pytest
import torch

from helpers import random_inputs, randomize_, tiny_config
from leanbert.model.model import LeanBertModel
from leanbert.model.padding import Unpadding, set_unpadding


def forward_and_grads(model, ids, mask, types):
    model.zero_grad()
    out = model(ids, mask, types)
    (out.mlm_logits * mask[..., None]).square().mean().backward()
    grads = [p.grad.clone() for p in model.parameters() if p.grad is not None]  # the pooler gets none
    return out.last_hidden_state * mask[..., None], grads


@pytest.mark.parametrize("sharing, embedding_size", [("none", 32), ("all", 16)])
def test_same_outputs_and_gradients_with_and_without_unpadding(sharing, embedding_size):
    model = LeanBertModel(tiny_config(heads=["mlm"], sharing=sharing, embedding_size=embedding_size)).train()
    randomize_(model)
    ids, mask, types = random_inputs()  # fill 0.84: unpadded when enabled
    h_on, g_on = forward_and_grads(model, ids, mask, types)
    set_unpadding(model, False)
    h_off, g_off = forward_and_grads(model, ids, mask, types)
    assert torch.allclose(h_on, h_off, atol=1e-5) and len(g_on) == len(g_off) > 10
    for a, b in zip(g_on, g_off):
        assert torch.allclose(a, b, atol=1e-5)


def test_switched_off_encoder_reads_no_mask_values():
    with torch.device("meta"):
        model = LeanBertModel(tiny_config(heads=["mlm", "sop"], family="albert"))
    ids, mask, types = (t.to("meta") for t in random_inputs())
    with pytest.raises(RuntimeError, match="meta"):  # the check has teeth: unpadding reads the fill
        model(ids, mask, types)
    set_unpadding(model, False)
    out = model(ids, mask, types, output_attention_scores=True, output_hidden_states=True)
    assert out.last_hidden_state.shape == (3, 17, 32) and out.mlm_logits.shape == (3, 17, 101)


def test_set_unpadding_reaches_every_encoder_inside_a_module():
    pair = torch.nn.ModuleDict({"generator": LeanBertModel(tiny_config(hidden_size=16)),  # as ELECTRA holds
                                "discriminator": LeanBertModel(tiny_config())})
    switches = [m for m in pair.modules() if isinstance(m, Unpadding)]
    assert len(switches) == 2 and all(s.enabled for s in switches)
    set_unpadding(pair, False)
    assert not any(s.enabled for s in switches)
    set_unpadding(torch.nn.Linear(2, 2), False)  # nothing to switch: left as it is


@pytest.mark.gpu
def test_switched_off_forward_makes_no_cuda_sync():
    model = LeanBertModel(tiny_config(heads=["rtd"], family="electra")).cuda().eval()
    ids, mask, types = (t.cuda() for t in random_inputs())
    set_unpadding(model, False)
    model(ids, mask, types)  # warm-up: lazy initialisations may sync once
    torch.cuda.synchronize()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            model(ids, mask, types)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    assert not [w for w in caught if "called a synchronizing" in str(w.message)]
