"""Run by test_train_checkpoint_kill.py: trains the synthetic objective and, while writing the step-4
checkpoint, announces itself (OUT/writing) and hangs so the test can SIGKILL it mid-write."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests folder, for train.train_synthetic

from leanbert.train import checkpoint  # noqa: E402
from leanbert.train.config import TrainConfig  # noqa: E402
from leanbert.train.loop import train_loop  # noqa: E402
from train.train_synthetic import ClassifyObjective, SyntheticStream, tiny_model_config  # noqa: E402

CONFIG = dict(batch_size=4, max_steps=6, lr=3e-3, warmup_steps=1, log_every=1, checkpoint_every=2,
              keep_checkpoints=3, eval_every=0, device="cpu")


def main(out: str) -> None:
    torch.set_num_threads(1)
    real_save_state = checkpoint.save_state

    def slow_save_state(directory, name, tree):
        files = real_save_state(directory, name, tree)
        if ".step-4." in str(directory) and name == "optimizer":  # half-way through the step-4 checkpoint
            (Path(out) / "writing").write_text(str(directory))
            time.sleep(120)
        return files

    checkpoint.save_state = slow_save_state
    torch.manual_seed(0)
    objective = ClassifyObjective(tiny_model_config(dropout=0.1))
    train_loop(objective, SyntheticStream(4), TrainConfig(**CONFIG), out, progress=False)


if __name__ == "__main__":
    main(sys.argv[1])
