"""A task job: train any objective on an encoded task of any task type (``leanbert.tasks``), one run per seed,
score the dev set, write OUT_DIR. ``finetune`` uses it with the task type's objective; distillation's task stage
with its own. Reading, encoding, scoring and the predictions file come from the task type.

OUT_DIR::

    metrics.json      task, metric names, the dev metrics of the final model (one seed: ``accuracy`` ...;
                      several: ``accuracy_mean``, ``accuracy_std`` and ``per_seed``), the resolved config, and
                      what the caller adds (``describe``: the source model, from_scratch, a teacher's metrics)
    predictions.*     the task type's predictions file (sequence: predictions.tsv with index, prediction,
                      gold; QA: predictions.json), from the saved model's seed.
    model/            the trained model (leanbert model directory with the tokenizer; ``leanbert export``
                      writes *ForSequenceClassification). With several seeds: the best seed on the main
                      metric.
    runs/seed-N/      the loop's metrics.jsonl (training loss, lr, dev metrics as val_*)

Everything is written into a temporary sibling of OUT_DIR that is renamed into place at the end (the job
runner's ``published`` layout, ``leanbert.jobs``)::

    def body(job: Job) -> TaskJobResult:
        data = encode_task(task, tokenizer_dir, config.data, model.config)
        task_job = TaskJob(data, config, job.env)
        def run_seed(task_job, seed, run_dir):
            model = ...                               # the network that is scored and saved
            return task_job.train(MyObjective(model, ...), model, seed, run_dir)
        return task_job.run(job.publish, run_seed, tokenizer_dir=tokenizer_dir, describe={"model": "..."})
    result = run_job(JobSpec("finetune", out_dir, "published", inputs=[...]), body)
"""

from __future__ import annotations

import json
import math
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from leanbert.atomic import write_json_atomically
from leanbert.finetune.config import FinetuneConfig, to_train_config
from leanbert.finetune.layer_decay import layer_lr_scales
from leanbert.jobs import Log, main_process_only, seed_per_rank, train_objective
from leanbert.model.config import ModelConfig
from leanbert.model.model import LeanBertModel
from leanbert.model_dir import check_tokenizer_files, save_model
from leanbert.tasks import EncodedTask, TaskType, get_task_type
from leanbert.tasks.encode import Collator, Features, iterate_batches
from leanbert.tasks.glue import TaskData, TaskSpec
from leanbert.tasks.metrics import aggregate_seeds
from leanbert.tasks.recipe import FinetuneDataConfig
from leanbert.train.distributed import DistEnv
from leanbert.train.optim import parameter_groups


@dataclass
class SeedResult:
    seed: int
    metrics: dict[str, float]  # final dev metrics
    curve: list[dict[str, Any]]  # the loop's evaluations: {"step": s, "val_<metric>": v}
    predictions: dict[str, Any]  # split -> the task type's predictions ((N,) class indices or scores; QA: {id: text})
    seconds: float


@dataclass
class TaskJobResult:
    out_dir: Path
    metrics: dict[str, Any]  # what metrics.json holds
    seeds: list[SeedResult] = field(default_factory=list)
    is_main: bool = True  # False on the other ranks of a torchrun job (rank 0 wrote OUT_DIR and reports)


def task_files(task: TaskData) -> list[str]:
    """The files a task's examples were read from (the inputs OUT_DIR must stay clear of): ``task.files``, else
    the ``path`` of each split's first example."""
    if task.files:
        return sorted(set(task.files))
    paths = {getattr(examples[0], "path", "") for examples in (task.train, *task.dev.values()) if examples}
    return sorted(paths - {""})


def encode_task(task: TaskData, tokenizer_dir: Path, data: FinetuneDataConfig, model: ModelConfig,
                progress: bool = False) -> EncodedTask:
    """Tokenize ``task`` with the tokenizer in ``tokenizer_dir`` for a model of config ``model``, as its task
    type does it (refusing a sequence length beyond the model's positions and a tokenizer whose ids exceed its
    vocabulary). The tokenizer files the output will copy are checked here too, before any training."""
    check_tokenizer_files(tokenizer_dir)
    return get_task_type(task.kind).encode(task, tokenizer_dir, data, model, progress)


class EpochBatches:
    """The training set as an iterable the loop re-iterates each epoch, in a new seeded order every time; under
    torchrun each rank takes its share of every global batch (``iterate_batches``)."""

    def __init__(self, features: Sequence[Features], batch_size: int, collator: Collator, seed: int,
                 rank: int = 0, world_size: int = 1):
        self.features, self.batch_size, self.collator, self.seed = features, batch_size, collator, seed
        self.rank, self.world_size = rank, world_size
        self.epoch = 0

    def __iter__(self) -> Iterator:
        order_seed = self.seed * 100_003 + self.epoch
        self.epoch += 1
        return iterate_batches(self.features, self.batch_size, self.collator, shuffle=True, seed=order_seed,
                               rank=self.rank, world_size=self.world_size)


def _module_prefix(objective: nn.Module, model: nn.Module) -> str:
    """``model``'s parameter-name prefix inside ``objective`` (``"model."`` for SequenceClassification)."""
    for name, module in objective.named_modules():
        if module is model:
            return f"{name}." if name else ""
    raise ValueError("the model to score is not a sub-module of the objective")


RunSeed = Callable[["TaskJob", int, Path], tuple[SeedResult, LeanBertModel]]
Publish = Callable[[Callable[[Path], None]], Path]  # jobs.Job.publish


