"""``finetune``: MODEL + task -> OUT_DIR with metrics.json, predictions.tsv and the fine-tuned model.

One run per seed on the shared training loop (``train.loop.train_loop``) with the ``SequenceClassification``
objective; the dev set is scored once per epoch (the learning curve in each seed's ``metrics.jsonl``) and
at the end. OUT_DIR::

    metrics.json      task, metric names, the dev metrics of the final model (one seed: ``accuracy`` ...;
                      several: ``accuracy_mean``, ``accuracy_std`` and ``per_seed``), the resolved config
    predictions.tsv   index, prediction, gold (label names; numbers for regression); with several dev
                      splits (MNLI) a leading ``split`` column. From the saved model's seed.
    model/            the fine-tuned model (leanbert model directory with the tokenizer; ``leanbert export``
                      writes *ForSequenceClassification). With several seeds: the best seed on the main metric.
    runs/seed-N/      the loop's metrics.jsonl (training loss, lr, dev metrics as val_*)

Everything is written into a temporary sibling of OUT_DIR that is renamed into place at the end.
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from leanbert.atomic import write_dir_atomically, write_json_atomically
from leanbert.errors import UserError
from leanbert.finetune.config import FinetuneConfig, finetune_config, to_train_config
from leanbert.finetune.encode import Collator, Features, PairEncoder, iterate_batches
from leanbert.finetune.layer_decay import layer_lr_scales
from leanbert.finetune.metrics import aggregate_seeds, predictions_from_logits
from leanbert.finetune.objective import SequenceClassification
from leanbert.finetune.source import classifier_config, classifier_from, load_source, resolve_model_dir
from leanbert.finetune.tasks import TaskData, TaskSpec
from leanbert.model.model import LeanBertModel
from leanbert.model_dir import save_model
from leanbert.train.distributed import DistEnv, barrier, gather_rows, init_distributed, shutdown
from leanbert.train.loop import train_loop
from leanbert.train.optim import parameter_groups


@dataclass
class SeedResult:
    seed: int
    metrics: dict[str, float]  # final dev metrics
    curve: list[dict[str, Any]]  # the loop's evaluations: {"step": s, "val_<metric>": v}
    predictions: dict[str, np.ndarray]  # split -> (N,) class indices or scores
    seconds: float


@dataclass
class FinetuneResult:
    out_dir: Path
    metrics: dict[str, Any]  # what metrics.json holds
    seeds: list[SeedResult] = field(default_factory=list)
    is_main: bool = True  # False on the other ranks of a torchrun job (rank 0 wrote OUT_DIR and reports)


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


def predict(model: LeanBertModel, features: Sequence[Features], collator: Collator, batch_size: int,
            regression: bool, env: DistEnv | None = None) -> np.ndarray:
    """(N,) predictions in input order. Rows are batched by length so padding stays small. Under torchrun each
    rank scores every ``world_size``-th row and the logits are gathered, so every rank returns all N."""
    env = env or DistEnv()
    mine = np.arange(env.rank, len(features), env.world_size)
    by_length = np.argsort([features[i].input_ids.shape[0] for i in mine], kind="stable")
    device = next(model.parameters()).device
    outputs = [torch.zeros((0, model.config.num_labels))]
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for start in range(0, len(by_length), batch_size):
            rows = mine[by_length[start:start + batch_size]]
            batch = collator([features[i] for i in rows]).to(device)
            logits = model(batch.input_ids, batch.attention_mask, batch.token_type_ids).logits  # (B, C)
            outputs.append(logits.float().cpu())
    model.train(was_training)
    sorted_logits = torch.cat(outputs)
    local = torch.empty_like(sorted_logits)
    local[torch.from_numpy(by_length)] = sorted_logits  # row j of local is features[mine[j]]
    logits = np.empty((len(features), local.shape[1]), dtype=np.float32)
    for rank, part in enumerate(gather_rows(local, env)):
        logits[rank::env.world_size] = part.cpu().numpy()
    return predictions_from_logits(logits, regression)


def _gold(features: Sequence[Features]) -> np.ndarray:
    return np.asarray([f.label for f in features])


def write_predictions(path: Path, spec: TaskSpec, predictions: dict[str, np.ndarray],
                      gold: dict[str, np.ndarray]) -> None:
    """TSV with index, prediction, gold as label names (``split`` first when there are several splits)."""
    several = len(predictions) > 1
    lines = [("split\t" if several else "") + "index\tprediction\tgold"]
    for split, preds in predictions.items():
        for i, (p, g) in enumerate(zip(preds, gold[split])):
            lines.append((f"{split}\t" if several else "") + f"{i}\t{spec.label_name(p)}\t{spec.label_name(g)}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


class _Runner:
    """One fine-tuning job: holds the encoded data and runs one seed at a time."""

    def __init__(self, source: LeanBertModel, source_dir: Path, task: TaskData, config: FinetuneConfig,
                 from_scratch: bool, progress: bool, env: DistEnv):
        self.source, self.source_dir, self.task, self.config = source, source_dir, task, config
        self.spec = task.spec
        self.from_scratch, self.progress, self.env = from_scratch, progress, env
        max_len = config.data.max_seq_len
        if max_len > source.config.max_positions:
            raise UserError(f"data.max_seq_len={max_len} exceeds the model's max_positions "
                            f"({source.config.max_positions})")
        encoder = PairEncoder.from_dir(source_dir, max_len)
        train = task.train
        if config.data.max_train_examples:
            train = train[: config.data.max_train_examples]
        self.train = encoder.encode(train, progress=progress, desc="tokenize train")
        self.dev = {split: encoder.encode(examples, progress=progress, desc=f"tokenize {split}")
                    for split, examples in task.dev.items()}
        self.gold = {split: _gold(feats) for split, feats in self.dev.items()}
        self.collator = Collator(encoder.pad_id, regression=self.spec.regression)
        vocab = source.config.vocab_size
        too_big = max((int(f.input_ids.max()) for f in self.train), default=0)
        if too_big >= vocab:
            raise UserError(f"{source_dir}: the tokenizer produces id {too_big} but the model's vocab_size is "
                            f"{vocab}; the tokenizer does not belong to this model")

    def build_model(self, seed: int) -> LeanBertModel:
        dropout = self.config.train.dropout
        if self.from_scratch:
            torch.manual_seed(seed)
            return LeanBertModel(classifier_config(self.source.config, self.spec.num_labels, dropout))
        return classifier_from(self.source, self.spec.num_labels, seed, dropout)

    def score(self, model: LeanBertModel) -> tuple[dict[str, float], dict[str, np.ndarray]]:
        preds = {split: predict(model, feats, self.collator, self.config.train.eval_batch_size,
                                self.spec.regression, self.env) for split, feats in self.dev.items()}
        metrics = self.spec.compute_metrics({split: (preds[split], self.gold[split]) for split in preds})
        return metrics, preds

    def run_seed(self, seed: int, run_dir: Path) -> tuple[SeedResult, LeanBertModel]:
        start = time.perf_counter()
        model = self.build_model(seed)
        objective = SequenceClassification(model)
        train_config = to_train_config(self.config, len(self.train), seed)
        scales = None
        if self.config.train.layer_decay < 1:
            scales = layer_lr_scales(model, self.config.train.layer_decay, prefix="model.")
        groups = parameter_groups(objective, train_config.weight_decay, scales)
        last: dict[str, Any] = {}

        def eval_fn(obj: torch.nn.Module) -> dict[str, float]:
            metrics, preds = self.score(obj.model)
            last["metrics"], last["predictions"] = metrics, preds
            return metrics

        env = self.env
        torch.manual_seed(seed + 100_003 * env.rank)  # dropout masks: one stream per rank
        train_config.micro_batch_size(env.world_size)  # refuses a global batch that does not split evenly
        data = EpochBatches(self.train, train_config.batch_size, self.collator, seed, env.rank, env.world_size)
        result = train_loop(objective, data, train_config, run_dir, eval_fn=eval_fn, env=env,
                            param_groups=groups, progress=self.progress)
        shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)  # a finished fine-tune never resumes
        model = objective.model.cpu().eval()
        curve = [{k: v for k, v in e.items()} for e in result.evaluations]
        return SeedResult(seed, last["metrics"], curve, last["predictions"], time.perf_counter() - start), model


def finetune(model: str | Path, task: TaskData, out_dir: str | Path, overrides: list[str] | None = None,
             from_scratch: bool = False, overwrite: bool = False, progress: bool = True, log=print,
             env: DistEnv | None = None) -> FinetuneResult:
    """Fine-tune MODEL (leanbert dir, pretraining run, or local HF dir) on ``task`` (from ``load_task_data``)
    and write OUT_DIR (see the module docstring). ``from_scratch`` keeps MODEL's architecture and tokenizer
    but starts from random weights: the no-pretraining baseline. Under torchrun (or with ``env``) the ranks
    share each global batch and the dev scoring; rank 0 alone logs and writes OUT_DIR."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not overwrite and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise UserError(f"{out_dir} already exists and is not empty; choose another --out or pass --overwrite")
    spec = task.spec
    config = finetune_config(spec.recipe, overrides)
    own_env = env is None
    env = env or init_distributed(config.train.device)
    if not env.is_main:
        log, progress = (lambda *_: None), False
    work = Path(tempfile.mkdtemp(prefix=".finetune-", dir=out_dir.parent if out_dir.parent.exists() else None))
    try:
        source_dir = resolve_model_dir(model, work, log=log)
        source = load_source(source_dir)
        runner = _Runner(source, source_dir, task, config, from_scratch, progress, env)
        steps, _ = config.train.steps(len(runner.train))
        log(f"fine-tuning {source_dir} on {spec.name}: {len(runner.train)} train / "
            + ", ".join(f"{len(v)} {k}" for k, v in runner.dev.items())
            + f" examples, {steps} steps x {len(config.train.seeds)} seed(s)"
            + (f" on {env.world_size} processes" if env.distributed else "")
            + (" (from scratch)" if from_scratch else ""))
        seeds: list[SeedResult] = []
        metrics: dict[str, Any] = {}

        def fill(tmp: Path) -> None:
            best: SeedResult | None = None
            best_model: LeanBertModel | None = None
            for seed in config.train.seeds:
                result, trained = runner.run_seed(seed, tmp / "runs" / f"seed-{seed}")
                seeds.append(result)
                value = result.metrics[spec.main_metric]
                log(f"seed {seed}: " + ", ".join(f"{k} {v:.4f}" for k, v in result.metrics.items())
                    + f" ({result.seconds:.0f}s)")
                if best is None or value > best.metrics[spec.main_metric]:
                    best, best_model = result, trained
            metrics.update(summarize(spec, config, seeds, best.seed, str(model), from_scratch))
            if not env.is_main:
                return
            task_meta = {"name": spec.name, "labels": list(spec.labels) if spec.labels else None,
                         "regression": spec.regression, "text_columns": [str(c) for c in spec.text_columns],
                         "max_seq_len": config.data.max_seq_len}
            save_model(best_model, tmp / "model", tokenizer_dir=source_dir, extra={"task": task_meta})
            write_json_atomically(tmp / "metrics.json", metrics)
            write_predictions(tmp / "predictions.tsv", spec, best.predictions,
                              {s: runner.gold[s] for s in best.predictions})

        if env.is_main:
            write_dir_atomically(out_dir, fill)
        else:
            fill(work / f"rank-{env.rank}")  # training only; its run logs and checkpoints stay on rank 0
        barrier(env)  # OUT_DIR is complete before any rank returns
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if own_env:
            shutdown(env)
    return FinetuneResult(out_dir, json.loads(json.dumps(metrics)), seeds, env.is_main)


def summarize(spec: TaskSpec, config: FinetuneConfig, seeds: list[SeedResult], model_seed: int,
              model: str, from_scratch: bool) -> dict[str, Any]:
    """The metrics.json object."""
    runs = [s.metrics for s in seeds]
    out: dict[str, Any] = {"task": spec.name, "model": model, "from_scratch": from_scratch,
                           "main_metric": spec.main_metric, "metric_names": spec.metric_names}
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
