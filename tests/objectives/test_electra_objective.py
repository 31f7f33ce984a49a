"""ELECTRA: shared embeddings, sampling, labels, the loss formula in float64, any encoder switch, state dicts."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from helpers import tiny_config
from leanbert.batch import IGNORE_INDEX
from leanbert.objectives import Electra, build_objective, objective_config
from leanbert.objectives.electra import SHARED_EMBEDDINGS

ENCODERS = {
    "electra-factorized": dict(family="electra", embedding_size=16),
    "electra-unfactorized": dict(family="electra"),
    "albert-shared-factorized": dict(family="albert", embedding_size=16, sharing="all", hidden_act="gelu_new"),
    "electra-shared-groups-factorized": dict(family="electra", embedding_size=16, sharing="all", num_groups=2,
                                             num_layers=4),
    "shared-attention": dict(family="electra", sharing="attention"),
    "bert-family": dict(family="bert"),
}


def electra(objective_fields=None, **model_fields) -> Electra:
    cfg = objective_config("electra", **(objective_fields or {}))
    return build_objective(cfg, tiny_config(**{"family": "electra", "embedding_size": 16, **model_fields}))


@pytest.mark.parametrize("encoder", list(ENCODERS))
def test_forward_backward_on_any_encoder(encoder, make_batch):
    torch.manual_seed(0)
    objective = build_objective(objective_config("electra"), tiny_config(**ENCODERS[encoder]))
    out = objective(make_batch())
    assert out.loss.dim() == 0 and torch.isfinite(out.loss)
    out.loss.backward()
    assert set(objective.models()) == {"discriminator", "generator"}
    for net_name, net in objective.models().items():
        for name, p in net.named_parameters():
            if name.startswith("encoder.pooler"):  # a BERT/ALBERT pooler is not used by RTD
                continue
            assert p.grad is not None and p.grad.abs().sum() > 0, f"{net_name}.{name} got no gradient"
    for key, value in out.metrics.items():
        assert isinstance(value, torch.Tensor) and value.dim() == 0 and not value.requires_grad, key


def test_embeddings_are_shared_parameters_and_projections_are_not():
    objective = electra()
    disc, gen = objective.discriminator.encoder.embeddings, objective.generator.encoder.embeddings
    for name in SHARED_EMBEDDINGS:
        for p_disc, p_gen in zip(getattr(disc, name).parameters(), getattr(gen, name).parameters()):
            assert p_disc is p_gen
    assert disc.project.weight.shape == (32, 16) and gen.project.weight.shape == (8, 16)
    n_shared = sum(p.numel() for name in SHARED_EMBEDDINGS for p in getattr(disc, name).parameters())
    n_disc = sum(p.numel() for p in objective.discriminator.parameters())
    n_gen = sum(p.numel() for p in objective.generator.parameters())
    assert sum(p.numel() for p in objective.parameters()) == n_disc + n_gen - n_shared
    # the generator's tied MLM decoder is the shared table too
    assert objective.generator.word_embeddings is objective.discriminator.word_embeddings


def test_gradients_reach_shared_embeddings_from_both_networks(make_batch):
    batch = make_batch()
    shared = {n: getattr(electra().discriminator.encoder.embeddings, n).weight for n in SHARED_EMBEDDINGS}

    def grads(mlm_weight, rtd_weight):
        torch.manual_seed(0)  # same init and same samples in every call
        objective = electra(dict(mlm_weight=mlm_weight, rtd_weight=rtd_weight))
        objective(batch).loss.backward()
        emb = objective.discriminator.encoder.embeddings
        return objective, {n: getattr(emb, n).weight.grad.clone() for n in shared}

    gen_only, from_gen = grads(1.0, 0.0)
    disc_only, from_disc = grads(0.0, 50.0)
    _, both = grads(1.0, 50.0)
    for name in shared:
        assert from_gen[name].abs().sum() > 0, f"no gradient from the generator into {name}"
        assert from_disc[name].abs().sum() > 0, f"no gradient from the discriminator into {name}"
        torch.testing.assert_close(both[name], from_gen[name] + from_disc[name], rtol=1e-4, atol=1e-7)
    # with one weight at zero the other network gets no gradient at all
    assert all(p.grad is None or not p.grad.any() for p in gen_only.discriminator.encoder.attention.parameters())
    assert all(p.grad is None or not p.grad.any() for p in disc_only.generator.encoder.attention.parameters())
    assert not disc_only.generator.heads["mlm"].bias.grad.any()


@pytest.mark.parametrize("peak, expect_replaced", [("original", False), ("other", True)])
def test_sample_equal_to_original_is_labelled_original(peak, expect_replaced, make_batch):
    """A generator forced to put all its mass on one token: the original (-> nothing replaced) or another."""
    batch = make_batch(seed=5, mask_prob=0.5)
    chosen = batch.labels != IGNORE_INDEX
    original_token, other_token = 7, 9
    batch.labels[chosen] = original_token
    keep = chosen & (torch.arange(chosen.shape[1]) % 2 == 0)  # some targets left unchanged, as in 15% of ELECTRA's
    batch.input_ids[keep] = original_token
    objective = electra()
    with torch.no_grad():
        objective.generator.heads["mlm"].bias[original_token if peak == "original" else other_token] = 1e4
    step = objective.step(batch)
    token = original_token if peak == "original" else other_token
    assert (step.sampled == token).all()
    assert (step.disc_input[chosen] == token).all()
    assert torch.equal(step.disc_input[~chosen], batch.input_ids[~chosen])
    assert torch.equal(step.replaced, chosen if expect_replaced else torch.zeros_like(chosen))
    assert step.output.metrics["rtd_replaced"].item() == (chosen.sum().item() if expect_replaced else 0)


def test_loss_matches_a_float64_recomputation(make_batch):
    """Recompute labels, MLM cross-entropy and masked sigmoid BCE by hand from the same sampled tokens."""
    torch.manual_seed(0)
    objective = electra(dict(mlm_weight=1.5, rtd_weight=50.0)).double().eval()
    batch = make_batch(seed=7)
    step = objective.step(batch)
    assert step.gen_logits.dtype == torch.float64
    chosen = batch.labels != IGNORE_INDEX
    nonpad = batch.attention_mask.bool()
    # the discriminator's input: the sample at masked positions, the batch's input elsewhere
    expected_input = batch.input_ids.clone()
    expected_input[chosen] = step.sampled
    assert torch.equal(step.disc_input, expected_input)
    original = torch.where(chosen, batch.labels, batch.input_ids)
    replaced = (expected_input != original) & nonpad
    assert torch.equal(step.replaced, replaced)
    with torch.no_grad():
        gen_dense = objective.generator(batch.input_ids, batch.attention_mask, batch.token_type_ids).mlm_logits
        disc_logits = objective.discriminator(expected_input, batch.attention_mask, batch.token_type_ids).rtd_logits
    torch.testing.assert_close(step.gen_logits.detach(), gen_dense[chosen], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(step.rtd_logits.detach(), disc_logits, rtol=1e-12, atol=1e-12)

    g, t = gen_dense[chosen], batch.labels[chosen]  # (N, V), (N,)
    mlm = (torch.logsumexp(g, dim=-1) - g[torch.arange(len(t)), t]).mean()
    y, s = replaced.double(), torch.sigmoid(disc_logits)
    bce = -(y * torch.log(s) + (1 - y) * torch.log(1 - s))  # (B, T)
    rtd = (bce * nonpad).sum() / nonpad.sum()
    torch.testing.assert_close(step.output.loss.detach(), 1.5 * mlm + 50.0 * rtd, rtol=1e-10, atol=1e-10)
    m = step.output.metrics
    torch.testing.assert_close(m["mlm_loss"], mlm, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(m["rtd_loss"], rtd, rtol=1e-10, atol=1e-10)
    pred = (disc_logits > 0) & nonpad
    assert m["rtd_accuracy"].item() == pytest.approx(((pred == replaced) & nonpad).sum().item() / nonpad.sum().item())
    assert m["rtd_count"].item() == nonpad.sum().item()
    assert m["rtd_replaced"].item() == replaced.sum().item()
    assert m["rtd_predicted"].item() == pred.sum().item()
    tp = (pred & replaced).sum().item()
    assert m["rtd_precision"].item() == pytest.approx(tp / max(pred.sum().item(), 1))
    assert m["rtd_recall"].item() == pytest.approx(tp / max(replaced.sum().item(), 1))
    assert m["mlm_accuracy"].item() == pytest.approx((g.argmax(-1) == t).double().mean().item())


def test_objective_samples_from_the_generator_softmax_at_its_temperature(make_batch):
    """A generator whose logits are exactly its output bias: replacements must follow softmax(bias / t)."""
    objective = electra(dict(temperature=2.0))
    head = objective.generator.heads["mlm"]
    with torch.no_grad():
        head.dense.weight.zero_()
        head.dense.bias.zero_()  # LN(gelu(0)) = LN bias = 0, so the logits are the bias
        head.bias.fill_(-1e4)
        head.bias[10:13] = torch.tensor([1.0, 0.0, -1.0])
    torch.manual_seed(0)
    samples = torch.cat([objective.step(make_batch(batch=16, seed=s, mask_prob=1.0)).sampled for s in range(20)])
    freq = torch.bincount(samples, minlength=13)[10:13].double() / len(samples)
    expected = torch.softmax(torch.tensor([1.0, 0.0, -1.0], dtype=torch.float64) / 2.0, dim=0)
    assert len(samples) > 3000 and (freq - expected).abs().max() < 0.03


def test_no_gradient_through_the_sample(make_batch):
    objective = electra()
    step = objective.step(make_batch())
    assert not step.sampled.requires_grad and step.sampled.dtype == torch.long
    # the RTD loss alone reaches no generator-only parameter
    rtd = F.binary_cross_entropy_with_logits(step.rtd_logits, step.replaced.float())
    generator_only = [objective.generator.heads["mlm"].bias, *objective.generator.encoder.attention.parameters()]
    assert all(g is None for g in torch.autograd.grad(rtd, generator_only, allow_unused=True))


def test_state_dict_stores_shared_tensors_once_and_round_trips(tmp_path, make_batch):
    torch.manual_seed(0)
    objective = electra()
    objective(make_batch()).loss.backward()
    with torch.no_grad():
        for p in objective.parameters():
            p.add_(0.01)
    state = objective.state_dict()
    assert not any(k.startswith("generator.encoder.embeddings.word_embeddings") for k in state)
    assert "generator.encoder.embeddings.project.weight" in state  # the generator's own projection is kept
    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp_path / "ckpt.safetensors"))  # no aliasing
    torch.manual_seed(1)
    fresh = electra()
    fresh.load_state_dict(load_file(str(tmp_path / "ckpt.safetensors")), strict=True)
    for (name, a), (_, b) in zip(objective.named_parameters(), fresh.named_parameters()):
        assert torch.equal(a, b), name
    # still tied after loading
    gen_emb = fresh.generator.encoder.embeddings.word_embeddings.weight
    assert gen_emb is fresh.discriminator.encoder.embeddings.word_embeddings.weight
    assert torch.equal(gen_emb, objective.discriminator.encoder.embeddings.word_embeddings.weight)
    # each network alone still saves complete (the model directory path)
    assert "encoder.embeddings.word_embeddings.weight" in objective.generator.state_dict()
