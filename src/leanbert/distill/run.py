"""The two stages of TinyBERT's distillation (Jiao et al., 2020, sec. 3.3) as jobs on the shared training loop.

* ``distill_general``: a (pretrained) teacher and a student on a prepared corpus with ``data.masking: none``;
  attention + hidden-state losses. RUN_DIR is a run directory like pretraining's (locked, resumable)::

      config.yaml       the resolved config: student shape, teacher, the expanded distill.matches
      metrics.jsonl     loss, distill_attention, distill_hidden, ... per logged step; val_* on the valid split
      checkpoints/      student + projections + optimizer (the teacher's source and sha256, never its weights)
      model/            at the end: the student (encoder only) with the teacher's tokenizer

* ``distill_task``: a fine-tuned teacher and a task; per seed, step 1 distils the intermediate layers
  (embedding + attention + hidden), step 2 the prediction layer, through ``TaskJob``, so OUT_DIR is laid out
  as finetune's (metrics.json, predictions.tsv, model/, runs/seed-N/{intermediate,prediction}/). metrics.json
  adds the teacher's dev metrics on the same dev set and the student / teacher ratio of each metric.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from leanbert.config import load_config_file, to_dict
from leanbert.data.loader import build_loader, resolve_tokenizer
from leanbert.distill.config import (
    GENERAL_FEATURES,
    TASK_FEATURES,
    GeneralConfig,
    TaskConfig,
    TaskDistillConfig,
    resolved_matches,
    with_matches,
)
from leanbert.distill.labels import align_task_labels, teacher_labels
from leanbert.distill.objective import PredictionTarget, TransformerDistillation
from leanbert.distill.student import build_student, student_config
from leanbert.distill.teacher_cache import CACHE_DIR, TeacherCache, prepare_cache
from leanbert.distill.unlabeled import add_unlabeled, describe_mix
from leanbert.errors import UserError
from leanbert.finetune.source import load_source, resolve_model_dir
from leanbert.finetune.task_job import (
    EncodedTask,
    SeedResult,
    TaskJob,
    TaskJobResult,
    encode_task,
    task_files,
)
from leanbert.jobs import CONFIG_FILE, Job, JobSpec, Log, run_job, seed_everything
from leanbert.model.model import LeanBertModel
from leanbert.model_dir import check_tokenizer_files, save_model, tokenizer_fingerprint
from leanbert.tasks import TaskType, get_task_type
from leanbert.tasks.glue import TaskData
from leanbert.train.distributed import DistEnv
from leanbert.train.loop import LoopResult


@dataclass
class GeneralResult:
    run_dir: Path
    model_dir: Path | None
    loop: LoopResult


def load_teacher(teacher: str | Path, work: Path, log=print) -> tuple[Path, LeanBertModel]:
    """(its leanbert model directory, the model on the CPU in eval mode); a Hugging Face directory is
    imported under ``work``. A directory without weights or config is a UserError naming the file."""
    teacher_dir = resolve_model_dir(teacher, work / "teacher", log=log)
    return teacher_dir, load_source(teacher_dir)


def saved_teacher(run_dir: Path) -> str | None:
    """The teacher a general-distillation run recorded in its config.yaml (for --resume without --teacher)."""
    path = run_dir / CONFIG_FILE
    if not path.is_file():
        return None
    value = load_config_file(path).get("teacher")
    return value if isinstance(value, str) else None


def general_resolved(config: GeneralConfig, teacher: str | Path, student: LeanBertModel,
                     matches: list) -> dict[str, Any]:
    """config.yaml: the config with the expanded matches, the student's full shape and the teacher."""
    resolved = with_matches(config.to_dict(), matches)
    resolved["student_model"] = {k: v for k, v in to_dict(student.config).items() if k != "heads"}
    return {"teacher": str(teacher), **resolved}


def general_config_dict(saved: dict[str, Any]) -> dict[str, Any]:
    """A saved config.yaml as the config's own groups (what ``load_general_config(base=...)`` takes)."""
    return {k: v for k, v in saved.items() if k not in ("teacher", "student_model")}


