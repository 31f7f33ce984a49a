"""The distillation objective and its students: the loss is the weighted sum of the matches' terms, the
projections follow the widths, the teacher is frozen (eval mode, no gradient, not in checkpoints), a student
learns a random teacher's predictions, and teacher-layers copies the right layers."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from helpers import tiny_config
from leanbert.batch import Batch
from leanbert.config import ConfigError
from leanbert.distill.config import TASK_FEATURES, DistillConfig, resolved_matches
from leanbert.distill.losses import attention_loss, representation_loss
from leanbert.distill.matches import LayerMatch, generate_matches
from leanbert.distill.objective import PredictionTarget, TransformerDistillation
from leanbert.distill.student import copy_teacher_layers, kept_teacher_layers, teacher_layers_config
from leanbert.model.model import LeanBertModel
from leanbert.train.config import TrainConfig
from leanbert.train.loop import train_loop

VOCAB = 101


def make_batches(count: int, batch: int = 8, length: int = 12, seed: int = 0, labels: int = 0) -> list[Batch]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(count):
        ids = torch.randint(5, VOCAB, (batch, length), generator=g)
        mask = torch.ones_like(ids)
        lengths = torch.randint(4, length + 1, (batch,), generator=g)
        mask[torch.arange(length)[None, :] >= lengths[:, None]] = 0  # (B, T) ragged padding
        ids[mask == 0] = 0
        class_labels = torch.randint(0, labels, (batch,), generator=g) if labels else None
        out.append(Batch(ids, mask, torch.zeros_like(ids), class_labels=class_labels))
    return out


def teacher_model(seed: int = 7, **fields) -> LeanBertModel:
    torch.manual_seed(seed)
    base = dict(num_layers=4, hidden_size=48, num_heads=4, intermediate_size=64, hidden_dropout=0.3,
                attention_dropout=0.3)
    return LeanBertModel(tiny_config(**{**base, **fields}))


def student_model(seed: int = 0, **fields) -> LeanBertModel:
    torch.manual_seed(seed)
    return LeanBertModel(tiny_config(**{"num_layers": 2, "hidden_size": 32, "num_heads": 2, **fields}))


def loop_config(**fields) -> TrainConfig:
    base = dict(batch_size=8, max_steps=6, lr=3e-3, warmup_steps=0, schedule="constant", log_every=1,
                eval_every=0, checkpoint_every=3, keep_checkpoints=2, device="cpu", seed=0)
    return TrainConfig(**{**base, **fields})


def test_loss_is_the_weighted_sum_of_the_match_terms_in_float64():
    teacher, student = teacher_model().double().eval(), student_model().double().eval()
    matches = generate_matches("uniform", 2, 4, TASK_FEATURES, {"embedding": 0.5, "attention": 2.0,
                                                                  "hidden": 1.5})
    objective = TransformerDistillation(student, teacher, "t", matches).double()
    batch = make_batches(1)[0]
    out = objective(batch)
    s = student(batch.input_ids, batch.attention_mask, output_hidden_states=True, output_attention_scores=True)
    t = teacher(batch.input_ids, batch.attention_mask, output_hidden_states=True, output_attention_scores=True)
    mask = batch.attention_mask
    w_e, w_h = objective.projections["embedding"], objective.projections["hidden"]
    expected = 0.5 * representation_loss(w_e(s.hidden_states[0]), t.hidden_states[0], mask)
    for m, n in ((1, 2), (2, 4)):  # uniform 4 -> 2: g(m) = 2m
        expected = expected + 2.0 * attention_loss(s.attention_scores[m - 1], t.attention_scores[n - 1], mask)
        expected = expected + 1.5 * representation_loss(w_h(s.hidden_states[m]), t.hidden_states[n], mask)
    assert torch.allclose(out.loss, expected, rtol=1e-12, atol=0)
    assert torch.allclose(out.metrics["distill_attention"] + out.metrics["distill_hidden"]
                          + out.metrics["distill_embedding"], expected, rtol=1e-12, atol=0)
    assert float(out.metrics["distill_count"]) == batch.input_ids.shape[0]


def test_projections_separate_shared_or_none():
    matches = generate_matches("uniform", 2, 4, TASK_FEATURES)
    separate = TransformerDistillation(student_model(), teacher_model(), "t", matches)
    assert sorted(separate.projections) == ["embedding", "hidden"]
    assert separate.projections["hidden"].weight.shape == (48, 32)  # H_S -> H_T
    shared = TransformerDistillation(student_model(), teacher_model(), "t", matches, shared_projection=True)
    assert list(shared.projections) == ["shared"]
    assert shared.projection("embedding") is shared.projection("hidden")
    same_width = TransformerDistillation(student_model(hidden_size=48, num_heads=4), teacher_model(), "t",
                                         matches)
    assert len(same_width.projections) == 0 and same_width.projection("hidden") is None
    attention_only = TransformerDistillation(student_model(), teacher_model(), "t",
                                             generate_matches("uniform", 2, 4, ("attention",)))
    assert len(attention_only.projections) == 0


def test_incompatible_head_counts_are_refused_up_front():
    with pytest.raises(ConfigError, match="multiple of the student's"):
        TransformerDistillation(student_model(num_heads=8), teacher_model(num_heads=4), "t",
                                generate_matches("uniform", 2, 4, ("attention",)))


def test_teacher_frozen_in_eval_without_gradient_and_not_in_checkpoints(tmp_path):
    teacher = teacher_model()
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    objective = TransformerDistillation(student_model(), teacher, "teacher-dir",
                                        generate_matches("uniform", 2, 4, ("attention", "hidden")))
    seen_modes = []
    teacher.encoder.register_forward_pre_hook(lambda module, _args: seen_modes.append(module.training))
    result = train_loop(objective, make_batches(3), loop_config(), tmp_path, progress=False)
    assert seen_modes and not any(seen_modes)  # dropout 0.3 in the teacher never ran
    assert all(not p.requires_grad and p.grad is None for p in teacher.parameters())
    assert all(torch.equal(before[k], v) for k, v in teacher.state_dict().items())
    weights = load_file(str(result.last_checkpoint / "objective.safetensors"))
    assert any(k.startswith("student.") for k in weights) and any(k.startswith("projections.") for k in weights)
    assert not any(k.startswith("teacher.") for k in weights)
    manifest = json.loads((result.last_checkpoint / "manifest.json").read_text())
    assert manifest["frozen"]["teacher"]["source"] == "teacher-dir"
    assert objective.models() == {"model": objective.student}


def test_student_learns_a_random_teachers_predictions_far_better_than_chance(tmp_path):
    labels = 3
    teacher = teacher_model(heads=["classifier"], num_labels=labels, hidden_dropout=0.0, attention_dropout=0.0)
    with torch.no_grad():  # centre the logits so that the prediction depends on the input, not on a bias
        torch.manual_seed(3)
        teacher.heads.classifier.classifier.weight.normal_(0, 1.0)
        logits = torch.cat([teacher(b.input_ids, b.attention_mask).logits for b in make_batches(8, seed=5)])
        teacher.heads.classifier.classifier.bias.sub_(logits.mean(0))
    student = student_model(heads=["classifier"], num_labels=labels)
    objective = TransformerDistillation(student, teacher, "t", [], PredictionTarget(temperature=1.0))
    held_out = make_batches(4, seed=99)

    def agreement_and_kl() -> tuple[float, float]:
        agree, kl, n = 0.0, 0.0, 0
        with torch.no_grad():
            for b in held_out:
                s = student(b.input_ids, b.attention_mask, b.token_type_ids).logits  # (B, C)
                t = teacher(b.input_ids, b.attention_mask, b.token_type_ids).logits  # (B, C)
                agree += float((s.argmax(-1) == t.argmax(-1)).sum())
                kl += float(F.kl_div(F.log_softmax(s, -1), F.log_softmax(t, -1), log_target=True,
                                     reduction="sum"))
                n += s.shape[0]
        return agree / n, kl / n

    teacher_classes = torch.cat([teacher(b.input_ids, b.attention_mask).logits.argmax(-1) for b in held_out])
    majority = float(torch.bincount(teacher_classes, minlength=labels).max()) / len(teacher_classes)
    _, kl_before = agreement_and_kl()
    train_loop(objective, make_batches(60, seed=1), loop_config(max_steps=300, checkpoint_every=0, lr=2e-3),
               tmp_path, progress=False)
    student.eval()
    agreement, kl_after = agreement_and_kl()
    assert kl_after < 0.25 * kl_before
    assert majority < 0.8 and agreement > max(0.85, majority + 0.2)


def test_hard_label_weight_mixes_in_the_gold_labels():
    teacher = teacher_model(heads=["classifier"], num_labels=2).eval()
    student = student_model(heads=["classifier"], num_labels=2, hidden_dropout=0.0)
    batch = make_batches(1, labels=2)[0]
    mixed = TransformerDistillation(student, teacher, "t", [], PredictionTarget(2.0, 0.25))(batch).loss
    s = student(batch.input_ids, batch.attention_mask).logits
    t = teacher(batch.input_ids, batch.attention_mask).logits
    soft = -(F.softmax(t / 2.0, -1) * F.log_softmax(s / 2.0, -1)).sum(-1).mean()
    assert torch.allclose(mixed, 0.75 * soft + 0.25 * F.cross_entropy(s, batch.class_labels), atol=1e-6)


def test_teacher_layers_keeps_every_kth_layer_and_the_embeddings():
    teacher = teacher_model(seed=5, num_layers=6, heads=["classifier"])
    assert kept_teacher_layers(6, 2) == [2, 4, 6] and kept_teacher_layers(6, 3) == [3, 6]
    config = teacher_layers_config(teacher.config, 2, ["classifier"], 2)
    assert config.num_layers == 3 and config.hidden_size == teacher.config.hidden_size
    torch.manual_seed(0)
    student = LeanBertModel(config)
    copy_teacher_layers(student, teacher, 2)
    theirs, ours = teacher.state_dict(), student.state_dict()
    for m, n in enumerate([2, 4, 6]):  # student layer m (from 0) <- teacher layer n (from 1)
        for part in ("attention", "ffn"):
            for key in [k for k in ours if k.startswith(f"encoder.{part}.{m}.")]:
                assert torch.equal(ours[key], theirs[key.replace(f".{part}.{m}.", f".{part}.{n - 1}.")])
    for key in [k for k in ours if k.startswith(("encoder.embeddings.", "encoder.pooler.", "heads."))]:
        assert torch.equal(ours[key], theirs[key])
    with pytest.raises(ConfigError, match="must divide"):
        kept_teacher_layers(6, 4)
    with pytest.raises(ConfigError, match="shares"):
        teacher_layers_config(dataclasses.replace(teacher.config, sharing="all"), 2, [], 2)


def test_explicit_matches_are_checked_against_both_depths():
    config = DistillConfig(matches=[{"student": 1, "teacher": 3, "feature": "hidden"}])
    assert resolved_matches(config, TASK_FEATURES, 2, 4) == [LayerMatch(1, 3, "hidden")]
    bad = DistillConfig(matches=[{"student": 1, "teacher": 9, "feature": "attention"}])
    with pytest.raises(ConfigError, match="teacher layer 9 is out of range"):
        resolved_matches(bad, TASK_FEATURES, 2, 4)
    assert [m.feature for m in resolved_matches(DistillConfig(), ("attention", "hidden"), 2, 4)] == \
        ["attention", "hidden"] * 2
