"""torch.distributed set-up for the same command on a CPU, one GPU, or many GPUs/nodes under ``torchrun``.

As in nanoGPT: a process is part of a distributed run when ``torchrun`` set ``RANK`` (with ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``); otherwise it runs alone. The backend is NCCL on CUDA and
gloo on CPU. Rank 0 alone logs and writes files.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from leanbert.errors import UserError


@dataclass
class DistEnv:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    initialized_here: bool = False  # we called init_process_group, so we tear it down

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def select_device(preference: str = "auto", local_rank: int = 0) -> torch.device:
    """auto = CUDA (this process's local GPU) when available, else CPU."""
    if preference == "cpu" or (preference == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise UserError("train.device=cuda but no CUDA GPU is visible to PyTorch; use train.device=auto or cpu")
    index = local_rank % torch.cuda.device_count()
    torch.cuda.set_device(index)
    return torch.device("cuda", index)


def init_distributed(preference: str = "auto") -> DistEnv:
    """Join the process group when launched by torchrun (RANK set), else a single-process DistEnv."""
    if int(os.environ.get("RANK", -1)) == -1:
        return DistEnv(device=select_device(preference))
    rank = int(os.environ["RANK"])
    world_size = int(os.environ.get("WORLD_SIZE", 1))
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    device = select_device(preference, local_rank)
    initialized_here = False
    if world_size > 1 and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        kwargs: dict[str, Any] = {"device_id": device} if device.type == "cuda" else {}
        dist.init_process_group(backend=backend, rank=rank, world_size=world_size, **kwargs)
        initialized_here = True
    return DistEnv(rank=rank, world_size=world_size, local_rank=local_rank, device=device,
                   initialized_here=initialized_here)


def shutdown(env: DistEnv) -> None:
    if env.initialized_here and dist.is_initialized():
        dist.destroy_process_group()


def wrap_ddp(module: nn.Module, env: DistEnv) -> nn.Module:
    """DDP over ``module`` when distributed, else ``module`` itself.

    find_unused_parameters: some heads/poolers get no gradient from a given objective (BERT's pooler under
    plain MLM), which plain DDP treats as an error.

    broadcast_buffers=False. Buffers an objective updates in ``after_step`` (TNF's note dictionary, an EMA) are
    kept identical by the objective itself: it combines every rank's contribution (``all_reduce_sum`` for
    dense updates, ``gather_rows`` for sparse ones) and every rank then applies the same update. DDP's
    default instead copies rank 0's buffers over the others before every forward, which would throw away
    what the other ranks saw (TNF would only learn notes from rank 0's batches) and send every buffer, a
    whole note dictionary included, on every micro-step. The encoder's own buffers are constants. The loop
    checks that buffers agree before each checkpoint (``check_buffers_agree``), since a checkpoint holds rank
    0's copy only.
    """
    if not env.distributed:
        return module
    device_ids = [env.device.index] if env.device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=device_ids, find_unused_parameters=True,
                                   broadcast_buffers=False)


def all_reduce_mean(tensor: torch.Tensor, env: DistEnv) -> torch.Tensor:
    """Mean over ranks (in place on a copy); identity when alone."""
    if not env.distributed:
        return tensor
    out = tensor.clone()
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out / env.world_size


def all_reduce_sum(tensor: torch.Tensor, env: DistEnv) -> torch.Tensor:
    if not env.distributed:
        return tensor
    out = tensor.clone()
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out


def any_rank(flag: bool, env: DistEnv) -> bool:
    """True when ``flag`` is True on any rank (so all ranks take the same branch)."""
    if not env.distributed:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=env.device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def gather_objects(obj: Any, env: DistEnv) -> list[Any]:
    """Every rank's ``obj`` (small Python objects: RNG states, data positions) in rank order, on every rank.
    These travel between our own processes; nothing is read from files."""
    if not env.distributed:
        return [obj]
    out: list[Any] = [None] * env.world_size
    dist.all_gather_object(out, obj)
    return out


def gather_rows(rows: torch.Tensor, env: DistEnv) -> list[torch.Tensor]:
    """Every rank's ``rows`` (first dimensions may differ, the rest must match), in rank order, on every rank."""
    if not env.distributed:
        return [rows]
    device = env.device if env.device.type == "cuda" else torch.device("cpu")
    rows = rows.to(device)
    counts = [torch.zeros(1, dtype=torch.long, device=device) for _ in range(env.world_size)]
    dist.all_gather(counts, torch.tensor([rows.shape[0]], device=device))
    longest = max(int(c.item()) for c in counts)
    padded = torch.zeros((longest, *rows.shape[1:]), dtype=rows.dtype, device=device)
    padded[: rows.shape[0]] = rows
    parts = [torch.empty_like(padded) for _ in range(env.world_size)]
    dist.all_gather(parts, padded)
    return [part[: int(c.item())] for part, c in zip(parts, counts)]


def check_buffers_agree(module: nn.Module, env: DistEnv) -> None:
    """Raise when a buffer of ``module`` differs between ranks (a sha256 per buffer, compared on every rank).
    A collective: all ranks call it. Nothing to do when alone."""
    if not env.distributed:
        return
    digests = {}
    for name, buffer in module.named_buffers():
        tensor = buffer.detach().cpu().contiguous()
        digests[name] = hashlib.sha256(tensor.reshape(-1).view(torch.uint8).numpy()).hexdigest()
    for rank, theirs in enumerate(gather_objects(digests, env)):
        differ = sorted(name for name in digests if theirs.get(name) != digests[name])
        if differ:
            raise RuntimeError(f"buffer(s) {differ[:3]} differ between rank {env.rank} and rank {rank}: an "
                               f"after_step that updates a buffer must combine every rank's contribution "
                               f"(train.distributed.all_reduce_sum / gather_rows) so all ranks apply the same "
                               f"update")


def barrier(env: DistEnv) -> None:
    if env.distributed:
        dist.barrier()