def distill_general(config: GeneralConfig, teacher: str | Path, out_dir: str | Path, *, resume: bool = False,
                    saved_config: dict[str, Any] | None = None, progress: bool = True,
                    env: DistEnv | None = None, log=print) -> GeneralResult:
    """General distillation of ``teacher`` into RUN_DIR ``out_dir`` (module docstring), on the job runner."""
    spec = JobSpec("distill", Path(out_dir), "run_dir", inputs=[teacher, config.data.path, config.data.valid_path],
                   device=config.train.device, resume=resume, max_steps=config.train.max_steps,
                   saved_config=saved_config)
    return run_job(spec, lambda job: _general_body(job, config, teacher), env=env, log=log, progress=progress)


def _general_body(job: Job, config: GeneralConfig, teacher: str | Path) -> GeneralResult:
    env, log, out_dir, train_cfg = job.env, job.log, job.out_dir, config.train
    teacher_dir, teacher_model = load_teacher(teacher, job.scratch, log)
    tokenizer = resolve_tokenizer(config.data)
    theirs = tokenizer_fingerprint(teacher_dir)
    if theirs is not None and theirs != tokenizer.fingerprint:
        raise UserError(f"data.path={config.data.path} was prepared with the tokenizer {tokenizer.path}, "
                        f"not the teacher's ({teacher_dir}); prepare the corpus with "
                        f"`leanbert prepare ... --tokenizer {teacher_dir}`")
    check_tokenizer_files(teacher_dir)  # model/ copies them at the end: refuse a bad one before training
    seed_everything(train_cfg.seed)  # same student and projections on every rank
    student = build_student(config.student.init, teacher=teacher_model, teacher_dir=teacher_dir,
                            heads=[], num_labels=2, preset=config.student.preset,
                            overrides=config.model, keep_every=config.student.keep_every,
                            seed=train_cfg.seed, work=job.scratch, log=log)
    matches = resolved_matches(config.distill, GENERAL_FEATURES, student.config.num_layers,
                               teacher_model.config.num_layers)
    objective = TransformerDistillation(student, teacher_model, str(teacher), matches,
                                        shared_projection=config.distill.shared_projection)
    job.check_resume(general_resolved(config, teacher, student, matches))  # config.yaml once the run is good
    micro = train_cfg.micro_batch_size(env.world_size)
    train_loader = build_loader(config.data, tokenizer, micro, "train", train_cfg.seed, env.rank, env.world_size)
    valid = (lambda: build_loader(config.data, tokenizer, micro, "valid", train_cfg.seed, env.rank,
                                  env.world_size)) if config.data.valid_split else None
    eval_fn = job.validation(valid, train_cfg.eval_batches)
    if env.is_main:
        trained = sum(p.numel() for p in objective.parameters() if p.requires_grad)
        log(f"leanbert: general distillation {teacher_model.config.num_layers}L/"
            f"{teacher_model.config.hidden_size}H -> {student.config.num_layers}L/"
            f"{student.config.hidden_size}H, {len(matches)} matches, {trained / 1e6:.2f}M trained "
            f"parameters (student + projections); {env.world_size} process(es) on {env.device}",
            file=sys.stderr)
    result = job.train(objective, train_loader, train_cfg, eval_fn=eval_fn)
    model_dir = None
    if env.is_main:
        extra = {"distillation": {"stage": "general", "teacher": str(teacher), "step": result.step,
                                  "tokens": result.tokens, "stop_reason": result.stop_reason}}
        model_dir = save_model(student.cpu(), out_dir / "model", teacher_dir, extra=extra)
    return GeneralResult(out_dir, model_dir, result)


def check_task_teacher(teacher: LeanBertModel, teacher_dir: Path, task: TaskData) -> None:
    """The task stage needs a teacher fine-tuned on this task (TinyBERT users' issue #52: a merely pretrained
    teacher gives meaningless logits): its task type's head, with the task's head options."""
    config, spec = teacher.config, task.spec
    task_type = get_task_type(task.kind)
    if task_type.head not in config.heads:
        raise UserError(f"--teacher {teacher_dir} has no {task_type.head} head: the task stage distils a teacher "
                        f"fine-tuned on {spec.name} (run `leanbert finetune` first)")
    for name, value in task_type.head_options(spec).items():
        if getattr(config, name) != value:
            what = "label(s)" if name == "num_labels" else name
            raise UserError(f"--teacher {teacher_dir} predicts {getattr(config, name)} {what} but {spec.name} has "
                            f"{value}; give a teacher fine-tuned on this task")


