"""The fused vocabulary pass: loss, gradient and argmax equal PyTorch's, samples follow the tempered softmax."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import leanbert.objectives.vocab_softmax as vocab_module
from leanbert.objectives.vocab_softmax import vocab_softmax


@pytest.fixture(params=[1 << 20, 3 * 8 * 50], ids=["one-block", "blocks-of-3-rows"])
def block_bytes(request, monkeypatch):
    monkeypatch.setattr(vocab_module, "_CPU_BLOCK_BYTES", request.param)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16])
def test_loss_gradient_and_argmax_equal_cross_entropy(block_bytes, dtype):
    torch.manual_seed(0)
    logits = (3 * torch.randn(11, 50, dtype=torch.float64)).to(dtype).requires_grad_()
    targets = torch.randint(0, 50, (11,))
    loss, predicted, sampled = vocab_softmax(logits, targets)
    (2.5 * loss).backward()

    reference = logits.detach().double().requires_grad_()
    expected = F.cross_entropy(reference, targets)
    (2.5 * expected).backward()
    tol = {torch.float64: 1e-12, torch.float32: 1e-5, torch.bfloat16: 1e-5}[dtype]  # bf16 logits, float32 math
    assert sampled is None and loss.dtype == (torch.float64 if dtype == torch.float64 else torch.float32)
    assert abs(loss.item() - expected.item()) < tol
    assert logits.grad.dtype == dtype
    assert torch.allclose(logits.grad.double(), reference.grad, atol=max(tol, 1e-2 if dtype == torch.bfloat16 else 0))
    assert torch.equal(predicted, reference.detach().argmax(dim=1))


def test_no_grad_gives_the_same_loss_and_empty_rows_give_zero():
    torch.manual_seed(1)
    logits, targets = torch.randn(6, 20), torch.randint(0, 20, (6,))
    with torch.no_grad():
        loss, _, _ = vocab_softmax(logits, targets)
    assert loss.item() == pytest.approx(F.cross_entropy(logits, targets).item(), abs=1e-6)
    empty = torch.zeros(0, 20, requires_grad=True)
    loss, _, _ = vocab_softmax(empty, torch.zeros(0, dtype=torch.long))
    loss.backward()
    assert loss.item() == 0.0 and empty.grad.shape == (0, 20)


def test_a_second_backward_is_refused():
    logits = torch.randn(3, 7, requires_grad=True)
    loss, _, _ = vocab_softmax(logits, torch.tensor([0, 1, 2]))
    loss.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="inplace"):
        loss.backward()


@pytest.mark.parametrize("temperature", [1.0, 2.0, 0.5])
def test_samples_follow_the_tempered_softmax(block_bytes, temperature):
    torch.manual_seed(0)
    row = torch.tensor([2.0, 1.0, 0.0, -1.0, 0.5, -1e4])  # the last token has probability ~0: never drawn
    n = 40000
    logits = row.expand(n, -1).contiguous()
    _, _, samples = vocab_softmax(logits, torch.zeros(n, dtype=torch.long), torch.rand(n), temperature)
    freq = torch.bincount(samples, minlength=6).double() / n
    expected = torch.softmax(row.double() / temperature, dim=0)
    assert freq[5] == 0
    assert (freq - expected).abs().max() < 0.012  # > 4 standard errors at n = 40000


def test_inverse_cdf_picks_the_token_whose_interval_holds_u():
    """softmax([0, 0, log 2]) = [1/4, 1/4, 1/2]: u in [0, .25) -> 0, [.25, .5) -> 1, [.5, 1) -> 2."""
    logits = torch.tensor([0.0, 0.0, float(torch.log(torch.tensor(2.0)))]).expand(6, -1).contiguous()
    uniforms = torch.tensor([0.0, 0.2499, 0.2501, 0.4999, 0.5001, 0.9999])
    _, _, samples = vocab_softmax(logits, torch.zeros(6, dtype=torch.long), uniforms)
    assert samples.tolist() == [0, 0, 1, 1, 2, 2]


@pytest.mark.parametrize("name", ["mlm", "mlm+sop", "electra"])
def test_objectives_train_under_cpu_bf16_autocast(name, make_batch):
    """bf16 logits reach the fused pass (train.precision=bf16): finite loss and gradients, close to fp32."""
    from helpers import tiny_config
    from leanbert.objectives import build_objective, objective_config

    family = {"mlm": "bert", "mlm+sop": "albert", "electra": "electra"}[name]
    torch.manual_seed(0)
    objective = build_objective(objective_config(name), tiny_config(family=family)).eval()
    batch = make_batch(batch=4, length=24)
    reference = objective(batch).metrics["mlm_loss"]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = objective(batch)
    assert out.loss.dtype == torch.float32 and abs(out.metrics["mlm_loss"] - reference) < 0.05
    out.loss.backward()
    grads = [p.grad for p in objective.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
