"""A run SIGKILLed while writing a checkpoint resumes from the previous one, with the same losses."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from leanbert.train import checkpoint as ckpt
from leanbert.train.config import TrainConfig
from leanbert.train.loop import train_loop
from train.kill_worker import CONFIG
from train.train_synthetic import ClassifyObjective, SyntheticStream, tiny_model_config

WORKER = Path(__file__).with_name("kill_worker.py")


def _losses(run_dir: Path) -> dict[int, float]:
    return {r["step"]: r["loss"] for r in map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines())}


def test_sigkill_during_checkpoint_write_resumes_from_previous(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    proc = subprocess.Popen([sys.executable, str(WORKER), str(run)], env={**os.environ, "OMP_NUM_THREADS": "1"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 240
        while not (run / "writing").exists():
            assert proc.poll() is None, proc.stderr.read()[-3000:]
            assert time.monotonic() < deadline, "the worker never reached the step-4 checkpoint"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    leftovers = [p.name for p in (run / "checkpoints").iterdir()]
    assert "step-2" in leftovers and "step-4" not in leftovers
    assert any(name.startswith(".step-4.tmp-") for name in leftovers)  # the half-written one
    assert ckpt.latest_checkpoint(run).step == 2

    torch.manual_seed(5)
    resumed = ClassifyObjective(tiny_model_config(dropout=0.1))
    result = train_loop(resumed, SyntheticStream(4), TrainConfig(**CONFIG), run, resume=True, progress=False)
    assert result.step == 6
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step-2", "step-4", "step-6"]

    torch.manual_seed(0)
    reference = ClassifyObjective(tiny_model_config(dropout=0.1))
    train_loop(reference, SyntheticStream(4), TrainConfig(**CONFIG), tmp_path / "ref", progress=False)
    assert _losses(run) == _losses(tmp_path / "ref")
