"""THE training loop, shared by pretraining, distillation and fine-tuning.

The loop knows nothing about models: an ``Objective`` turns a ``Batch`` into ``Output(loss, metrics)`` and the
loop does ``loss.backward()``, gradient accumulation, clipping, the optimizer/schedule step, logging, periodic
evaluation, checkpoints and budgets::

    result = train_loop(objective, train_batches, TrainConfig(...), run_dir,
                        eval_fn=lambda objective: {"loss": ...},   # optional; called in eval mode, no_grad
                        resume=True)

Hooks and policies the objective may opt into (duck typing: the loop imports nothing from leanbert.objectives):

* ``objective.after_step(step, env)``: called once after every optimizer step (``step`` = steps done), on the
  unwrapped objective, under ``torch.no_grad``: TNF's note dictionary, an EMA. Under DDP every rank calls it
  and the objective itself combines the ranks' contributions (see ``distributed.wrap_ddp`` for why).
* ``objective.frozen_modules()``: sub-modules that are never trained (a distillation teacher); see
  ``train/frozen.py`` for the policy (eval mode, no optimizer state, identity instead of weights in checkpoints).

Loss normalisation: each micro-batch's loss is the objective's own mean (per token for MLM, per sequence for
SOP); the loop backpropagates ``loss / grad_accum`` and DDP averages gradients over ranks. The gradient is
therefore the mean of the micro-batch means. That equals the gradient of the global-batch mean exactly when
every micro-batch carries the same number of loss terms (per-example losses with equal micro-batches); for
token-normalised MLM it is the usual close approximation (BERT, HF Trainer, nanoGPT do the same), since
micro-batches carry slightly different numbers of masked tokens.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from leanbert.batch import Batch
from leanbert.errors import UserError
from leanbert.train import checkpoint as ckpt
from leanbert.train.config import TrainConfig
from leanbert.train.cpu_features import require_bf16
from leanbert.train.distributed import (
    DistEnv,
    all_reduce_mean,
    all_reduce_sum,
    any_rank,
    barrier,
    check_buffers_agree,
    gather_objects,
    select_device,
    wrap_ddp,
)
from leanbert.train.frozen import enter_train_mode, freeze, frozen_parameter_ids
from leanbert.train.metrics import MetricAverager, MetricsWriter
from leanbert.train.optim import build_optimizer, parameter_groups
from leanbert.train.schedule import Schedule

EvalFn = Callable[[nn.Module], dict[str, float]]


class NonFiniteLossError(UserError):
    """The loss became NaN or inf; the run stopped without saving the broken weights."""


@dataclass
class LoopResult:
    step: int  # optimizer steps done in total (resumed steps included)
    tokens: int  # real (non-pad) training tokens seen, all ranks
    stop_reason: str  # "max_steps" or "max_minutes"
    elapsed_s: float
    last_checkpoint: Path | None
    last_log: dict[str, Any] = field(default_factory=dict)
    evaluations: list[dict[str, Any]] = field(default_factory=list)  # {"step": s, "val_<metric>": v, ...}


class _Trainer:
    def __init__(self, objective: nn.Module, train_data: Iterable[Batch], config: TrainConfig, run_dir: Path,
                 eval_fn: EvalFn | None, env: DistEnv, param_groups: list[dict[str, Any]] | None,
                 progress: bool):
        self.objective, self.train_data, self.config, self.run_dir = objective, train_data, config, run_dir
        self.eval_fn, self.env, self.progress = eval_fn, env, progress
        self.device = env.device
        if config.precision == "bf16" and self.device.type == "cpu":
            require_bf16("train.precision=bf16")  # emulated bf16 is slower than fp32: refuse, don't crawl
        self.frozen = freeze(objective)  # fingerprints before the move: a CPU teacher is hashed in place
        objective.to(self.device)
        enter_train_mode(objective)
        groups = param_groups if param_groups is not None else parameter_groups(objective, config.weight_decay)
        self.params = [p for g in groups for p in g["params"]]
        frozen_ids = frozen_parameter_ids(objective)
        if any(id(p) in frozen_ids for p in self.params):
            raise ValueError("param_groups hold parameters of a frozen module (objective.frozen_modules()); "
                             "build them with optim.parameter_groups, which leaves those out")
        self.after_step_hook = getattr(objective, "after_step", None)
        self.optimizer = build_optimizer(groups, config, self.device)
        self.schedule = Schedule(self.optimizer, config.lr, config.schedule, config.warmup_steps,
                                 config.max_steps)
        self.step, self.tokens, self.elapsed_before = 0, 0, 0.0
        self.pending_tokens = 0  # this rank's tokens not yet summed over ranks into self.tokens
        self.interval_tokens = 0  # all ranks' tokens since the last log line (for tokens_per_s)
        self.writer = MetricsWriter(run_dir, enabled=env.is_main, tensorboard=config.tensorboard)
        self.averager = MetricAverager(self.device, weights=getattr(objective, "metric_weights", {}))
        self.first_bad = torch.full((), -1, dtype=torch.long, device=self.device)  # first non-finite step
        self.last_checkpoint: Path | None = None
        self.evaluations: list[dict[str, Any]] = []
        self.autocast = torch.autocast(device_type=self.device.type, dtype=torch.bfloat16,
                                       enabled=config.precision == "bf16")
        self._iter: Iterator[Batch] | None = None

    # --- state ----------------------------------------------------------------------------------------
    def resume(self) -> None:
        """Restore the newest complete checkpoint (weights, optimizer, schedule, counters, RNG, data)."""
        latest = ckpt.latest_checkpoint(self.run_dir)
        if latest is None:
            if self.env.is_main:
                print(f"leanbert: no complete checkpoint in {ckpt.checkpoints_dir(self.run_dir)}; starting "
                      "from step 0", file=sys.stderr)
            return
        state = ckpt.load_checkpoint(latest.path, self.objective, self.optimizer, self.frozen)
        if state["world_size"] != self.env.world_size:
            raise UserError(f"{latest.path} was written by {state['world_size']} process(es) but this run has "
                            f"{self.env.world_size}; resume with the same number of processes")
        self.step, self.tokens = int(state["step"]), int(state["tokens"])
        self.elapsed_before = float(state["elapsed_s"])
        self.schedule.load_state_dict(state["schedule"])
        rank_state = state["ranks"][self.env.rank]
        if rank_state["data"] is not None:
            if not hasattr(self.train_data, "load_state_dict"):
                raise UserError(f"{latest.path} holds a data position but the training data cannot restore it")
            self.train_data.load_state_dict(rank_state["data"])
        self._rng_to_restore = rank_state["rng"]
        self.last_checkpoint = latest.path
        if self.env.is_main:
            print(f"leanbert: resuming from {latest.path} (step {self.step})", file=sys.stderr)

    def flush_tokens(self) -> None:
        """Sum every rank's pending token count into ``self.tokens`` (a collective: all ranks call it)."""
        n = int(all_reduce_sum(torch.tensor([self.pending_tokens], device=self.device), self.env).item())
        self.pending_tokens = 0
        self.tokens += n
        self.interval_tokens += n

    def log_record(self, now: float, since: float) -> dict[str, Any]:
        self.flush_tokens()
        record = {"step": self.step, **self.averager.pop(self.env), "lr": self.schedule.lr(self.step - 1),
                  "tokens_per_s": self.interval_tokens / max(now - since, 1e-9), "tokens": self.tokens,
                  "elapsed_s": round(self.elapsed(), 3)}
        self.interval_tokens = 0
        return record

    def save(self) -> None:
        self.flush_tokens()  # so the checkpoint's token count is exact
        data_state = self.train_data.state_dict() if hasattr(self.train_data, "state_dict") else None
        ranks = gather_objects({"rng": ckpt.rng_state(), "data": data_state}, self.env)
        check_buffers_agree(self.objective, self.env)  # a checkpoint holds rank 0's buffers only
        if self.env.is_main:
            state = {"step": self.step, "tokens": self.tokens, "elapsed_s": self.elapsed(),
                     "schedule": self.schedule.state_dict(), "world_size": self.env.world_size, "ranks": ranks}
            self.last_checkpoint = ckpt.save_checkpoint(self.run_dir, self.step, self.objective,
                                                        self.optimizer, state, self.config.keep_checkpoints,
                                                        self.frozen)
        barrier(self.env)

    def elapsed(self) -> float:
        return self.elapsed_before + time.monotonic() - self.t0

    # --- steps ----------------------------------------------------------------------------------------
    def next_batch(self) -> Batch:
        """The next micro-batch; a finite iterable is restarted (the next epoch)."""
        if self._iter is None:
            self._iter = iter(self.train_data)
        try:
            return next(self._iter)
        except StopIteration:
            self._iter = iter(self.train_data)
            try:
                return next(self._iter)
            except StopIteration:
                raise UserError("the training data yielded no batches") from None

    def train_step(self, model: nn.Module) -> int:
        """One optimizer step over ``grad_accum`` micro-batches; returns this rank's real tokens."""
        accum = self.config.grad_accum
        loss_sum = torch.zeros((), device=self.device)
        tokens = 0
        for micro in range(accum):
            batch = self.next_batch()
            tokens += batch.num_tokens  # counted on the host copy: no device sync
            batch = batch.to(self.device, non_blocking=True)
            # DDP all-reduces gradients only on the last micro-step
            sync = contextlib.nullcontext() if micro == accum - 1 or not self.env.distributed \
                else model.no_sync()
            with sync:
                with self.autocast:
                    out = model(batch)
                (out.loss / accum).backward()
            loss_sum = loss_sum + out.loss.detach().float()
            self.averager.add(out.metrics)
        metrics: dict[str, Any] = {}
        if self.config.clip_norm > 0:
            metrics["grad_norm"] = torch.nn.utils.clip_grad_norm_(self.params, self.config.clip_norm)
        self.optimizer.step()
        self.schedule.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        if self.after_step_hook is not None:
            with torch.no_grad():
                self.after_step_hook(self.step, self.env)
        loss = loss_sum / accum
        bad = ~torch.isfinite(loss) & (self.first_bad < 0)
        self.first_bad = torch.where(bad, torch.full_like(self.first_bad, self.step), self.first_bad)
        metrics["loss"] = loss
        self.averager.add(metrics)
        return tokens

    def check_finite(self) -> None:
        """Raise NonFiniteLossError when any rank saw a NaN/inf loss since the start (one host sync)."""
        first_bad = int(self.first_bad.item())
        if any_rank(first_bad >= 0, self.env):
            where = f"at step {first_bad}" if first_bad >= 0 else f"on another rank by step {self.step}"
            kept = (f"the last good checkpoint is {self.last_checkpoint}" if self.last_checkpoint
                    else "no checkpoint was written before it")
            raise NonFiniteLossError(
                f"the loss became NaN/inf {where}; training stopped and the broken weights were not saved "
                f"({kept}). Try a lower train.lr, more train.warmup_steps, train.clip_norm > 0, or "
                f"train.precision=fp32")

    def evaluate(self) -> dict[str, float]:
        self.objective.eval()
        # fork_rng: evaluation (e.g. ELECTRA's sampling) never shifts the training random streams, so eval_every
        # or the step-0 evaluation can change without changing the training run
        devices = [self.device] if self.device.type == "cuda" else []
        try:
            with torch.random.fork_rng(devices=devices), torch.no_grad(), self.autocast:
                raw = self.eval_fn(self.objective)
        finally:
            enter_train_mode(self.objective)
        keys = sorted(raw)
        values = torch.tensor([float(raw[k]) for k in keys], dtype=torch.float64,
                              device=self.device if self.device.type == "cuda" else "cpu")
        values = all_reduce_mean(values, self.env).tolist()
        record = {k if k.startswith("val_") else f"val_{k}": v for k, v in zip(keys, values)}
        self.evaluations.append({"step": self.step, **record})
        return record

    # --- the loop -------------------------------------------------------------------------------------
    def start(self, resume: bool, on_ready: Callable[[], None] | None) -> nn.Module:
        """The run directory cleaned of a killed run's partial checkpoints, the checkpoint restored (``resume``),
        ``on_ready`` called, metrics.jsonl cut back to the restored step; returns the module to step with."""
        env = self.env
        self._rng_to_restore = None
        if env.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            removed = ckpt.clean_stale(self.run_dir)
            if removed:
                print(f"leanbert: removed incomplete checkpoint leftovers: {', '.join(removed)}", file=sys.stderr)
        barrier(env)
        if resume:
            self.resume()
        if env.is_main:
            if on_ready is not None:  # the run is known good (its checkpoint restored): its files may change now
                on_ready()
            self.writer.truncate_after(self.step)
        model = wrap_ddp(self.objective, env)
        if self.config.compile:
            model = torch.compile(model)
        if self._rng_to_restore is not None:  # last, so nothing between here and the first step draws numbers
            ckpt.set_rng_state(self._rng_to_restore)
        return model

    def run(self, resume: bool, on_ready: Callable[[], None] | None = None) -> LoopResult:
        cfg, env = self.config, self.env
        model = self.start(resume, on_ready)
        self.t0 = time.monotonic()
        start_step = self.step
        stop_reason = "max_steps"
        last_log: dict[str, Any] = {}
        saved_at = eval_at = -1
        log_t = time.monotonic()
        bar = tqdm(total=cfg.max_steps, initial=self.step, disable=not (self.progress and env.is_main),
                   dynamic_ncols=True, unit="step", desc="train")
        try:
            if self.eval_fn is not None and self.step == 0 and cfg.max_steps > 0 and cfg.eval_at_start:
                # the starting point, so curves (and claims like "val loss fell from X") have their origin
                self.writer.write({"step": 0, **self.evaluate()})
            while self.step < cfg.max_steps:
                if cfg.max_minutes and (not env.distributed or self.step % cfg.log_every == 0):
                    if any_rank(self.elapsed() >= cfg.max_minutes * 60, env):
                        stop_reason = "max_minutes"
                        break
                self.pending_tokens += self.train_step(model)
                bar.update(1)
                final = self.step >= cfg.max_steps
                if self.step % cfg.log_every == 0 or final:
                    self.check_finite()
                    now = time.monotonic()
                    record = self.log_record(now, log_t)
                    log_t = now
                    if self.eval_fn is not None and cfg.eval_every and self.step % cfg.eval_every == 0:
                        record.update(self.evaluate())
                        eval_at = self.step
                    self.writer.write(_ordered(record))
                    last_log = record
                    bar.set_postfix(loss=f"{record['loss']:.4f}", tok_s=f"{record['tokens_per_s']:.0f}",
                                    refresh=False)
                elif self.eval_fn is not None and cfg.eval_every and self.step % cfg.eval_every == 0:
                    self.check_finite()
                    record = {"step": self.step, **self.evaluate()}
                    self.writer.write(record)
                    eval_at = self.step
                if cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0:
                    self.check_finite()
                    self.save()
                    saved_at = self.step
            # the end: flush metrics of a partial interval, validate, checkpoint
            self.check_finite()
            if not self.averager.empty:  # steps since the last log line (a time stop mid-interval)
                record = self.log_record(time.monotonic(), log_t)
                self.writer.write(_ordered(record))
                last_log = record
            # a resumed run that trains no step (its time budget was already spent) validated this step before
            # it saved the checkpoint it resumed from: evaluating again would duplicate that metrics line
            if self.eval_fn is not None and eval_at != self.step and (self.step > start_step or not resume):
                record = {"step": self.step, **self.evaluate()}
                self.writer.write(record)
                last_log = {**last_log, **record}
            if saved_at != self.step and self.step > start_step:
                self.save()
        finally:
            bar.close()
            self.writer.close()
        return LoopResult(step=self.step, tokens=self.tokens, stop_reason=stop_reason,
                          elapsed_s=self.elapsed(), last_checkpoint=self.last_checkpoint, last_log=last_log,
                          evaluations=self.evaluations)


