"""The loop's hooks and policies: after_step, and frozen sub-modules (a distillation teacher)."""

from __future__ import annotations

import hashlib
import json

import pytest
import torch
from safetensors.torch import load_file

from leanbert.errors import UserError
from leanbert.train import checkpoint as ckpt
from leanbert.train.config import TrainConfig
from leanbert.train.frozen import module_fingerprint
from leanbert.train.loop import train_loop
from leanbert.train.optim import parameter_groups
from train.hook_objectives import DistillObjective, TokenFrequencyObjective, make_teacher
from train.train_synthetic import SyntheticStream


def _config(**fields) -> TrainConfig:
    base = dict(batch_size=4, max_steps=6, lr=3e-3, warmup_steps=2, log_every=1, checkpoint_every=3,
                eval_every=0, keep_checkpoints=5, device="cpu")
    base.update(fields)
    return TrainConfig(**base)


def _losses(run_dir) -> dict[int, float]:
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r["loss"] for r in lines if "loss" in r}


# --- after_step -------------------------------------------------------------------------------------------


def test_after_step_runs_once_per_optimizer_step_without_grad(tmp_path):
    config = _config(grad_accum=2)
    objective = TokenFrequencyObjective()
    train_loop(objective, SyntheticStream(config.micro_batch_size()), config, tmp_path, progress=False)
    assert objective.hook_calls == [(step, False) for step in range(1, 7)]
    # the buffer really is the EMA of the 6 global batches' token shares (each step = 2 micro-batches)
    stream = iter(SyntheticStream(config.micro_batch_size()))
    expected = torch.zeros(50, dtype=torch.float64)
    for _ in range(6):
        counts = sum(torch.bincount(b.input_ids[b.attention_mask.bool()], minlength=50).double()
                     for b in (next(stream), next(stream)))
        expected = 0.75 * expected + 0.25 * counts / counts.sum()
    torch.testing.assert_close(objective.frequency.double(), expected, rtol=1e-6, atol=1e-7)


def test_after_step_buffers_resume_exactly(tmp_path):
    config = _config()
    torch.manual_seed(0)
    full = TokenFrequencyObjective(dropout=0.1)
    train_loop(full, SyntheticStream(4), config, tmp_path / "a", progress=False)
    torch.manual_seed(0)
    with pytest.raises(KeyboardInterrupt):
        train_loop(TokenFrequencyObjective(dropout=0.1), SyntheticStream(4, fail_after=4), config, tmp_path / "b",
                   progress=False)
    resumed = TokenFrequencyObjective(dropout=0.1)
    train_loop(resumed, SyntheticStream(4), config, tmp_path / "b", resume=True, progress=False)
    assert resumed.hook_calls[0][0] == 4  # continued after the step-3 checkpoint
    assert _losses(tmp_path / "b") == _losses(tmp_path / "a")
    assert torch.equal(resumed.frequency, full.frequency)
    assert float(resumed.frequency.sum()) == pytest.approx(1 - 0.75**6)  # an EMA of shares from zero


# --- frozen modules ---------------------------------------------------------------------------------------


def test_fingerprint_is_sha256_over_sorted_names_dtypes_shapes_and_bytes():
    module = torch.nn.Linear(3, 2)
    reference = hashlib.sha256()
    for name in ("bias", "weight"):  # sorted
        tensor = getattr(module, name).detach()
        reference.update(json.dumps([name, "torch.float32", list(tensor.shape)]).encode())
        reference.update(tensor.numpy().tobytes())
    assert module_fingerprint(module) == reference.hexdigest()
    wrapped = torch.nn.Sequential(module)  # where it hangs does not matter; its contents do
    assert module_fingerprint(wrapped[0]) == reference.hexdigest()
    with torch.no_grad():
        module.weight[1, 2] += 1e-6
    assert module_fingerprint(module) != reference.hexdigest()
    assert module_fingerprint(module.to(torch.bfloat16)) != module_fingerprint(module.float())


