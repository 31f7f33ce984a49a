"""The pieces every training job (pretrain, finetune, distill) is made of, around the shared loop (the runner,
``runner.run_job``, puts them together).

Outside the runner they serve the parts of a job that train several times inside one run (a task job's
seeds: ``seed_per_rank``, ``train_objective``).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from leanbert.atomic import write_dir_atomically
from leanbert.batch import Batch
from leanbert.model import padding
from leanbert.train.config import TrainConfig
from leanbert.train.distributed import DistEnv, barrier, init_distributed, shutdown
from leanbert.train.loop import EvalFn, LoopResult, train_loop

Log = Callable[..., Any]


@contextmanager
def job_env(device: str = "auto", env: DistEnv | None = None) -> Iterator[DistEnv]:
    """The job's DistEnv: ``env`` when the caller already has one (it stays the caller's to tear down), else
    a new one from torchrun's variables (single process without them), torn down when the job ends."""
    if env is not None:
        yield env
        return
    own = init_distributed(device)
    try:
        yield own
    finally:
        shutdown(own)


def main_process_only(env: DistEnv, log: Log, progress: bool) -> tuple[Log, bool]:
    """``(log, progress)`` on rank 0; a silent log and no progress bars on the other ranks."""
    if env.is_main:
        return log, progress
    return (lambda *_args, **_kwargs: None), False


def seed_everything(seed: int) -> None:
    """Python's, NumPy's and torch's global generators (the same ``seed`` on every rank: same initial
    weights). Any seed the configs accept (``leanbert.config.check_seed``) works: NumPy's global generator
    takes 32 bits only, so a larger seed is folded through a SeedSequence (smaller ones are used as they
    are, so runs stay bit-identical to before)."""
    random.seed(seed)
    np.random.seed(seed if seed < 2**32 else int(np.random.SeedSequence(seed).generate_state(1)[0]))
    torch.manual_seed(seed)


def seed_per_rank(seed: int, env: DistEnv) -> None:
    """torch's generator with one stream per rank (dropout masks must differ between ranks' examples)."""
    torch.manual_seed(seed + 100_003 * env.rank)


def train_objective(objective: nn.Module, batches: Iterable[Batch], config: TrainConfig, run_dir: Path,
                    env: DistEnv, *, eval_fn: EvalFn | None = None,
                    param_groups: list[dict[str, Any]] | None = None, resume: bool = False,
                    progress: bool = True, on_ready: Callable[[], None] | None = None) -> LoopResult:
    """Train ``objective`` on the shared loop. ``batches`` holds this rank's share of every global batch;
    a global ``config.batch_size`` that does not split evenly over the ranks is refused before any step.
    ``config.unpad`` false turns the encoders' unpadding off (it stays off for scoring afterwards).
    ``on_ready``: see ``train_loop`` (write the run's own files there, after a resume is known valid)."""
    config.micro_batch_size(env.world_size)
    if not config.unpad:
        padding.set_unpadding(objective, False)
    return train_loop(objective, batches, config, run_dir, eval_fn=eval_fn, env=env, resume=resume,
                      param_groups=param_groups, progress=progress, on_ready=on_ready)


def write_on_main(out_dir: Path, fill: Callable[[Path], None], env: DistEnv, scratch: Path) -> None:
    """Run ``fill(directory)`` on every rank (it may train, which needs all ranks): on rank 0 into a temporary
    sibling of ``out_dir`` renamed into place when complete, on the others into ``scratch`` (which the caller
    removes). No rank returns before ``out_dir`` is complete. ``fill`` writes files on rank 0 only."""
    if env.is_main:
        write_dir_atomically(out_dir, fill)
    else:
        fill(scratch)
    barrier(env)
