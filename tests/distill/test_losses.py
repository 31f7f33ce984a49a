"""TinyBERT's losses (the layer matches of distill.losses, the prediction layer of tasks.prediction_loss)
against float64 references written from the paper's equations with explicit loops over examples, heads and
real positions (nothing shared with the implementation)."""

from __future__ import annotations

import math

import pytest
import torch

import leanbert.tasks.prediction_loss as prediction
from leanbert.config import ConfigError
from leanbert.distill import losses

DT = torch.float64


def _mask(lengths: list[int], length: int) -> torch.Tensor:
    return torch.tensor([[1 if t < n else 0 for t in range(length)] for n in lengths])  # (B, T)


def _reference_mse_tokens(student, teacher, lengths) -> float:
    """(1 / (#real tokens * H)) sum over real tokens of ||s - t||^2."""
    total, count = 0.0, 0
    for b, n in enumerate(lengths):
        for t in range(n):
            for h in range(student.shape[-1]):
                total += (float(student[b, t, h]) - float(teacher[b, t, h])) ** 2
                count += 1
    return total / count


def _reference_attention(student, teacher, lengths) -> float:
    """(1/h) sum_heads MSE over real (query, key) pairs, pairs pooled over the batch; teacher heads grouped."""
    heads_s, heads_t = student.shape[1], teacher.shape[1]
    group = heads_t // heads_s
    per_head = []
    for i in range(heads_s):
        total, count = 0.0, 0
        for b, n in enumerate(lengths):
            for q in range(n):
                for k in range(n):
                    target = sum(float(teacher[b, i * group + j, q, k]) for j in range(group)) / group
                    total += (float(student[b, i, q, k]) - target) ** 2
                    count += 1
        per_head.append(total / count)
    return sum(per_head) / heads_s


def test_hidden_and_embedding_mse_over_real_tokens_with_projection():
    g = torch.Generator().manual_seed(0)
    lengths, length = [5, 3, 7], 7
    student = torch.randn(3, length, 4, generator=g, dtype=DT)
    teacher = torch.randn(3, length, 6, generator=g, dtype=DT)
    projection = torch.nn.Linear(4, 6).to(DT)
    projected = projection(student).detach()
    expected = _reference_mse_tokens(projected, teacher, lengths)
    mask = _mask(lengths, length)
    for fn in (losses.hidden_loss, losses.embedding_loss):
        got = fn(student, teacher, mask, projection)
        assert got.dtype == DT
        assert math.isclose(got.item(), expected, rel_tol=1e-12)


def test_representation_loss_without_projection_needs_equal_widths():
    g = torch.Generator().manual_seed(1)
    student = torch.randn(2, 4, 5, generator=g, dtype=DT)
    teacher = torch.randn(2, 4, 5, generator=g, dtype=DT)
    mask = _mask([4, 2], 4)
    assert math.isclose(float(losses.hidden_loss(student, teacher, mask)),
                        _reference_mse_tokens(student, teacher, [4, 2]), rel_tol=1e-12)
    with pytest.raises(ValueError, match="no projection"):
        losses.hidden_loss(student, torch.zeros(2, 4, 6, dtype=DT), mask)


def test_attention_mse_excludes_padded_queries_and_keys():
    g = torch.Generator().manual_seed(2)
    lengths, length = [6, 2, 4], 6
    student = torch.randn(3, 2, length, length, generator=g, dtype=DT) * 3
    teacher = torch.randn(3, 2, length, length, generator=g, dtype=DT) * 3
    got = losses.attention_loss(student, teacher, _mask(lengths, length))
    assert math.isclose(float(got), _reference_attention(student, teacher, lengths), rel_tol=1e-12)


def test_attention_averages_teacher_heads_in_groups():
    g = torch.Generator().manual_seed(3)
    lengths, length = [5, 3], 5
    student = torch.randn(2, 2, length, length, generator=g, dtype=DT)
    teacher = torch.randn(2, 6, length, length, generator=g, dtype=DT)
    got = losses.attention_loss(student, teacher, _mask(lengths, length))
    assert math.isclose(float(got), _reference_attention(student, teacher, lengths), rel_tol=1e-12)


