"""``finetune``: MODEL + task -> OUT_DIR with metrics.json, predictions.tsv and the fine-tuned model.

A task job (``task_job.TaskJob``, which fills OUT_DIR; its docstring shows the layout), published by the job
runner (``leanbert.jobs``), with the task type's objective (``TaskObjective``): one run per seed on the shared
training loop, the dev set scored once per epoch (the learning curve in each seed's ``metrics.jsonl``) and at
the end.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from leanbert.finetune.config import FinetuneConfig, finetune_config
from leanbert.finetune.objective import TaskObjective
from leanbert.finetune.source import load_source, resolve_model_dir, task_config
from leanbert.finetune.task_job import (
    SeedResult,
    TaskJob,
    TaskJobResult,
    encode_task,
    task_files,
)
from leanbert.jobs import Job, JobSpec, run_job
from leanbert.model.model import LeanBertModel, with_heads
from leanbert.tasks import TaskType, get_task_type
from leanbert.tasks.glue import TaskData
from leanbert.train.distributed import DistEnv


def starting_model(source: LeanBertModel, task_type: TaskType, head_options: dict[str, Any], seed: int,
                   dropout: float | None, from_scratch: bool) -> LeanBertModel:
    """The model one seed starts from: ``source``'s encoder with a new ``task_type.head``, or
    (``from_scratch``) the same architecture with random weights drawn from ``seed``."""
    if from_scratch:
        torch.manual_seed(seed)
        return LeanBertModel(task_config(source.config, task_type.head, head_options, dropout))
    return with_heads(source, [task_type.head], seed, dropout, **head_options)


def finetune(model: str | Path, task: TaskData, out_dir: str | Path, overrides: list[str] | None = None,
             from_scratch: bool = False, overwrite: bool = False, progress: bool = True, log=print,
             env: DistEnv | None = None) -> TaskJobResult:
    """Fine-tune MODEL (leanbert dir, pretraining run, or local HF dir) on ``task`` (from ``load_task_data``)
    and write OUT_DIR (published by the job runner). ``from_scratch`` keeps MODEL's architecture and tokenizer
    but starts from random weights: the no-pretraining baseline. Under torchrun (or with ``env``) the ranks
    share each global batch and the dev scoring; rank 0 alone logs and writes OUT_DIR."""
    task_type = get_task_type(task.kind)
    config = finetune_config(task.spec.recipe, overrides, task_type.data_config)
    spec = JobSpec("finetune", Path(out_dir), "published", inputs=[model, *task_files(task)],
                   device=config.train.device, overwrite=overwrite,
                   open_inputs=lambda job: resolve_model_dir(model, job.scratch, log=job.log))
    return run_job(spec, lambda job: _finetune_body(job, model, task, config, from_scratch), env=env, log=log,
                   progress=progress)


def _finetune_body(job: Job, model: str | Path, task: TaskData, config: FinetuneConfig,
                   from_scratch: bool) -> TaskJobResult:
    log, progress, env, spec = job.log, job.progress, job.env, task.spec
    task_type = get_task_type(task.kind)
    source_dir = job.inputs  # MODEL as a leanbert model directory (open_inputs)
    source = load_source(source_dir)
    data = encode_task(task, source_dir, config.data, source.config, progress)
    steps, _ = config.train.steps(len(data.train))
    log(f"fine-tuning {source_dir} on {spec.name}: {len(data.train)} train / "
        + ", ".join(f"{len(v)} {k}" for k, v in data.dev.items())
        + f" examples, {steps} steps x {len(config.train.seeds)} seed(s)"
        + (f" on {env.world_size} processes" if env.distributed else "")
        + (" (from scratch)" if from_scratch else ""))

    def run_seed(task_job: TaskJob, seed: int, run_dir: Path) -> tuple[SeedResult, LeanBertModel]:
        model = starting_model(source, task_type, task_type.head_options(spec), seed, config.train.dropout,
                               from_scratch)
        return task_job.train(TaskObjective(task_type, model), model, seed, run_dir)

    task_job = TaskJob(data, config, env, progress, log)
    return task_job.run(job.publish, run_seed, tokenizer_dir=source_dir,
                        describe={"model": str(model), "from_scratch": from_scratch})
