"""Run by ``torchrun --nproc_per_node 2`` in test_train_ddp_buffers.py: trains TokenFrequencyObjective under
DDP (gloo) and writes each rank's after_step buffer to OUT/frequency-rank{R}.safetensors. With ``local``, the
objective skips combining the ranks' counts, and the loop's buffer check must stop the run at its checkpoint:
each rank then writes OUT/refused-rank{R}.txt with the message."""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests folder, for train.*

from leanbert.train.config import TrainConfig  # noqa: E402
from leanbert.train.distributed import init_distributed, shutdown  # noqa: E402
from leanbert.train.loop import train_loop  # noqa: E402
from train.hook_objectives import TokenFrequencyObjective  # noqa: E402
from train.train_synthetic import SyntheticStream  # noqa: E402


def main(out: str, mode: str) -> None:
    torch.set_num_threads(1)
    env = init_distributed("cpu")
    config = TrainConfig(batch_size=8, grad_accum=2, max_steps=4, lr=1e-2, warmup_steps=1, log_every=1,
                         checkpoint_every=2, eval_every=0, device="cpu")
    torch.manual_seed(0)
    objective = TokenFrequencyObjective(combine=mode == "combined")
    stream = SyntheticStream(config.micro_batch_size(env.world_size), rank=env.rank, world_size=env.world_size)
    try:
        train_loop(objective, stream, config, out, env=env, progress=False)
    except RuntimeError as err:
        (Path(out) / f"refused-rank{env.rank}.txt").write_text(str(err))
    save_file({"frequency": objective.frequency.contiguous()}, str(Path(out) / f"frequency-rank{env.rank}.safetensors"))
    shutdown(env)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
