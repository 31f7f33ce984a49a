"""MLM, MLM+NSP and MLM+SOP: forward + backward on every encoder switch, sparse loss == dense reference."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from helpers import tiny_config
from leanbert.batch import IGNORE_INDEX
from leanbert.config import ConfigError
from leanbert.objectives import (
    MaskedLM,
    MaskedLMWithPairs,
    aggregate_metrics,
    build_objective,
    objective_config,
)

ENCODERS = {
    "bert": dict(family="bert"),
    "albert-shared-factorized": dict(family="albert", embedding_size=16, sharing="all", hidden_act="gelu_new"),
    "shared-attention-groups": dict(family="bert", sharing="attention", num_groups=2, num_layers=4),
    "shared-ffn": dict(family="bert", sharing="ffn"),
    "no-token-types": dict(family="bert", type_vocab_size=0),
}


@pytest.mark.parametrize("name", ["mlm", "mlm+nsp", "mlm+sop"])
@pytest.mark.parametrize("encoder", list(ENCODERS))
def test_forward_backward(name, encoder, make_batch):
    torch.manual_seed(0)
    objective = build_objective(objective_config(name), tiny_config(**ENCODERS[encoder]))
    batch = make_batch()
    out = objective(batch)
    assert out.loss.dim() == 0 and torch.isfinite(out.loss)
    out.loss.backward()
    model = objective.models()["model"]
    assert list(objective.models()) == ["model"]
    assert model.config.heads == ["mlm"] + ({"mlm+nsp": ["nsp"], "mlm+sop": ["sop"]}.get(name, []))
    emb = model.encoder.embeddings.word_embeddings.weight
    assert emb.grad is not None and emb.grad.abs().sum() > 0
    # every metric is a detached 0-d tensor; counts are right
    for key, value in out.metrics.items():
        assert isinstance(value, torch.Tensor) and value.dim() == 0 and not value.requires_grad, key
    assert out.metrics["mlm_count"].item() == (batch.labels != IGNORE_INDEX).sum().item()
    if name != "mlm":
        task = name.split("+")[1]
        assert out.metrics[f"{task}_count"].item() == len(batch)
        expected = out.metrics["mlm_loss"] + out.metrics[f"{task}_loss"]
        torch.testing.assert_close(out.loss.detach(), expected)


def test_sparse_mlm_loss_equals_dense_reference(make_batch):
    """Loss over the masked positions only == CE over all (B, T) positions with non-targets ignored."""
    torch.manual_seed(0)
    objective = MaskedLM(tiny_config(embedding_size=16, family="albert"))
    objective.eval()
    batch = make_batch(seed=3)
    out = objective(batch)
    dense = objective.model(batch.input_ids, batch.attention_mask, batch.token_type_ids).mlm_logits  # (B, T, V)
    assert dense.shape[:2] == batch.input_ids.shape
    reference = F.cross_entropy(dense.reshape(-1, dense.shape[-1]), batch.labels.reshape(-1),
                                ignore_index=IGNORE_INDEX)
    torch.testing.assert_close(out.loss, reference, rtol=1e-5, atol=1e-6)
    chosen = batch.labels != IGNORE_INDEX
    accuracy = (dense.argmax(-1)[chosen] == batch.labels[chosen]).float().mean()
    torch.testing.assert_close(out.metrics["mlm_accuracy"], accuracy)
    # and the gradient is the same as the dense one
    grads_sparse = torch.autograd.grad(out.loss, objective.model.heads["mlm"].bias)[0]
    dense = objective.model(batch.input_ids, batch.attention_mask, batch.token_type_ids).mlm_logits
    reference = F.cross_entropy(dense.reshape(-1, dense.shape[-1]), batch.labels.reshape(-1))
    grads_dense = torch.autograd.grad(reference, objective.model.heads["mlm"].bias)[0]
    torch.testing.assert_close(grads_sparse, grads_dense, rtol=1e-5, atol=1e-7)


def test_sentence_loss_and_accuracy(make_batch):
    torch.manual_seed(0)
    objective = build_objective(objective_config("mlm+sop", sentence_weight=0.5, mlm_weight=2.0),
                                tiny_config(family="albert"))
    objective.eval()
    batch = make_batch()
    out = objective(batch)
    logits = objective.model(batch.input_ids, batch.attention_mask, batch.token_type_ids).sop_logits  # (B, 2)
    sop = F.cross_entropy(logits, batch.sentence_labels)
    torch.testing.assert_close(out.metrics["sop_loss"], sop)
    torch.testing.assert_close(out.loss, 2.0 * out.metrics["mlm_loss"] + 0.5 * sop)
    torch.testing.assert_close(out.metrics["sop_accuracy"],
                               (logits.argmax(-1) == batch.sentence_labels).float().mean())


def test_no_masked_positions_gives_zero_loss_not_nan(make_batch):
    batch = make_batch()
    batch.labels.fill_(IGNORE_INDEX)
    objective = MaskedLM(tiny_config())
    out = objective(batch)
    assert out.loss.item() == 0.0 and out.metrics["mlm_count"].item() == 0
    out.loss.backward()  # still a valid graph


def test_pairs_need_sentence_labels_and_a_pooler(make_batch):
    objective = build_objective(objective_config("mlm+nsp"), tiny_config())
    with pytest.raises(ValueError, match="data.pairs=nsp"):
        objective(make_batch(sentence_labels=False))
    with pytest.raises(ConfigError, match="no pooler"):
        MaskedLMWithPairs(tiny_config(family="electra"), objective_config("mlm+sop"))


def test_objective_ignores_heads_in_model_config():
    objective = build_objective(objective_config("mlm"), tiny_config(heads=["classifier"]))
    assert list(objective.model.heads) == ["mlm"]


def test_aggregate_metrics_weights_means_by_their_counts(make_batch):
    torch.manual_seed(0)
    objective = MaskedLM(tiny_config()).eval()
    batches = [make_batch(seed=s, mask_prob=p) for s, p in [(0, 0.1), (1, 0.5), (2, 0.3)]]
    per_batch = [objective(b).metrics for b in batches]
    total = aggregate_metrics(per_batch)
    counts = [m["mlm_count"].item() for m in per_batch]
    assert total["mlm_count"] == sum(counts)
    correct = sum(m["mlm_accuracy"].item() * c for m, c in zip(per_batch, counts))
    assert total["mlm_accuracy"] == pytest.approx(correct / sum(counts))
    # the same as one pass over all targets at once
    with torch.no_grad():
        losses = []
        for b in batches:
            out, targets = objective.run_model(b)
            losses.append(F.cross_entropy(out.mlm_logits, targets, reduction="none"))
    assert total["mlm_loss"] == pytest.approx(torch.cat(losses).mean().item(), rel=1e-5)
