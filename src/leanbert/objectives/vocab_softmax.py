"""Cross-entropy, argmax and sampling over the vocabulary in one pass over the (N, V) MLM logits.

The MLM head's logits are the largest tensor of a step (N masked positions x V ~ 30k words). The unfused path
(``F.cross_entropy`` + ``argmax`` + Gumbel noise for ELECTRA) walks it about ten times and allocates several
(N, V) temporaries: log-softmax, the zero-filled NLL gradient, the log-softmax gradient, the noise. Here one
loop over blocks of rows, each small enough to stay in cache, computes per row:

* the loss, log(sum exp(x - max)) - (x[target] - max), and the prediction (argmax, for the accuracy metric);
* the gradient of the mean loss, (softmax - onehot) / N, written straight into the one (N, V) tensor the
  backward hands to the head's matmul (autograd keeps nothing else);
* optionally one sample from softmax(x / temperature) by inverse CDF: the first token whose cumulative
  probability exceeds u * total, u ~ Uniform[0, 1). That is the same distribution as ELECTRA's Gumbel-max
  (argmax(x / t + Gumbel noise)) but draws one random number per row instead of V.
"""

from __future__ import annotations

import torch

from leanbert.train.precision import full_precision

_CPU_BLOCK_BYTES = 1 << 20  # CPU blocks hold ~1 MiB of float32 logits (they stay in cache); 1 MiB-4 MiB measured alike



def _vocab_pass(logits, targets, uniforms, temperature, need_grad):
    """The blocked loop; returns (loss, predicted, sampled or None, gradient of the mean loss or None)."""
    n, v = logits.shape
    work = torch.float64 if logits.dtype == torch.float64 else torch.float32
    grad = torch.empty(n, v, dtype=work, device=logits.device) if need_grad else None
    losses = torch.empty(n, dtype=work, device=logits.device)
    predicted = torch.empty(n, dtype=torch.long, device=logits.device)
    sampled = None if uniforms is None else torch.empty(uniforms.shape, dtype=torch.long, device=logits.device)
    rows = n if logits.device.type != "cpu" else max(1, _CPU_BLOCK_BYTES // (4 * v))
    for s in range(0, n, rows):
        e = min(n, s + rows)
        x = full_precision(logits[s:e])  # (r, V), a view for float32 input
        t = targets[s:e, None]  # (r, 1)
        top, predicted[s:e] = x.max(dim=1)  # (r,)
        shifted = torch.sub(x, top[:, None], out=grad[s:e]) if need_grad else x - top[:, None]  # (r, V)
        target_shifted = shifted.gather(1, t).squeeze(1)  # (r,)
        if sampled is not None and temperature != 1.0:
            cdf = (shifted / temperature).exp_().cumsum(1, dtype=torch.float64)  # (r, V) unnormalised
        probs = shifted.exp_()  # (r, V) unnormalised, in place
        total = probs.sum(dim=1)  # (r,)
        losses[s:e] = total.log() - target_shifted
        if sampled is not None:
            if temperature == 1.0:  # float64 sums: each token's interval is exact to ~1e-16
                cdf = probs.cumsum(dim=1, dtype=torch.float64)
            point = uniforms[s:e].double().reshape(e - s, -1) * cdf[:, -1:]  # (r, K) draws; ELECTRA: K = 1
            sampled[s:e] = torch.searchsorted(cdf, point, right=True).clamp_(max=v - 1).view_as(sampled[s:e])
        if need_grad:  # d(mean loss)/dx = (softmax - onehot) / N
            probs.mul_((1.0 / (n * total))[:, None])
            probs.scatter_add_(1, t, probs.new_full(t.shape, -1.0 / n))
    return losses.sum() / max(n, 1), predicted, sampled, grad


class _VocabSoftmax(torch.autograd.Function):
    @staticmethod
    def forward(ctx, logits, targets, uniforms, temperature):
        loss, predicted, sampled, grad = _vocab_pass(logits, targets, uniforms, temperature, need_grad=True)
        ctx.mark_non_differentiable(predicted, *([sampled] if sampled is not None else []))
        ctx.save_for_backward(grad)
        ctx.input_dtype = logits.dtype
        return loss, predicted, sampled

    @staticmethod
    def backward(ctx, grad_loss, _predicted, _sampled):
        (grad,) = ctx.saved_tensors  # scaled in place: autograd's version check refuses a second backward
        return grad.mul_(grad_loss).to(ctx.input_dtype), None, None, None


def vocab_softmax(logits: torch.Tensor, targets: torch.Tensor, uniforms: torch.Tensor | None = None,
                  temperature: float = 1.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """(N, V) ``logits``, (N,) ``targets`` -> (mean cross-entropy, (N,) argmax, samples or None).

    ``uniforms`` (N,) in [0, 1) asks for one sample per row from softmax(logits / temperature), (N, K) for K
    independent samples per row (MC-BERT's candidates); the samples have the uniforms' shape and carry no
    gradient. The loss is computed in float32 (float64 for float64 logits) and differentiable with
    respect to ``logits``; N = 0 gives a zero loss.
    """
    if logits.dim() != 2 or targets.shape != logits.shape[:1]:
        raise ValueError(f"expected (N, V) logits and (N,) targets, got {tuple(logits.shape)} and "
                         f"{tuple(targets.shape)}")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if torch.is_grad_enabled() and logits.requires_grad:
        return _VocabSoftmax.apply(logits, targets, uniforms, float(temperature))
    loss, predicted, sampled, _ = _vocab_pass(logits.detach(), targets, uniforms, float(temperature), need_grad=False)
    return loss, predicted, sampled
