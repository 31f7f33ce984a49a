"""Optimisers: torch's AdamW and LAMB (You et al., ICLR 2020, "Large Batch Optimization for Deep Learning:
Training BERT in 76 minutes", Algorithm 2), plus the parameter grouping both use.

Weight decay is not applied to biases and LayerNorm weights (every tensor with fewer than 2 dimensions), as in
BERT, ALBERT and ELECTRA's reference optimisers. LAMB's reference code (google-research/albert
``lamb_optimizer.py``) also leaves those tensors out of the layer-wise adaptation; we follow it, so their
trust ratio is 1 (``layer_adaptation=False`` in their group).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from leanbert.train.config import TrainConfig
from leanbert.train.frozen import frozen_parameter_ids


def parameter_groups(module: nn.Module, weight_decay: float, lr_scales: dict[str, float] | None = None,
                     ) -> list[dict[str, Any]]:
    """Split trainable parameters into decayed (matrices, embeddings) and undecayed (biases, norms) groups.

    ``lr_scales`` (parameter name -> factor, e.g. layer-wise LR decay for fine-tuning) splits groups further;
    each group carries ``lr_scale`` which the scheduler multiplies into the learning rate.
    Shared parameters (ELECTRA's tied embeddings) appear once. Parameters of the module's declared frozen
    sub-modules (``frozen_modules()``, e.g. a distillation teacher) never enter a group, whatever their
    ``requires_grad``: they must never get an optimizer state.
    """
    frozen = frozen_parameter_ids(module)
    groups: dict[tuple[bool, float], list[nn.Parameter]] = {}
    for name, param in module.named_parameters():  # remove_duplicate=True: tied weights once
        if not param.requires_grad or id(param) in frozen:
            continue
        decay = param.ndim >= 2
        scale = 1.0 if lr_scales is None else float(lr_scales.get(name, 1.0))
        groups.setdefault((decay, scale), []).append(param)
    return [{"params": params, "weight_decay": weight_decay if decay else 0.0, "layer_adaptation": decay,
             "lr_scale": scale} for (decay, scale), params in groups.items()]


class Lamb(torch.optim.Optimizer):
    """LAMB with Adam's bias-corrected moments (You et al. 2020, Algorithm 2), per parameter tensor:

        m = b1 m + (1 - b1) g          v = b2 v + (1 - b2) g^2
        m_hat = m / (1 - b1^t)         v_hat = v / (1 - b2^t)
        r = m_hat / (sqrt(v_hat) + eps) + wd * w
        ratio = ||w|| / ||r||   (1 when either norm is 0, or when the group has layer_adaptation=False)
        w = w - lr * ratio * r

    Runs with ``torch._foreach_*`` kernels and no host synchronisation.
    """

    def __init__(self, params: Iterable, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-6, weight_decay: float = 0.0):
        if lr <= 0 or eps <= 0 or weight_decay < 0 or not all(0 <= b < 1 for b in betas):
            raise ValueError(f"invalid LAMB settings lr={lr} betas={betas} eps={eps} weight_decay={weight_decay}")
        defaults = {"lr": lr, "betas": tuple(betas), "eps": eps, "weight_decay": weight_decay,
                    "layer_adaptation": True}
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            if any(p.grad.is_sparse for p in params):
                raise RuntimeError("LAMB does not support sparse gradients")
            beta1, beta2 = group["betas"]
            grads = [p.grad for p in params]
            states = [self.state[p] for p in params]
            for p, state in zip(params, states):
                if not state:
                    # the step count lives on the host, as in torch's Adam: bias corrections are CPU scalars
                    # that CUDA kernels read without a device round trip
                    state["step"] = torch.zeros((), dtype=torch.float32)
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            steps = [s["step"] for s in states]
            exp_avg = [s["exp_avg"] for s in states]
            exp_avg_sq = [s["exp_avg_sq"] for s in states]
            torch._foreach_add_(steps, 1.0)
            torch._foreach_lerp_(exp_avg, grads, 1.0 - beta1)  # m = b1 m + (1 - b1) g
            torch._foreach_mul_(exp_avg_sq, beta2)
            torch._foreach_addcmul_(exp_avg_sq, grads, grads, value=1.0 - beta2)  # v = b2 v + (1 - b2) g^2
            bc1 = [1.0 - torch.pow(beta1, s.double()) for s in steps]  # float64: exact for long runs
            bc2 = [1.0 - torch.pow(beta2, s.double()) for s in steps]
            m_hat = torch._foreach_div(exp_avg, bc1)
            denom = torch._foreach_div(exp_avg_sq, bc2)
            torch._foreach_sqrt_(denom)
            torch._foreach_add_(denom, group["eps"])
            update = torch._foreach_div(m_hat, denom)  # r = m_hat / (sqrt(v_hat) + eps)
            if group["weight_decay"]:
                torch._foreach_add_(update, params, alpha=group["weight_decay"])  # r += wd * w
            if group["layer_adaptation"]:
                w_norm = torch._foreach_norm(params)
                r_norm = torch._foreach_norm(update)
                ratios = [torch.where((w > 0) & (r > 0), w / r, torch.ones_like(w))
                          for w, r in zip(w_norm, r_norm)]
                torch._foreach_mul_(update, ratios)
            torch._foreach_add_(params, update, alpha=-group["lr"])
        return loss


def build_optimizer(groups: list[dict[str, Any]], config: TrainConfig, device: torch.device,
                    ) -> torch.optim.Optimizer:
    """The optimiser named by ``config.optimizer`` over ``groups`` (from ``parameter_groups``)."""
    betas = (config.adam_beta1, config.adam_beta2)
    if config.optimizer == "lamb":
        return Lamb(groups, lr=config.lr, betas=betas, eps=config.adam_eps, weight_decay=config.weight_decay)
    # AdamW does not know layer_adaptation; it keeps extra group keys untouched. The fused kernel exists for
    # CPU and CUDA; on CPU it is ~20x faster than the foreach path (benchmarks/train_speed.py).
    fused = device.type in ("cpu", "cuda")
    return torch.optim.AdamW(groups, lr=config.lr, betas=betas, eps=config.adam_eps,
                             weight_decay=config.weight_decay, fused=fused or None)
