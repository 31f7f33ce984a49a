"""Run by ``torchrun --nproc_per_node 2`` in test_train_ddp.py: trains the synthetic objective under DDP (gloo)
and writes rank 0's final parameters to OUT/params.safetensors."""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests folder, for train.train_synthetic

from leanbert.train.config import TrainConfig  # noqa: E402
from leanbert.train.distributed import init_distributed, shutdown  # noqa: E402
from leanbert.train.loop import train_loop  # noqa: E402
from train.train_synthetic import ClassifyObjective, SyntheticStream, tiny_model_config  # noqa: E402


def main(out: str, optimizer: str) -> None:
    torch.set_num_threads(1)
    env = init_distributed("cpu")
    config = TrainConfig(batch_size=8, grad_accum=2, max_steps=4, lr=1e-2, warmup_steps=1, optimizer=optimizer,
                         log_every=1, checkpoint_every=2, eval_every=0, device="cpu")
    torch.manual_seed(0)  # same init on every rank (DDP also broadcasts rank 0's weights)
    objective = ClassifyObjective(tiny_model_config(dropout=0.0))
    stream = SyntheticStream(config.micro_batch_size(env.world_size), rank=env.rank, world_size=env.world_size)
    train_loop(objective, stream, config, out, env=env, progress=False)
    if env.is_main:
        save_file({k: v.contiguous() for k, v in objective.state_dict().items()}, str(Path(out) / "params.safetensors"))
    shutdown(env)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