def test_attention_refuses_head_counts_that_do_not_divide():
    scores = torch.zeros(1, 4, 3, 3, dtype=DT)
    with pytest.raises(ConfigError, match="multiple of the student's"):
        losses.attention_loss(torch.zeros(1, 3, 3, 3, dtype=DT), scores, torch.ones(1, 3))
    with pytest.raises(ConfigError, match="multiple"):
        losses.attention_loss(torch.zeros(1, 8, 3, 3, dtype=DT), scores, torch.ones(1, 3))


def test_padding_changes_no_loss():
    """Appending padded positions (with arbitrary garbage values there) leaves every loss unchanged."""
    g = torch.Generator().manual_seed(4)
    lengths, length, extra = [4, 2], 4, 3
    s_hidden = torch.randn(2, length, 3, generator=g, dtype=DT)
    t_hidden = torch.randn(2, length, 3, generator=g, dtype=DT)
    s_scores = torch.randn(2, 2, length, length, generator=g, dtype=DT)
    t_scores = torch.randn(2, 4, length, length, generator=g, dtype=DT)
    mask = _mask(lengths, length)

    def pad(x, dims):
        for dim in dims:
            shape = list(x.shape)
            shape[dim] = extra
            x = torch.cat([x, torch.randn(shape, generator=g, dtype=DT) * 100 - 1e4], dim=dim)
        return x

    padded_mask = _mask(lengths, length + extra)
    assert math.isclose(float(losses.hidden_loss(s_hidden, t_hidden, mask)),
                        float(losses.hidden_loss(pad(s_hidden, [1]), pad(t_hidden, [1]), padded_mask)), rel_tol=1e-13)
    before = losses.attention_loss(s_scores, t_scores, mask)
    after = losses.attention_loss(pad(s_scores, [2, 3]), pad(t_scores, [2, 3]), padded_mask)
    assert math.isclose(float(before), float(after), rel_tol=1e-13)
    # the reference's "zero scores <= -100" rule would not be invariant: padded (0, 0) pairs dilute the mean


def test_loss_of_a_batch_without_real_tokens_is_refused():
    with pytest.raises(ValueError, match="no real token"):
        losses.hidden_loss(torch.zeros(1, 2, 3), torch.zeros(1, 2, 3), torch.zeros(1, 2))


def _reference_soft_ce(student, teacher, temperature) -> float:
    total = 0.0
    for s_row, t_row in zip(student.tolist(), teacher.tolist()):
        t_exp = [math.exp(v / temperature) for v in t_row]
        s_exp = [math.exp(v / temperature) for v in s_row]
        t_sum, s_sum = sum(t_exp), sum(s_exp)
        total += -sum((te / t_sum) * math.log(se / s_sum) for te, se in zip(t_exp, s_exp))
    return total / len(student)


@pytest.mark.parametrize("temperature", [1.0, 2.5])
def test_soft_cross_entropy_matches_the_formula(temperature):
    g = torch.Generator().manual_seed(5)
    student = torch.randn(4, 3, generator=g, dtype=DT) * 2
    teacher = torch.randn(4, 3, generator=g, dtype=DT) * 2
    got = prediction.soft_cross_entropy(student, teacher, temperature)
    assert math.isclose(float(got), _reference_soft_ce(student, teacher, temperature), rel_tol=1e-12)
    assert float(prediction.prediction_loss(student, teacher, temperature=temperature)) == float(got)


