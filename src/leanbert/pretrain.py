"""Pretraining orchestration: config -> tokenizer, objective, data streams -> the training loop -> model dir.

RUN_DIR layout::

    config.yaml          the resolved config (preset expanded, objective's data defaults filled in)
    metrics.jsonl        one JSON object per logged step (step, loss, lr, tokens_per_s, metrics, val_*)
    checkpoints/step-N/  atomic checkpoints (the newest train.keep_checkpoints)
    model/               at the end: a leanbert model directory with the dataset's tokenizer, or
                         model/discriminator + model/generator for ELECTRA; model/roles.json names the
                         kept role (ObjectiveSpec.kept) and its folder, which fine-tuning starts from
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml

from leanbert.atomic import write_dir_atomically, write_text_atomically
from leanbert.config import ConfigError, load_config_file, to_dict
from leanbert.errors import UserError
from leanbert.jobs import seed_everything, train_objective
from leanbert.memory_check import check_model_fits
from leanbert.model.config import ModelConfig
from leanbert.model_dir import ROLES_FILE, check_tokenizer_files, save_model, write_model_files
from leanbert.outdir import open_run_dir, write_marker
from leanbert.pretrain_config import PretrainConfig, load_pretrain_config
from leanbert.train.checkpoint import checkpoints_dir, latest_checkpoint
from leanbert.train.config import resumable_keys
from leanbert.train.distributed import DistEnv, init_distributed, shutdown
from leanbert.train.loop import LoopResult

CONFIG_FILE = "config.yaml"


@dataclass
class PretrainResult:
    run_dir: Path
    model_dir: Path | None
    loop: LoopResult


def resolved_dict(config: PretrainConfig, model_config: ModelConfig) -> dict[str, Any]:
    """The config as written to config.yaml: the model section lists every encoder field (heads excluded:
    the objective sets them)."""
    model = {"preset": config.model["preset"]}
    model.update({k: v for k, v in to_dict(model_config).items() if k != "heads"})
    return {**config.to_dict(), "model": model}


def _diff(old: Any, new: Any, prefix: str = "") -> list[tuple[str, Any, Any]]:
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in sorted(set(old) | set(new)):
            out += _diff(old.get(key), new.get(key), f"{prefix}{key}.")
        return out
    return [] if old == new else [(prefix.rstrip("."), old, new)]


def check_resume_compatible(saved: dict[str, Any], current: dict[str, Any], source: Path) -> list[str]:
    """Refuse changes that would make a resumed run differ from the interrupted one (only the train.* settings
    tagged budget, logging or impl may change); returns the allowed changes."""
    changes = _diff(saved, current)
    allowed = [f"train.{k}" for k in resumable_keys()]
    bad = [(k, a, b) for k, a, b in changes if k not in allowed]
    if bad:
        listed = "; ".join(f"{k}: {a!r} -> {b!r}" for k, a, b in bad[:5])
        raise ConfigError(f"cannot --resume with a different experiment than {source} ({listed}). Only "
                          f"{', '.join(allowed)} may change on resume; start a new --out for a new experiment")
    return [f"{k}: {a!r} -> {b!r}" for k, a, b in changes]


def load_run_config(config_path: str | None, overrides: list[str], out_dir: str | Path, resume: bool,
                    ) -> tuple[PretrainConfig, dict[str, Any] | None]:
    """The config of a run: ``--config`` + overrides, or (with --resume and no --config) RUN_DIR/config.yaml +
    overrides. Returns (config, the saved resolved dict when resuming, else None)."""
    if Path(out_dir).exists() and not Path(out_dir).is_dir():
        raise UserError(f"--out {out_dir} is a file; give a run directory")
    saved_path = Path(out_dir) / CONFIG_FILE
    saved = None
    if resume and saved_path.is_file():
        saved = load_config_file(saved_path)  # errors name the file
        if isinstance(saved.get("model"), dict):  # a run written before position_options compares as today's
            saved["model"] = ModelConfig.upgrade_legacy(saved["model"])
    if config_path is None and saved is None:
        if not overrides:
            raise UserError("give --config FILE.yaml (see configs/) and/or key=value settings, e.g. "
                            "model.preset=electra-small objective.name=electra data.path=DATA_DIR")
        config, _ = load_pretrain_config(None, overrides)
    elif config_path is None:
        config, _ = load_pretrain_config(None, overrides, base=saved)
    else:
        config, _ = load_pretrain_config(config_path, overrides)
    return config, saved


def _write_yaml(path: Path, data: dict[str, Any]) -> None:
    write_text_atomically(path, yaml.safe_dump(data, sort_keys=False))


def make_eval_fn(valid_loader, num_batches: int, device: torch.device,
                 derived_metrics: Callable[[dict[str, float]], dict[str, float]] | None = None):
    """Validation: the first ``num_batches`` batches of the (fixed, in-order) validation stream; metrics
    combined exactly (counts summed, means weighted by their counts, as the objective's ``metric_weights``
    declare), plus the objective's ``derived_metrics`` (e.g. ELECTRA's all-"original" baseline)."""
    from leanbert.objectives.metrics import aggregate_metrics
    from leanbert.train.metrics import is_count

    def evaluate(objective: torch.nn.Module) -> dict[str, float]:
        weights = getattr(objective, "metric_weights", {})
        valid_loader.load_state_dict({"epoch": 0, "batch": 0})
        per_batch = []
        for i, batch in enumerate(valid_loader):
            if i >= num_batches:
                break
            out = objective(batch.to(device))
            per_batch.append({"loss": out.loss.detach(), **out.metrics})
        metrics = aggregate_metrics(per_batch, weights)
        if derived_metrics is not None:
            metrics.update(derived_metrics(metrics))
        return {k: v for k, v in metrics.items() if not is_count(k, weights)}  # totals say little about quality

    return evaluate


def save_final_models(objective, out_dir: Path, tokenizer_dir: Path, extra: dict[str, Any], kept: str) -> Path:
    """RUN_DIR/model (one network) or RUN_DIR/model/<role> (several, e.g. ELECTRA), atomically, with
    RUN_DIR/model/roles.json naming the kept role and its folder (what fine-tuning starts from)."""
    models = objective.saved_models()
    if kept not in models:  # a bug in the objective's registry entry, not bad input
        raise RuntimeError(f"{type(objective).__name__}.saved_models() has no role {kept!r} (its registry entry's "
                           f"kept); it has {sorted(models)}")

    def fill(tmp: Path) -> None:
        if len(models) == 1:
            write_model_files(models[kept], tmp, tokenizer_dir, extra)
        else:
            for name, model in models.items():
                save_model(model, tmp / name, tokenizer_dir, extra={**extra, "role": name})
        roles = {"kept": kept, "path": "." if len(models) == 1 else kept, "roles": sorted(models)}
        (tmp / ROLES_FILE).write_text(json.dumps(roles, indent=2) + "\n", encoding="utf-8")

    return write_dir_atomically(out_dir / "model", fill)


def check_resume_steps(run_dir: Path, max_steps: int) -> None:
    """Refuse a resume that would append duplicate lines to a finished run, or shorten a run so that its
    config.yaml disagrees with its model (train.max_steps below the steps already done)."""
    latest = latest_checkpoint(run_dir)
    if latest is None or latest.step < max_steps:
        return
    if latest.step > max_steps:
        raise ConfigError(f"train.max_steps={max_steps} is below the {latest.step} steps {run_dir} has already "
                          f"done; a run cannot be shortened: pass train.max_steps > {latest.step} to continue it")
    if (run_dir / "model").exists():
        raise UserError(f"{run_dir} already finished ({latest.step} of train.max_steps={max_steps} steps, "
                        f"model/ saved); pass a larger train.max_steps to train further")


def pretrain(config: PretrainConfig, out_dir: str | Path, *, resume: bool = False,
             saved_config: dict[str, Any] | None = None, progress: bool = True,
             env: DistEnv | None = None) -> PretrainResult:
    """Run one pretraining job into ``out_dir`` (see the module docstring)."""
    from leanbert.data.loader import build_loader, resolve_tokenizer
    from leanbert.objectives import apply_addons, build_objective, objective_spec

    out_dir = Path(out_dir)
    own_env = env is None
    env = env or init_distributed(config.train.device)
    lock = None
    try:
        if not resume and (checkpoints_dir(out_dir).exists() or (out_dir / "metrics.jsonl").exists()):
            raise UserError(f"{out_dir} already holds a run; pass --resume to continue it, or choose a new --out")
        # one process per run directory (rank 0 holds the lock); never an input or a foreign directory
        lock = open_run_dir(out_dir, "pretrain", [config.data.path, config.data.valid_path], resume,
                            lock=env.is_main)
        if resume:
            check_resume_steps(out_dir, config.train.max_steps)
        tokenizer = resolve_tokenizer(config.data)
        check_tokenizer_files(tokenizer.path)  # model/ copies them at the end: refuse a bad one before training
        model_config = config.model_config(vocab_size=tokenizer.vocab_size, pad_token_id=tokenizer.pad_id)
        if model_config.vocab_size < tokenizer.vocab_size:
            raise ConfigError(f"model.vocab_size={model_config.vocab_size} is smaller than the tokenizer's "
                              f"vocabulary ({tokenizer.vocab_size}, {tokenizer.path})")
        check_model_fits(model_config, training=True)  # before allocating: a typo'd size is a clear error
        resolved = resolved_dict(config, model_config)
        if saved_config is not None:
            for change in check_resume_compatible(saved_config, resolved, out_dir / CONFIG_FILE):
                if env.is_main:
                    print(f"leanbert: resuming with a changed setting: {change}", file=sys.stderr)
        train_cfg = config.train
        micro = train_cfg.micro_batch_size(env.world_size)

        seed_everything(train_cfg.seed)  # same initial weights on every rank
        kept = objective_spec(config.objective.name).kept
        objective = apply_addons(build_objective(config.objective, model_config), config.addons, model_config,
                                 kept)
        train_loader = build_loader(config.data, tokenizer, micro, "train", train_cfg.seed, env.rank,
                                    env.world_size)
        eval_fn = None
        if config.data.valid_split:
            try:
                valid_loader = build_loader(config.data, tokenizer, micro, "valid", train_cfg.seed, env.rank,
                                            env.world_size)
            except UserError as err:
                if env.is_main:
                    print(f"leanbert: no validation ({err}); set data.valid_split='' to silence this",
                          file=sys.stderr)
            else:
                eval_fn = make_eval_fn(valid_loader, train_cfg.eval_batches, env.device,
                                       objective_spec(config.objective.name).derived_metrics)
        def write_run_files() -> None:  # after a resume is known valid: a failed one leaves config.yaml as it was
            out_dir.mkdir(parents=True, exist_ok=True)
            write_marker(out_dir, "pretrain")
            _write_yaml(out_dir / CONFIG_FILE, resolved)

        if env.is_main:
            counts = sum(p.numel() for p in objective.parameters())
            print(f"leanbert: {config.objective.name} on {model_config.family} shape "
                  f"(L={model_config.num_layers} H={model_config.hidden_size} E={model_config.embedding_size} "
                  f"sharing={model_config.sharing}), {counts / 1e6:.2f}M trainable parameters; "
                  f"{env.world_size} process(es) on {env.device}, micro-batch {micro} x grad_accum "
                  f"{train_cfg.grad_accum} x {env.world_size} = {train_cfg.batch_size} sequences/step",
                  file=sys.stderr)
        result = train_objective(objective, train_loader, train_cfg, out_dir, env, eval_fn=eval_fn,
                                 resume=resume, progress=progress,
                                 on_ready=write_run_files)  # train.unpad is applied there
        model_dir = None
        if env.is_main:
            extra = {"pretraining": {"objective": dataclasses.asdict(config.objective), "step": result.step,
                                     "tokens": result.tokens, "stop_reason": result.stop_reason}}
            model_dir = save_final_models(objective, out_dir, tokenizer.path, extra, kept)
        return PretrainResult(run_dir=out_dir, model_dir=model_dir, loop=result)
    finally:
        if lock is not None:
            lock.release()
        if own_env:
            shutdown(env)
