"""``finetune``: MODEL + task -> OUT_DIR with metrics.json, predictions.tsv and the fine-tuned model.

A task job (``task_job.TaskJob``, which also writes OUT_DIR; its docstring shows the layout) with the task
type's objective (``TaskObjective``): one run per seed on the shared training loop, the dev set scored once
per epoch (the learning curve in each seed's ``metrics.jsonl``) and at the end.
"""

from __future__ import annotations

import shutil
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch

from leanbert.atomic import make_temp_dir
from leanbert.finetune.config import finetune_config
from leanbert.finetune.objective import TaskObjective
from leanbert.finetune.source import load_source, resolve_model_dir, task_config, task_model_from
from leanbert.finetune.task_job import (
    SeedResult,
    TaskJob,
    TaskJobResult,
    check_out_dir,
    encode_task,
    task_files,
)
from leanbert.jobs import job_env, main_process_only
from leanbert.model.model import LeanBertModel
from leanbert.run_lock import lock_output
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
    return task_model_from(source, task_type.head, head_options, seed, dropout)


def finetune(model: str | Path, task: TaskData, out_dir: str | Path, overrides: list[str] | None = None,
             from_scratch: bool = False, overwrite: bool = False, progress: bool = True, log=print,
             env: DistEnv | None = None) -> TaskJobResult:
    """Fine-tune MODEL (leanbert dir, pretraining run, or local HF dir) on ``task`` (from ``load_task_data``)
    and write OUT_DIR. ``from_scratch`` keeps MODEL's architecture and tokenizer but starts from random
    weights: the no-pretraining baseline. Under torchrun (or with ``env``) the ranks share each global batch
    and the dev scoring; rank 0 alone logs and writes OUT_DIR."""
    out_dir = Path(out_dir)
    spec = task.spec
    task_type = get_task_type(task.kind)
    config = finetune_config(spec.recipe, overrides, task_type.data_config)
    with job_env(config.train.device, env) as env, (lock_output(out_dir) if env.is_main else nullcontext()):
        log, progress = main_process_only(env, log, progress)
        parent = out_dir.parent if out_dir.parent.exists() else None
        work = make_temp_dir(parent, out_dir.name, "work")  # pid in the name: a later run cleans it if killed
        try:
            source_dir = resolve_model_dir(model, work, log=log)
            source = load_source(source_dir)
            check_out_dir(out_dir, overwrite, inputs=[model, *task_files(task)])  # inputs' own errors first
            data = encode_task(task, source_dir, config.data, source.config, progress)
            steps, _ = config.train.steps(len(data.train))
            log(f"fine-tuning {source_dir} on {spec.name}: {len(data.train)} train / "
                + ", ".join(f"{len(v)} {k}" for k, v in data.dev.items())
                + f" examples, {steps} steps x {len(config.train.seeds)} seed(s)"
                + (f" on {env.world_size} processes" if env.distributed else "")
                + (" (from scratch)" if from_scratch else ""))

            def run_seed(job: TaskJob, seed: int, run_dir: Path) -> tuple[SeedResult, LeanBertModel]:
                model = starting_model(source, task_type, task_type.head_options(spec), seed,
                                       config.train.dropout, from_scratch)
                return job.train(TaskObjective(task_type, model), model, seed, run_dir)

            job = TaskJob(data, config, env, progress, log)
            return job.run(out_dir, run_seed, tokenizer_dir=source_dir, scratch=work,
                           describe={"model": str(model), "from_scratch": from_scratch})
        finally:
            shutil.rmtree(work, ignore_errors=True)
