"""LAMB against a float64 re-computation of You et al. (2020) Algorithm 2; parameter groups; schedules."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from torch import nn

from leanbert.train.config import TrainConfig
from leanbert.train.optim import Lamb, build_optimizer, parameter_groups
from leanbert.train.schedule import Schedule, lr_factor


def _lamb_reference(w, grads, lr, b1, b2, eps, wd, adapt):
    """The paper's update rule in float64 numpy, one tensor, over a sequence of gradients."""
    w = w.astype(np.float64).copy()
    m = np.zeros_like(w)
    v = np.zeros_like(w)
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat = m / (1 - b1 ** t)
        v_hat = v / (1 - b2 ** t)
        r = m_hat / (np.sqrt(v_hat) + eps) + wd * w
        w_norm, r_norm = np.linalg.norm(w), np.linalg.norm(r)
        ratio = w_norm / r_norm if adapt and w_norm > 0 and r_norm > 0 else 1.0
        w = w - lr * ratio * r
    return w


def test_lamb_matches_the_paper_update_in_float64():
    rng = np.random.default_rng(0)
    shapes = {"matrix": (5, 7), "bias": (7,), "zeros": (3, 4)}
    init = {k: rng.normal(size=s) for k, s in shapes.items()}
    init["zeros"][:] = 0.0  # ||w|| = 0: trust ratio 1
    grads = {k: [rng.normal(size=s) * (0.1 + i) for i in range(6)] for k, s in shapes.items()}
    params = {k: nn.Parameter(torch.tensor(v, dtype=torch.float64)) for k, v in init.items()}
    lr, b1, b2, eps, wd = 0.01, 0.9, 0.999, 1e-6, 0.05
    opt = Lamb([{"params": [params["matrix"], params["zeros"]], "weight_decay": wd},
                {"params": [params["bias"]], "weight_decay": 0.0, "layer_adaptation": False}],
               lr=lr, betas=(b1, b2), eps=eps)
    for i in range(6):
        for k, p in params.items():
            p.grad = torch.tensor(grads[k][i], dtype=torch.float64)
        opt.step()
    expected = {
        "matrix": _lamb_reference(init["matrix"], grads["matrix"], lr, b1, b2, eps, wd, True),
        "zeros": _lamb_reference(init["zeros"], grads["zeros"], lr, b1, b2, eps, wd, True),
        "bias": _lamb_reference(init["bias"], grads["bias"], lr, b1, b2, eps, 0.0, False),
    }
    for k, p in params.items():
        np.testing.assert_allclose(p.detach().numpy(), expected[k], rtol=1e-12, atol=1e-14, err_msg=k)
    # and the trust ratio really acted: a plain Adam step would move the matrix differently
    adam_like = _lamb_reference(init["matrix"], grads["matrix"], lr, b1, b2, eps, wd, False)
    assert not np.allclose(adam_like, expected["matrix"])


def test_lamb_state_round_trips_and_continues_identically():
    torch.manual_seed(0)
    a = nn.Linear(4, 3)
    b = nn.Linear(4, 3)
    b.load_state_dict(a.state_dict())
    opt_a = Lamb(a.parameters(), lr=0.1, weight_decay=0.01)
    x = torch.randn(8, 4)
    for _ in range(2):
        a(x).pow(2).sum().backward()
        opt_a.step()
        opt_a.zero_grad()
    b.load_state_dict(a.state_dict())
    opt_b = Lamb(b.parameters(), lr=0.1, weight_decay=0.01)
    opt_b.load_state_dict(copy.deepcopy(opt_a.state_dict()))  # torch would share the moment tensors
    for model, opt in ((a, opt_a), (b, opt_b)):
        model(x).pow(2).sum().backward()
        opt.step()
    assert torch.equal(a.weight, b.weight) and torch.equal(a.bias, b.bias)


def test_parameter_groups_exclude_biases_and_norms_and_dedupe_tied():
    model = nn.Sequential(nn.Embedding(10, 4), nn.LayerNorm(4), nn.Linear(4, 10))
    model[2].weight = model[0].weight  # tied (10, 4)
    groups = parameter_groups(model, weight_decay=0.1)
    decayed = [g for g in groups if g["weight_decay"] > 0]
    plain = [g for g in groups if g["weight_decay"] == 0]
    assert sum(len(g["params"]) for g in decayed) == 1  # the tied table once
    assert {id(p) for g in plain for p in g["params"]} == {id(model[1].weight), id(model[1].bias),
                                                           id(model[2].bias)}
    assert all(not g["layer_adaptation"] for g in plain)


def test_build_optimizer_and_lr_scales():
    model = nn.Linear(3, 3)
    groups = parameter_groups(model, 0.01, lr_scales={"weight": 0.5})
    opt = build_optimizer(groups, TrainConfig(optimizer="adamw", lr=1e-3, warmup_steps=0, schedule="constant"),
                          torch.device("cpu"))
    assert isinstance(opt, torch.optim.AdamW)
    Schedule(opt, 1e-3, "constant", 0, 10)
    assert sorted(g["lr"] for g in opt.param_groups) == [5e-4, 1e-3]
    lamb = build_optimizer(groups, TrainConfig(optimizer="lamb"), torch.device("cpu"))
    assert isinstance(lamb, Lamb)


@pytest.mark.parametrize("kind", ["linear", "cosine", "constant"])
def test_schedule_shapes(kind):
    warm, total = 4, 14
    factors = [lr_factor(s, kind, warm, total) for s in range(total)]
    assert factors[:4] == [0.25, 0.5, 0.75, 1.0]  # warm-up: step s uses (s + 1) / warmup
    assert factors[4] == 1.0
    if kind == "linear":
        assert factors[9] == pytest.approx(0.5)
        assert factors[-1] == pytest.approx(0.1)
    elif kind == "cosine":
        assert factors[9] == pytest.approx(0.5)
        assert factors[6] == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.2)))
    else:
        assert set(factors[4:]) == {1.0}
    assert all(a >= b for a, b in zip(factors[4:], factors[5:]))


def test_schedule_state_dict_restores_position():
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    s = Schedule(opt, 0.1, "linear", 2, 10)
    for _ in range(5):
        s.step()
    fresh = Schedule(opt, 0.1, "linear", 2, 10)
    fresh.load_state_dict(s.state_dict())
    assert fresh.step_count == 5 and opt.param_groups[0]["lr"] == pytest.approx(0.1 * (1 - 3 / 8))