def test_frozen_teacher_stays_in_eval_gets_no_grad_and_no_optimizer_state(tmp_path):
    teacher = make_teacher(7)
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    objective = DistillObjective(teacher, source="teacher-7")
    student_before = {k: v.clone() for k, v in objective.student.state_dict().items()}
    # parameter_groups leaves the teacher out even before the loop froze it
    grouped = {id(p) for g in parameter_groups(objective, 0.01) for p in g["params"]}
    assert grouped == {id(p) for p in objective.student.parameters()}
    objective.train()  # the Objective base class keeps frozen modules in eval mode
    assert objective.student.training and not objective.teacher.training

    config = _config(eval_every=3)
    result = train_loop(objective, SyntheticStream(4), config, tmp_path, progress=False,
                        eval_fn=lambda obj: {"loss": float(obj(next(iter(SyntheticStream(4, seed=9)))).loss)})
    assert len(objective.teacher_modes) == 6 and not any(objective.teacher_modes)  # eval after evaluations too
    assert objective.student.training and not objective.teacher.training
    assert all(not p.requires_grad and p.grad is None for p in teacher.parameters())
    assert all(torch.equal(before[k], v) for k, v in teacher.state_dict().items())
    moved = sum(not torch.equal(student_before[k], v) for k, v in objective.student.state_dict().items())
    assert moved > 10  # the student did train

    # checkpoint: student weights and moments only; the teacher is recorded by source and fingerprint
    saved = result.last_checkpoint
    weights = load_file(str(saved / "objective.safetensors"))
    assert weights and not any(k.startswith("teacher.") for k in weights)
    assert any(k.startswith("student.") for k in weights)
    manifest = json.loads((saved / "manifest.json").read_text())
    assert manifest["frozen"] == {"teacher": {"prefix": "teacher.", "source": "teacher-7",
                                              "fingerprint": module_fingerprint(teacher)}}
    optimizer = json.loads((saved / "optimizer.json").read_text())
    state_entries = optimizer["state"]["__items__"]
    assert len(state_entries) == len(list(objective.student.parameters()))


def test_param_groups_with_teacher_parameters_are_refused(tmp_path):
    objective = DistillObjective(make_teacher(7), source="teacher-7")
    groups = [{"params": list(objective.parameters()), "weight_decay": 0.0, "lr_scale": 1.0}]
    with pytest.raises(ValueError, match="frozen module"):
        train_loop(objective, SyntheticStream(4), _config(), tmp_path, param_groups=groups, progress=False)


def test_a_parameter_shared_between_student_and_teacher_is_refused(tmp_path):
    objective = DistillObjective(make_teacher(7), source="teacher-7")
    objective.student.encoder.embeddings.word_embeddings = objective.teacher.encoder.embeddings.word_embeddings
    with pytest.raises(ValueError, match=r"student\.encoder\.embeddings\.word_embeddings\.weight.*shared"):
        train_loop(objective, SyntheticStream(4), _config(), tmp_path, progress=False)


def test_resume_with_the_same_teacher_is_exact_and_another_teacher_is_refused(tmp_path):
    config = _config()
    full = DistillObjective(make_teacher(7), source="teacher-7")
    train_loop(full, SyntheticStream(4), config, tmp_path / "a", progress=False)
    with pytest.raises(KeyboardInterrupt):
        train_loop(DistillObjective(make_teacher(7), source="teacher-7"), SyntheticStream(4, fail_after=4), config,
                   tmp_path / "b", progress=False)
    assert [c.step for c in ckpt.list_checkpoints(tmp_path / "b")] == [3]

    other = DistillObjective(make_teacher(8), source="teacher-8")
    with pytest.raises(UserError) as caught:
        train_loop(other, SyntheticStream(4), config, tmp_path / "b", resume=True, progress=False)
    message = str(caught.value)
    assert "\n" not in message and "teacher-7" in message and "teacher-8" in message
    assert module_fingerprint(make_teacher(7))[:16] in message and module_fingerprint(make_teacher(8))[:16] in message

    resumed = DistillObjective(make_teacher(7), source="teacher-7", student_seed=123)  # checkpoint overwrites
    result = train_loop(resumed, SyntheticStream(4), config, tmp_path / "b", resume=True, progress=False)
    assert result.step == 6
    assert _losses(tmp_path / "b") == _losses(tmp_path / "a")  # bit-identical floats
    for (name, a), b in zip(full.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name


def test_resume_refuses_a_checkpoint_without_the_teacher(tmp_path):
    config = _config(max_steps=3)
    plain = TokenFrequencyObjective()
    train_loop(plain, SyntheticStream(4), config, tmp_path, progress=False)
    objective = DistillObjective(make_teacher(7), source="teacher-7")
    with pytest.raises(UserError, match=r"frozen modules \[\] but this run has \['teacher'\]"):
        train_loop(objective, SyntheticStream(4), config, tmp_path, resume=True, progress=False)
