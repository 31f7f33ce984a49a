"""Buffers an objective updates in after_step stay identical across ranks under DDP (2 gloo processes), and
equal what one process computes from the same global batches; a rank-local update is caught at the checkpoint.

DDP runs without broadcast_buffers (train/distributed.py wrap_ddp says why): the objective combines the ranks'
contributions itself, here with all_reduce_sum.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

from leanbert.train.config import TrainConfig
from leanbert.train.loop import train_loop
from train.hook_objectives import TokenFrequencyObjective
from train.train_synthetic import SyntheticStream

WORKER = Path(__file__).with_name("ddp_buffer_worker.py")


def _torchrun(out: Path, mode: str) -> list[torch.Tensor]:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env["OMP_NUM_THREADS"] = "1"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(WORKER), str(out), mode]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return [load_file(str(out / f"frequency-rank{r}.safetensors"))["frequency"] for r in range(2)]


def test_after_step_buffers_agree_across_ranks_and_match_one_process(tmp_path):
    rank0, rank1 = _torchrun(tmp_path / "combined", "combined")
    assert torch.equal(rank0, rank1)
    assert not (tmp_path / "combined" / "refused-rank0.txt").exists()

    # one process: the same 8 examples per step as 4 micro-batches of 2
    config = TrainConfig(batch_size=8, grad_accum=4, max_steps=4, lr=1e-2, warmup_steps=1, log_every=1,
                         checkpoint_every=0, eval_every=0, device="cpu")
    torch.manual_seed(0)
    single = TokenFrequencyObjective()
    train_loop(single, SyntheticStream(config.micro_batch_size(1)), config, tmp_path / "single", progress=False)
    assert single.frequency.sum() > 0.5
    assert torch.equal(rank0, single.frequency)  # integer counts: every summation order gives the same floats


def test_rank_local_buffer_updates_are_caught_before_a_checkpoint(tmp_path):
    rank0, rank1 = _torchrun(tmp_path / "local", "local")
    assert not torch.equal(rank0, rank1)  # each rank only saw its own batches
    for rank in range(2):
        message = (tmp_path / "local" / f"refused-rank{rank}.txt").read_text()
        assert "['frequency'] differ between rank" in message and "all_reduce_sum" in message
    assert not (tmp_path / "local" / "checkpoints" / "step-2").exists()