def test_prediction_loss_mixes_in_the_gold_labels():
    g = torch.Generator().manual_seed(6)
    student = torch.randn(5, 3, generator=g, dtype=DT)
    teacher = torch.randn(5, 3, generator=g, dtype=DT)
    labels = torch.tensor([0, 2, 1, 1, 0])
    hard = 0.0
    for row, label in zip(student.tolist(), labels.tolist()):
        hard += -(row[label] - math.log(sum(math.exp(v) for v in row)))
    hard /= len(labels)
    soft = _reference_soft_ce(student, teacher, 2.0)
    got = prediction.prediction_loss(student, teacher, labels, temperature=2.0, hard_label_weight=0.3)
    assert math.isclose(float(got), 0.7 * soft + 0.3 * hard, rel_tol=1e-12)
    with pytest.raises(ValueError, match="gold labels"):
        prediction.prediction_loss(student, teacher, None, hard_label_weight=0.5)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        prediction.prediction_loss(student, teacher, labels, hard_label_weight=1.5)


def test_prediction_loss_for_regression_is_mse():
    student = torch.tensor([[0.5], [2.0], [-1.0]], dtype=DT)
    teacher = torch.tensor([[1.0], [1.0], [0.0]], dtype=DT)
    gold = torch.tensor([0.0, 3.0, -1.0], dtype=DT)
    soft = (0.25 + 1.0 + 1.0) / 3
    hard = (0.25 + 1.0 + 0.0) / 3
    assert math.isclose(float(prediction.prediction_loss(student, teacher, regression=True)), soft, rel_tol=1e-12)
    got = prediction.prediction_loss(student, teacher, gold, hard_label_weight=1.0, regression=True)
    assert math.isclose(float(got), hard, rel_tol=1e-12)


def test_gradients_reach_the_student_and_the_projection():
    g = torch.Generator().manual_seed(7)
    student = torch.randn(2, 3, 4, generator=g, requires_grad=True)
    teacher = torch.randn(2, 3, 8, generator=g)
    projection = torch.nn.Linear(4, 8)
    losses.hidden_loss(student, teacher, _mask([3, 1], 3), projection).backward()
    assert student.grad is not None and float(student.grad[1, 1:].abs().sum()) == 0.0  # padding gets none
    assert projection.weight.grad is not None and float(projection.weight.grad.abs().sum()) > 0


def test_prediction_loss_uses_gold_labels_only_where_they_exist():
    """Unlabeled rows (class index < 0, regression NaN) get the soft loss alone; labelled rows the mix."""
    g = torch.Generator().manual_seed(8)
    student = torch.randn(4, 3, generator=g, dtype=DT)
    teacher = torch.randn(4, 3, generator=g, dtype=DT)
    labels = torch.tensor([2, -100, 0, -100])
    expected = 0.0
    for i in range(4):
        soft = _reference_soft_ce(student[i:i + 1], teacher[i:i + 1], 1.5)
        if labels[i] >= 0:
            row = student[i].tolist()
            hard = -(row[int(labels[i])] - math.log(sum(math.exp(v) for v in row)))
            expected += 0.6 * soft + 0.4 * hard
        else:
            expected += soft
    got = prediction.prediction_loss(student, teacher, labels, temperature=1.5, hard_label_weight=0.4)
    assert math.isclose(float(got), expected / 4, rel_tol=1e-12)
    unlabeled = torch.full((4,), -100)
    assert math.isclose(float(prediction.prediction_loss(student, teacher, unlabeled, 1.5, 0.4)),
                        _reference_soft_ce(student, teacher, 1.5), rel_tol=1e-12)


def test_regression_prediction_loss_skips_missing_targets():
    student = torch.tensor([[0.5], [2.0], [-1.0]], dtype=DT)
    teacher = torch.tensor([[1.0], [1.0], [0.0]], dtype=DT)
    gold = torch.tensor([0.0, float("nan"), -1.0], dtype=DT)
    got = prediction.prediction_loss(student, teacher, gold, hard_label_weight=1.0, regression=True)
    assert math.isclose(float(got), (0.25 + 1.0 + 0.0) / 3, rel_tol=1e-12)  # row 2: soft (2 - 1)^2
