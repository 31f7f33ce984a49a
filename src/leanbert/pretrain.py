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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from leanbert.atomic import write_dir_atomically
from leanbert.config import ConfigError, load_config_file, to_dict
from leanbert.data.loader import build_loader, resolve_tokenizer
from leanbert.errors import UserError
from leanbert.jobs import CONFIG_FILE, Job, JobSpec, check_resume_compatible, run_job, seed_everything
from leanbert.model.config import ModelConfig
from leanbert.model_dir import (
    ROLES_FILE,
    check_model_fits,
    check_tokenizer_files,
    save_model,
    write_model_files,
)
from leanbert.objectives import apply_addons, build_objective, objective_spec
from leanbert.pretrain_config import PretrainConfig, load_pretrain_config
from leanbert.train.distributed import DistEnv
from leanbert.train.loop import LoopResult

__all__ = ["CONFIG_FILE", "PretrainResult", "check_resume_compatible", "load_run_config", "pretrain",
           "resolved_dict", "save_final_models"]


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



def pretrain(config: PretrainConfig, out_dir: str | Path, *, resume: bool = False,
             saved_config: dict[str, Any] | None = None, progress: bool = True,
             env: DistEnv | None = None) -> PretrainResult:
    """Run one pretraining job into ``out_dir`` (see the module docstring) on the job runner."""
    spec = JobSpec("pretrain", Path(out_dir), "run_dir", inputs=[config.data.path, config.data.valid_path],
                   device=config.train.device, resume=resume, max_steps=config.train.max_steps,
                   saved_config=saved_config)
    return run_job(spec, lambda job: _pretrain_body(job, config), env=env, progress=progress)


def _pretrain_body(job: Job, config: PretrainConfig) -> PretrainResult:
    env, out_dir, train_cfg = job.env, job.out_dir, config.train
    tokenizer = resolve_tokenizer(config.data)
    check_tokenizer_files(tokenizer.path)  # model/ copies them at the end: refuse a bad one before training
    model_config = config.model_config(vocab_size=tokenizer.vocab_size, pad_token_id=tokenizer.pad_id)
    if model_config.vocab_size < tokenizer.vocab_size:
        raise ConfigError(f"model.vocab_size={model_config.vocab_size} is smaller than the tokenizer's "
                          f"vocabulary ({tokenizer.vocab_size}, {tokenizer.path})")
    check_model_fits(model_config, training=True)  # before allocating: a typo'd size is a clear error
    job.check_resume(resolved_dict(config, model_config))  # becomes config.yaml once the run is known good
    micro = train_cfg.micro_batch_size(env.world_size)

    seed_everything(train_cfg.seed)  # same initial weights on every rank
    spec = objective_spec(config.objective.name)
    objective = apply_addons(build_objective(config.objective, model_config), config.addons, model_config,
                             spec.kept)
    train_loader = build_loader(config.data, tokenizer, micro, "train", train_cfg.seed, env.rank, env.world_size)
    valid = (lambda: build_loader(config.data, tokenizer, micro, "valid", train_cfg.seed, env.rank,
                                  env.world_size)) if config.data.valid_split else None
    eval_fn = job.validation(valid, train_cfg.eval_batches, spec.derived_metrics)
    if env.is_main:
        counts = sum(p.numel() for p in objective.parameters())
        print(f"leanbert: {config.objective.name} on {model_config.family} shape "
              f"(L={model_config.num_layers} H={model_config.hidden_size} E={model_config.embedding_size} "
              f"sharing={model_config.sharing}), {counts / 1e6:.2f}M trainable parameters; "
              f"{env.world_size} process(es) on {env.device}, micro-batch {micro} x grad_accum "
              f"{train_cfg.grad_accum} x {env.world_size} = {train_cfg.batch_size} sequences/step",
              file=sys.stderr)
    result = job.train(objective, train_loader, train_cfg, eval_fn=eval_fn)  # train.unpad is applied there
    model_dir = None
    if env.is_main:
        extra = {"pretraining": {"objective": dataclasses.asdict(config.objective), "step": result.step,
                                 "tokens": result.tokens, "stop_reason": result.stop_reason}}
        model_dir = save_final_models(objective, out_dir, tokenizer.path, extra, spec.kept)
    return PretrainResult(run_dir=out_dir, model_dir=model_dir, loop=result)