def _ordered(record: dict[str, Any]) -> dict[str, Any]:
    """step, loss, lr, tokens_per_s first, then the rest alphabetically: lines that read well."""
    head = [k for k in ("step", "loss", "lr", "tokens_per_s", "tokens", "elapsed_s") if k in record]
    rest = sorted(k for k in record if k not in head)
    return {k: (round(v, 6) if k == "tokens_per_s" else v) for k, v in
            ((k, record[k]) for k in head + rest)}


def train_loop(objective: nn.Module, train_data: Iterable[Batch], config: TrainConfig, run_dir: str | Path, *,
               eval_fn: EvalFn | None = None, env: DistEnv | None = None, resume: bool = False,
               param_groups: list[dict[str, Any]] | None = None, progress: bool = True,
               on_ready: Callable[[], None] | None = None) -> LoopResult:
    """Train ``objective`` on ``train_data`` until ``config.max_steps`` (or ``config.max_minutes``).

    objective:    an ``nn.Module`` whose ``forward(batch)`` returns ``Output(loss, metrics)``; metrics are
                  detached 0-d tensors (or floats) with the same keys on every rank. Optional hooks:
                  ``after_step(step, env)`` and ``frozen_modules()`` (module docstring).
    train_data:   an iterable of ``Batch`` micro-batches for THIS rank (``grad_accum`` per step). A finite
                  iterable is iterated again when exhausted. With ``state_dict()``/``load_state_dict()`` its
                  position is checkpointed, so a resumed run sees the exact next batch.
    eval_fn:      ``eval_fn(objective) -> {name: value}``, called in eval mode under no_grad (and autocast)
                  every ``eval_every`` steps and at the end; logged as ``val_<name>``, averaged over ranks.
    env:          from ``distributed.init_distributed``; default: one process on ``config.device``.
    resume:       continue from the newest complete checkpoint in ``run_dir/checkpoints`` (step 0 if none).
    param_groups: optimizer groups (``optim.parameter_groups`` with ``lr_scales`` for layer-wise LR decay);
                  default: decay / no-decay groups over ``objective.parameters()``.
    on_ready:     called on rank 0 once the run is known valid (the resumed checkpoint restored), before the
                  first step: where a job writes its own files into ``run_dir`` (config.yaml), so a resume
                  that fails leaves them as they were.

    Writes ``run_dir/metrics.jsonl`` and ``run_dir/checkpoints/``. Raises ``NonFiniteLossError`` when the
    loss turns NaN/inf (checked at every log step and before every checkpoint).
    """
    if env is None:
        env = DistEnv(device=select_device(config.device))
    trainer = _Trainer(objective, train_data, config, Path(run_dir), eval_fn, env, param_groups, progress)
    return trainer.run(resume, on_ready)