def ratio_to_teacher(student: list[dict[str, float]], teacher: dict[str, float]) -> dict[str, float]:
    """Each metric's mean over the student seeds divided by the teacher's (absent where the teacher's is 0)."""
    out = {}
    for name, value in teacher.items():
        mean = sum(run[name] for run in student) / len(student)
        if value != 0:
            out[name] = mean / value
    return out


def rows_are_sentences(task: TaskData | EncodedTask) -> bool:
    """One feature per row with (classes,) logits: the rows the teacher cache and unlabeled text take (QA
    windows, token tags and option groups are not): the task type's ``logits_per_row``."""
    return get_task_type(task.kind).logits_per_row


def task_teacher_cache(settings: TaskDistillConfig, teacher: LeanBertModel, data: EncodedTask, matches: list,
                       work: Path, out_dir: Path, log, progress: bool = False
                       ) -> tuple[TeacherCache | None, dict[str, Any]]:
    """The teacher-output cache of the training rows (teacher_cache.py), built in ``work`` or taken from an
    earlier run in ``out_dir``; (None, {"enabled": False}) with distill.teacher_cache=false."""
    if not settings.teacher_cache:
        return None, {"enabled": False}
    if not rows_are_sentences(data):
        return None, {"enabled": False, "reason": "the cache holds (rows, classes) logits: sentence tasks only"}
    step1 = matches if settings.intermediate_epochs > 0 else []
    cache, info = prepare_cache(teacher, data.train, data.collator, data.max_seq_len, step1,
                                settings.cache_budget_mb, work / CACHE_DIR, previous=out_dir / CACHE_DIR, log=log,
                                progress=progress)
    return cache, {"enabled": True, **info}


def keep_teacher_cache(cache: TeacherCache | None, out_dir: Path, is_main: bool) -> None:
    """Move the cache into the finished OUT_DIR, where a rerun (--overwrite) finds it."""
    if cache is not None and is_main and out_dir.is_dir() and not (out_dir / CACHE_DIR).exists():
        os.replace(cache.directory, out_dir / CACHE_DIR)


def distill_task(teacher: str | Path, task: TaskData, out_dir: str | Path, config: TaskConfig, *,
                 overwrite: bool = False, progress: bool = True, log=print, env: DistEnv | None = None,
                 teacher_metrics: dict[str, float] | None = None,
                 unlabeled: Sequence[str | Path] = ()) -> TaskJobResult:
    """Task distillation of the fine-tuned ``teacher`` on ``task`` into OUT_DIR (module docstring), published by
    the job runner. ``teacher_metrics``: the teacher's metrics on this dev set when the caller has them (the
    demo, which fine-tuned it a minute ago); None scores the teacher here. ``unlabeled``: files of text without
    labels (``unlabeled.py``) that join the training rows with the teacher's soft targets alone."""
    if unlabeled and not rows_are_sentences(task):
        raise UserError(f"--unlabeled is for sentence(-pair) tasks; {task.spec.name} is a {task.kind} task")
    spec = JobSpec("distill", Path(out_dir), "published", inputs=[teacher, *task_files(task), *unlabeled],
                   device=config.finetune.train.device, overwrite=overwrite)
    return run_job(spec, lambda job: _task_body(job, teacher, task, config, teacher_metrics, unlabeled), env=env,
                   log=log, progress=progress)


