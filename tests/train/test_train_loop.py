"""The training loop: exact resume, checkpoint rotation and completeness, NaN stop, budgets."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from leanbert.errors import UserError
from leanbert.train import checkpoint as ckpt
from leanbert.train.config import TrainConfig
from leanbert.train.loop import NonFiniteLossError, train_loop
from leanbert.train.state_io import load_state
from train.train_synthetic import ClassifyObjective, SyntheticStream, tiny_model_config


def _losses(run_dir) -> dict[int, float]:
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r["loss"] for r in lines if "loss" in r}


def _objective(seed: int, dropout: float = 0.1, **kwargs) -> ClassifyObjective:
    torch.manual_seed(seed)
    return ClassifyObjective(tiny_model_config(dropout=dropout), **kwargs)


def _config(**fields) -> TrainConfig:
    base = dict(batch_size=4, max_steps=8, lr=3e-3, warmup_steps=2, log_every=1, checkpoint_every=3,
                eval_every=0, keep_checkpoints=5, device="cpu")
    base.update(fields)
    return TrainConfig(**base)


@pytest.mark.parametrize("optimizer,grad_accum", [("adamw", 1), ("lamb", 2)])
def test_interrupted_and_resumed_run_matches_uninterrupted_bit_for_bit(tmp_path, optimizer, grad_accum):
    # dropout 0.1 so the restored RNG state matters; the data position matters through the stream
    config = _config(optimizer=optimizer, grad_accum=grad_accum)
    micro = config.micro_batch_size()
    full = _objective(0)
    train_loop(full, SyntheticStream(micro), config, tmp_path / "a", progress=False)

    crashed = _objective(0)
    with pytest.raises(KeyboardInterrupt):  # crash while fetching the data of step 8
        train_loop(crashed, SyntheticStream(micro, fail_after=7 * grad_accum), config, tmp_path / "b",
                   progress=False)
    assert [c.step for c in ckpt.list_checkpoints(tmp_path / "b")] == [3, 6]
    resumed = _objective(123)  # different init: the checkpoint must overwrite it
    result = train_loop(resumed, SyntheticStream(micro), config, tmp_path / "b", resume=True, progress=False)

    assert result.step == 8
    expected, got = _losses(tmp_path / "a"), _losses(tmp_path / "b")
    assert sorted(got) == list(range(1, 9))  # lines logged after the checkpoint by the crashed run were dropped
    assert got == expected  # bit-identical floats
    for (name, a), b in zip(full.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name


def test_rotation_keeps_newest_k_and_no_temp_dirs(tmp_path):
    config = _config(checkpoint_every=2, keep_checkpoints=2)
    train_loop(_objective(0), SyntheticStream(4), config, tmp_path, progress=False)
    assert [c.step for c in ckpt.list_checkpoints(tmp_path)] == [6, 8]
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["step-6", "step-8"]
    manifest = json.loads((tmp_path / "checkpoints" / "step-8" / "manifest.json").read_text())
    assert manifest["step"] == 8 and "objective.safetensors" in manifest["files"]


def test_partial_checkpoints_are_ignored_and_cleaned(tmp_path):
    config = _config(max_steps=4, checkpoint_every=4)
    train_loop(_objective(0), SyntheticStream(4), config, tmp_path, progress=False)
    root = tmp_path / "checkpoints"
    good = root / "step-4"
    # a step dir whose weights were cut short, one without a manifest, and a leftover temp dir
    truncated = root / "step-6"
    shutil.copytree(good, truncated)
    weights = truncated / "objective.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    no_manifest = root / "step-7"
    shutil.copytree(good, no_manifest)
    (no_manifest / "manifest.json").unlink()
    (root / ".step-8.tmp-abc").mkdir()
    (root / "step-9").mkdir()  # empty
    assert ckpt.latest_checkpoint(tmp_path).step == 4

    result = train_loop(_objective(1), SyntheticStream(4), _config(max_steps=6, checkpoint_every=2), tmp_path,
                        resume=True, progress=False)
    assert result.step == 6
    names = sorted(p.name for p in root.iterdir())
    assert names == ["step-4", "step-6"]  # junk removed, a fresh complete step-6 written
    assert ckpt.latest_checkpoint(tmp_path).step == 6


def test_resume_without_checkpoint_starts_from_zero(tmp_path):
    result = train_loop(_objective(0), SyntheticStream(4), _config(max_steps=2), tmp_path, resume=True,
                        progress=False)
    assert result.step == 2


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    objective = _objective(0, nan_after=5)  # the 6th forward (step 6) returns NaN
    config = _config(max_steps=10, checkpoint_every=2, log_every=5, keep_checkpoints=3)
    with pytest.raises(NonFiniteLossError, match=r"at step 6.*step-4"):
        train_loop(objective, SyntheticStream(4), config, tmp_path, progress=False)
    assert [c.step for c in ckpt.list_checkpoints(tmp_path)] == [2, 4]
    state = ckpt.load_checkpoint(tmp_path / "checkpoints" / "step-4", _objective(1), None)
    assert state["step"] == 4


def test_max_minutes_budget_stops_with_a_checkpoint(tmp_path):
    config = _config(max_steps=1000, max_minutes=1e-9, checkpoint_every=0)
    result = train_loop(_objective(0), SyntheticStream(4), config, tmp_path, progress=False)
    assert result.stop_reason == "max_minutes"
    assert result.step < 1000


def test_max_minutes_budget_counts_across_resumes(tmp_path):
    config = _config(max_steps=3, checkpoint_every=3)
    train_loop(_objective(0), SyntheticStream(4), config, tmp_path, progress=False)
    saved = load_state(tmp_path / "checkpoints" / "step-3", "trainer")["elapsed_s"]
    budget = saved / 60 * 0.999  # already spent by the first session
    again = train_loop(_objective(0), SyntheticStream(4), _config(max_steps=6, max_minutes=budget), tmp_path,
                       resume=True, progress=False)
    assert again.stop_reason == "max_minutes" and again.step == 3


def test_a_resume_with_its_time_budget_spent_writes_no_duplicate_lines(tmp_path):
    def eval_fn(objective):
        return {"loss": float(objective(next(iter(SyntheticStream(4, seed=7)))).loss)}

    config = _config(max_steps=3, checkpoint_every=3, eval_every=0)
    train_loop(_objective(0), SyntheticStream(4), config, tmp_path, eval_fn=eval_fn, progress=False)
    before = (tmp_path / "metrics.jsonl").read_text()
    for _ in range(2):  # the budget was spent by the first session: no step, and no second validation of step 3
        again = train_loop(_objective(0), SyntheticStream(4), _config(max_steps=6, max_minutes=1e-9), tmp_path,
                           eval_fn=eval_fn, resume=True, progress=False)
        assert again.stop_reason == "max_minutes" and again.step == 3
    assert (tmp_path / "metrics.jsonl").read_text() == before


def test_eval_and_metrics_lines(tmp_path):
    calls = []

    def eval_fn(objective):
        assert not objective.training and not torch.is_grad_enabled()
        batch = next(iter(SyntheticStream(4, seed=7)))
        out = objective(batch)
        calls.append(1)
        return {"loss": float(out.loss), "acc": float(out.metrics["acc"])}

    config = _config(max_steps=6, log_every=2, eval_every=3, checkpoint_every=0)
    result = train_loop(_objective(0), SyntheticStream(4), config, tmp_path, eval_fn=eval_fn, progress=False)
    lines = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == [0, 2, 3, 4, 6]
    assert set(lines[0]) == {"step", "val_loss", "val_acc"}  # the starting point
    assert {"step", "loss", "lr", "tokens_per_s", "acc", "grad_norm"} <= set(lines[1])
    assert "val_loss" in lines[2] and "val_acc" in lines[4]
    assert len(calls) == 3 and [e["step"] for e in result.evaluations] == [0, 3, 6]
    assert result.last_checkpoint is not None  # the end always checkpoints

    calls.clear()
    config = _config(max_steps=6, log_every=2, eval_every=3, checkpoint_every=0, eval_at_start=False)
    result = train_loop(_objective(0), SyntheticStream(4), config, tmp_path / "no-start", eval_fn=eval_fn,
                        progress=False)
    assert len(calls) == 2 and [e["step"] for e in result.evaluations] == [3, 6]


def test_metric_averager_weights_means_by_their_counts():
    from leanbert.train.metrics import MetricAverager

    avg = MetricAverager(torch.device("cpu"), weights={"rtd_precision": "rtd_predicted"})
    avg.add({"mlm_accuracy": torch.tensor(1.0), "mlm_count": torch.tensor(1.0), "loss": torch.tensor(2.0)})
    avg.add({"mlm_accuracy": torch.tensor(0.0), "mlm_count": torch.tensor(3.0), "loss": torch.tensor(4.0),
             "rtd_precision": torch.tensor(0.5), "rtd_predicted": torch.tensor(0.0)})
    out = avg.pop()
    assert out == {"mlm_accuracy": 0.25, "mlm_count": 4.0, "loss": 3.0, "rtd_precision": 0.0,
                   "rtd_predicted": 0.0}
    assert avg.empty and avg.pop() == {}


def test_evaluation_does_not_change_the_training_run(tmp_path):
    def eval_fn(objective):
        torch.rand(100)  # an evaluation that draws random numbers (like ELECTRA's sampling)
        return {"x": 1.0}

    plain = train_loop(_objective(0), SyntheticStream(4), _config(max_steps=4, checkpoint_every=0), tmp_path / "a",
                       progress=False)
    evaluated = train_loop(_objective(0), SyntheticStream(4), _config(max_steps=4, checkpoint_every=0, eval_every=1),
                           tmp_path / "b", eval_fn=eval_fn, progress=False)
    assert plain.step == evaluated.step == 4
    assert _losses(tmp_path / "a") == _losses(tmp_path / "b")  # dropout 0.1: same masks with and without evals


def test_tensorboard_is_optional(tmp_path, capsys):
    import importlib.util

    config = _config(max_steps=2, checkpoint_every=0, tensorboard=True)
    train_loop(_objective(0), SyntheticStream(4), config, tmp_path, progress=False)
    assert len(_losses(tmp_path)) == 2  # metrics.jsonl is written either way
    if importlib.util.find_spec("tensorboard") is None:
        assert "tensorboard package is not installed" in capsys.readouterr().err
    else:
        assert any((tmp_path / "tensorboard").iterdir())


def test_token_count_survives_a_resume_between_log_lines(tmp_path):
    config = _config(log_every=5, checkpoint_every=3)
    full = train_loop(_objective(0), SyntheticStream(4), config, tmp_path / "a", progress=False)
    with pytest.raises(KeyboardInterrupt):
        train_loop(_objective(0), SyntheticStream(4, fail_after=4), config, tmp_path / "b", progress=False)
    resumed = train_loop(_objective(0), SyntheticStream(4), config, tmp_path / "b", resume=True, progress=False)
    assert resumed.tokens == full.tokens > 0
    assert _losses(tmp_path / "b")[8] == _losses(tmp_path / "a")[8]


def test_bf16_autocast_stays_close_to_fp32_and_is_refused_without_native_bf16(tmp_path, monkeypatch):
    """A few steps of the same tiny run in bf16 autocast (fp32 master weights) follow the fp32 losses; on a CPU
    without AVX512-BF16/AMX the key is refused with one line instead of running emulated bf16."""
    import leanbert.train.cpu_features as cpu_features

    monkeypatch.setattr(cpu_features, "cpu_flags", lambda *a: frozenset({"avx512f", "avx512_bf16"}))
    losses = {}
    for precision in ("fp32", "bf16"):
        objective = _objective(0, dropout=0.0)
        train_loop(objective, SyntheticStream(4), _config(precision=precision, checkpoint_every=0), tmp_path / precision,
                   progress=False)
        losses[precision] = _losses(tmp_path / precision)
        assert all(p.dtype == torch.float32 for p in objective.parameters())  # master weights stay fp32
    assert sorted(losses["bf16"]) == sorted(losses["fp32"]) == list(range(1, 9))
    for step, fp32 in losses["fp32"].items():
        assert losses["bf16"][step] == pytest.approx(fp32, rel=0.03, abs=0.02), step
    assert losses["bf16"] != losses["fp32"]  # autocast really ran: bf16 rounding moves the losses

    monkeypatch.setattr(cpu_features, "cpu_flags", lambda *a: frozenset({"avx2"}))
    with pytest.raises(UserError, match=r"train.precision=bf16: this CPU has no native bf16"):
        train_loop(_objective(0), SyntheticStream(4), _config(precision="bf16"), tmp_path / "refused", progress=False)
    assert not (tmp_path / "refused" / "metrics.jsonl").exists()