class TaskJob:
    """One task job's encoded data and settings; trains and scores one seed at a time, then writes OUT_DIR."""

    def __init__(self, data: EncodedTask, config: FinetuneConfig, env: DistEnv | None = None,
                 progress: bool = True, log: Log = print):
        self.data, self.config, self.env = data, config, env or DistEnv()
        self.spec = data.spec
        self.task_type: TaskType = get_task_type(data.kind)
        self.log, self.progress = main_process_only(self.env, log, progress)

    def score(self, model: LeanBertModel) -> tuple[dict[str, float], dict[str, Any]]:
        """The task's dev metrics of ``model`` and its predictions (split -> the type's predictions), on every
        rank."""
        return self.task_type.score(model, self.data, self.config.train.eval_batch_size, self.env)

    def train(self, objective: nn.Module, model: LeanBertModel, seed: int, run_dir: Path,
              config: FinetuneConfig | None = None) -> tuple[SeedResult, LeanBertModel]:
        """Train ``objective`` (which holds ``model``, the network scored on dev and saved) for one seed with
        ``config`` (default: the job's; distillation passes one per stage). ``train.layer_decay`` < 1 scales
        ``model``'s learning rates by depth; the objective's other parameters keep the full rate. Returns the
        seed's result and ``model`` on the CPU in eval mode."""
        start = time.perf_counter()
        config = config or self.config
        train_config = to_train_config(config, len(self.data.train), seed)
        scales = None
        if config.train.layer_decay < 1:
            scales = layer_lr_scales(model, config.train.layer_decay, prefix=_module_prefix(objective, model))
        groups = parameter_groups(objective, train_config.weight_decay, scales)
        last: dict[str, Any] = {}

        def eval_fn(_objective: nn.Module) -> dict[str, float]:
            metrics, predictions = self.score(model)
            last["metrics"], last["predictions"] = metrics, predictions
            return metrics

        env = self.env
        seed_per_rank(seed, env)  # dropout masks: one stream per rank
        batches = EpochBatches(self.data.train, train_config.batch_size, self.data.collator, seed, env.rank,
                               env.world_size)
        result = train_objective(objective, batches, train_config, run_dir, env, eval_fn=eval_fn,
                                 param_groups=groups, progress=self.progress)
        shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)  # a finished task job never resumes
        curve = [dict(e) for e in result.evaluations]
        seconds = time.perf_counter() - start
        return SeedResult(seed, last["metrics"], curve, last["predictions"], seconds), model.cpu().eval()

    def run(self, publish: Publish, run_seed: RunSeed, *, tokenizer_dir: Path,
            describe: dict[str, Any] | None = None) -> TaskJobResult:
        """``run_seed(self, seed, run_dir)`` for every ``train.seeds``, then OUT_DIR from the best seed on the
        main metric, through ``publish`` (the job runner's ``Job.publish``: every rank fills a folder, rank 0's
        becomes OUT_DIR with its marker). ``describe`` goes into metrics.json after ``task``. Every rank returns
        the metrics."""
        spec, config, env = self.spec, self.config, self.env
        seeds: list[SeedResult] = []
        metrics: dict[str, Any] = {}

        def fill(tmp: Path) -> None:
            best: SeedResult | None = None
            best_model: LeanBertModel | None = None
            for seed in config.train.seeds:
                result, trained = run_seed(self, seed, tmp / "runs" / f"seed-{seed}")
                seeds.append(result)
                self.log(f"seed {seed}: " + ", ".join(f"{k} {v:.4f}" for k, v in result.metrics.items())
                         + f" ({result.seconds:.0f}s)")
                if best is None or result.metrics[spec.main_metric] > best.metrics[spec.main_metric]:
                    best, best_model = result, trained
            metrics.update(summarize(spec, config, seeds, best.seed, describe or {}))
            if not env.is_main:
                return
            task_meta = {"type": self.task_type.name, **self.task_type.task_meta(self.data)}
            save_model(best_model, tmp / "model", tokenizer_dir=tokenizer_dir, extra={"task": task_meta})
            write_json_atomically(tmp / "metrics.json", metrics)
            self.task_type.write_predictions(tmp, self.data, best.predictions)

        out_dir = publish(fill)
        return TaskJobResult(out_dir, json.loads(json.dumps(metrics)), seeds, env.is_main)


def summarize(spec: TaskSpec, config: FinetuneConfig, seeds: list[SeedResult], model_seed: int,
              describe: dict[str, Any]) -> dict[str, Any]:
    """The metrics.json object."""
    runs = [s.metrics for s in seeds]
    out: dict[str, Any] = {"task": spec.name, **describe, "main_metric": spec.main_metric,
                           "metric_names": spec.metric_names}
    if len(seeds) == 1:
        out.update(runs[0])
    else:
        out.update(aggregate_seeds(runs))
        out["per_seed"] = {str(s.seed): s.metrics for s in seeds}
    out["seeds"] = [s.seed for s in seeds]
    out["model_seed"] = model_seed
    out["num_dev"] = {split: int(len(p)) for split, p in seeds[0].predictions.items()}
    out["seconds"] = round(sum(s.seconds for s in seeds), 1)
    out["config"] = config.to_dict()
    for value in out.values():
        if isinstance(value, float) and not math.isfinite(value):
            raise RuntimeError("a metric is not finite")
    return out

