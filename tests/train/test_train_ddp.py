"""Two CPU processes (torchrun, gloo) give the same parameters as one process with the same global batch.

The synthetic objective's loss is a per-example mean and every micro-batch holds the same number of examples,
so the mean over micro-steps and ranks of the micro-batch means is exactly the global-batch mean; only the
floating-point summation order differs. (A token-normalised MLM loss would differ slightly: micro-batches
carry different numbers of masked tokens.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from leanbert.train.config import TrainConfig
from leanbert.train.loop import train_loop
from train.train_synthetic import ClassifyObjective, SyntheticStream, tiny_model_config

WORKER = Path(__file__).with_name("ddp_worker.py")


def test_two_process_ddp_equals_single_process(tmp_path):
    optimizer = "lamb"  # per-tensor trust ratios: any gradient mismatch between ranks would show
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env["OMP_NUM_THREADS"] = "1"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(WORKER), str(tmp_path / "ddp"), optimizer]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ddp = load_file(str(tmp_path / "ddp" / "params.safetensors"))

    # one process: the same 8 examples per step as 4 micro-batches of 2
    config = TrainConfig(batch_size=8, grad_accum=4, max_steps=4, lr=1e-2, warmup_steps=1, optimizer=optimizer,
                         log_every=1, checkpoint_every=0, eval_every=0, device="cpu")
    torch.manual_seed(0)
    single = ClassifyObjective(tiny_model_config(dropout=0.0))
    train_loop(single, SyntheticStream(config.micro_batch_size(1)), config, tmp_path / "single", progress=False)

    for name, value in single.state_dict().items():
        torch.testing.assert_close(ddp[name], value, rtol=1e-5, atol=1e-6, msg=name)
    torch.manual_seed(0)
    start = ClassifyObjective(tiny_model_config(dropout=0.0)).state_dict()
    moved = sum(not torch.allclose(start[k], v) for k, v in single.state_dict().items())
    assert moved > 10  # training really changed the weights

    # losses agree too, and the checkpoint holds both ranks' RNG and data positions
    def losses(run):
        return [json.loads(x)["loss"] for x in (tmp_path / run / "metrics.jsonl").read_text().splitlines()]

    assert losses("ddp") == pytest.approx(losses("single"), rel=1e-5)
    trainer = json.loads((tmp_path / "ddp" / "checkpoints" / "step-4" / "trainer.json").read_text())
    assert trainer["world_size"] == 2 and len(trainer["ranks"]) == 2