def _task_body(job: Job, teacher: str | Path, task: TaskData, config: TaskConfig,
               teacher_metrics: dict[str, float] | None, unlabeled: Sequence[str | Path]) -> TaskJobResult:
    log, progress, work, settings = job.log, job.progress, job.scratch, config.distill
    teacher_dir, teacher_model = load_teacher(teacher, work, log)
    check_task_teacher(teacher_model, teacher_dir, task)
    task = align_task_labels(task, teacher_labels(teacher_dir, teacher_model.config.num_labels),
                             config.label_map, teacher_dir)
    data = encode_task(task, teacher_dir, config.finetune.data, teacher_model.config, progress)
    data, mix = add_unlabeled(data, unlabeled, teacher_dir, progress)
    log(describe_mix(mix))
    task_job = TaskJob(data, config.finetune, job.env, progress, log)
    if teacher_metrics is None:
        teacher_metrics, _ = task_job.score(teacher_model)
    spec = task.spec
    log(f"teacher {teacher} on {spec.name} dev: " + ", ".join(f"{k} {v:.4f}" for k, v in teacher_metrics.items()))
    task_type = get_task_type(task.kind)
    num_labels = task_type.head_options(spec).get("num_labels", 2)
    shape = student_config(config.student.init, teacher=teacher_model.config, heads=[task_type.head],
                           num_labels=num_labels, preset=config.student.preset, overrides=config.model,
                           keep_every=config.student.keep_every, work=work, log=log)
    matches = resolved_matches(settings, TASK_FEATURES, shape.num_layers, teacher_model.config.num_layers)
    cache, cache_info = task_teacher_cache(settings, teacher_model, data, matches, work, job.out_dir, log,
                                           progress)
    # summarize() reads ``describe`` after the last seed, so each seed keeps the ratio current
    describe: dict[str, Any] = {"teacher": str(teacher), "teacher_metrics": teacher_metrics,
                                "training_rows": mix, "teacher_cache": cache_info,
                                "distill": with_matches(config.to_dict(), matches)}
    seeds = StudentSeeds(config, str(teacher), teacher_model, teacher_dir, task_type, num_labels, matches, cache,
                         work, log, {k: v for k, v in teacher_metrics.items() if k in spec.metric_names}, describe)
    log(f"distilling {teacher_dir} into a {shape.num_layers}-layer, hidden-{shape.hidden_size} student "
        f"on {spec.name}: {len(data.train)} train examples ({mix['unlabeled']} unlabeled), "
        f"{settings.intermediate_epochs:g} + {settings.prediction_epochs:g} epochs x "
        f"{len(config.finetune.train.seeds)} seed(s)")
    result = task_job.run(job.publish, seeds, tokenizer_dir=teacher_dir, describe=describe)
    keep_teacher_cache(cache, job.out_dir, job.env.is_main)
    return result


@dataclass
class StudentSeeds:
    """One seed of the task stage (``TaskJob``'s ``run_seed``): a student from its starting weights, step 1
    (intermediate layers, when ``distill.intermediate_epochs`` > 0), step 2 (predictions); keeps ``describe``'s
    ratio to the teacher and parameter counts current."""

    config: TaskConfig
    teacher: str
    teacher_model: LeanBertModel
    teacher_dir: Path
    task_type: TaskType
    num_labels: int
    matches: list
    cache: TeacherCache | None
    work: Path
    log: Log
    teacher_metrics: dict[str, float]  # the teacher's named metrics (no counts)
    describe: dict[str, Any]
    student_runs: list[dict[str, float]] = field(default_factory=list)

    def __call__(self, job: TaskJob, seed: int, run_dir: Path) -> tuple[SeedResult, LeanBertModel]:
        config, settings, teacher_model = self.config, self.config.distill, self.teacher_model
        student = build_student(config.student.init, teacher=teacher_model, teacher_dir=self.teacher_dir,
                                heads=[self.task_type.head], num_labels=self.num_labels,
                                preset=config.student.preset, overrides=config.model,
                                keep_every=config.student.keep_every, seed=seed, work=self.work,
                                dropout=config.finetune.train.dropout, log=self.log)
        seconds = 0.0
        if settings.intermediate_epochs > 0:
            step = TransformerDistillation(student, teacher_model, self.teacher, self.matches,
                                           shared_projection=settings.shared_projection, cache=self.cache)
            first, student = job.train(step, student, seed, run_dir / "intermediate",
                                       config.step(settings.intermediate_epochs, settings.intermediate_lr))
            seconds = first.seconds
        target = PredictionTarget(settings.temperature, settings.hard_label_weight)
        step = TransformerDistillation(student, teacher_model, self.teacher, [], target, cache=self.cache,
                                       task_type=self.task_type)
        result, student = job.train(step, student, seed, run_dir / "prediction",
                                    config.step(settings.prediction_epochs, settings.prediction_lr))
        result.seconds += seconds
        self.student_runs.append(result.metrics)
        self.describe["ratio_to_teacher"] = ratio_to_teacher(self.student_runs, self.teacher_metrics)
        self.describe["student_parameters"] = sum(p.numel() for p in student.parameters())
        self.describe["teacher_parameters"] = sum(p.numel() for p in teacher_model.parameters())
        return result, student
