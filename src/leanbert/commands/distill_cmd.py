"""``leanbert distill``: TinyBERT's two-stage distillation (general on a corpus, task on a task's data)."""

from __future__ import annotations

import argparse
import sys

from leanbert.commands.finetune_cmd import add_task_arguments, load_task

EPILOG = """\
--stage general: TEACHER (a pretrained leanbert model, pretraining run or local Hugging Face directory) teaches
a student on a corpus prepared with the teacher's tokenizer (`leanbert prepare ... --tokenizer TEACHER`),
with attention + hidden-state losses (no masking, no prediction loss). --out RUN is a run directory like
pretraining's: metrics.jsonl, checkpoints (without the teacher's weights), --resume, torchrun; at the end
RUN/model is the student with the tokenizer, ready for `leanbert finetune` or `--stage task student.init=RUN`.

--stage task: TEACHER is fine-tuned on the task (`leanbert finetune`'s OUT_DIR); the task options are
finetune's. Per seed, step 1 distils the embedding, attention and hidden states, step 2 the prediction layer.
--unlabeled FILE (repeatable) adds text without labels: the teacher's soft targets train the student on
every row, the gold labels (distill.hard_label_weight) only on the labelled ones; metrics.json's
training_rows gives the mix. `leanbert augment` makes GloVe variants of a labelled or an unlabeled file.
OUT_DIR is finetune's layout (metrics.json with the teacher's dev metrics and the student/teacher ratio,
predictions.tsv, model/ that `leanbert export` writes as *ForSequenceClassification, runs/seed-N/). With --task qa
(--train/--dev SQuAD JSON) the prediction layer matches the teacher's start and end distributions and OUT_DIR
holds predictions.json and a *ForQuestionAnswering model; with --task ner (CoNLL / JSONL tags) it matches every
token's tag distribution (predictions.conll, *ForTokenClassification); with --task multiple-choice (JSONL) the
distribution over each row's options (predictions.jsonl, *ForMultipleChoice).

Keys (key=value, or a YAML --config with the same groups):
  student.init         preset (default) | teacher-layers | MODEL_DIR (e.g. a general-distillation RUN)
  student.preset       tinybert-4l-312d (see `leanbert params`); model.* overrides its fields
  student.keep_every   teacher-layers: keep teacher layers k, 2k, ..., N (default 2)
  distill.layer_map    uniform (g(m) = floor(m N / M)) | top | bottom | [g(1), ..., g(M)]
  distill.features     general: [attention, hidden]; task step 1: [embedding, attention, hidden]
  distill.matches      explicit list, e.g. '[{student: 1, teacher: 3, feature: hidden, weight: 1.0}]'
  distill.attention_weight / hidden_weight / embedding_weight    weights of the generated matches
  distill.shared_projection  one W for embeddings and hidden states (the reference code), not W_e and W_h
  general: data.* (a prepared corpus: path, seq_len, ...) and train.* as in `leanbert pretrain`
  task:    distill.intermediate_epochs (3), distill.intermediate_lr (1e-4), distill.prediction_epochs (3),
           distill.prediction_lr (5e-5): CPU-sized; the paper uses 10 epochs, then 3 at lr 3e-5.
           distill.temperature (1), distill.hard_label_weight (0); train.* and data.* as in finetune,
           except train.lr and train.epochs (set per step above)
  data.label_map       task: which teacher label each task label is, when their names differ (a teacher
                       fine-tuned on 0/1, a task labelled neg/pos): data.label_map=neg:0,pos:1
--print-config shows the resolved config with the expanded list of matches, without training.

examples:
  leanbert distill --stage general --teacher minilm --data runs/data-minilm --out runs/gd \\
      train.max_steps=2000 train.batch_size=32 data.seq_len=128
  leanbert distill --stage task --teacher runs/ft-sst2 --task sst2 --data ../shared/data/glue --out runs/kd \\
      student.init=runs/gd
  leanbert distill --stage task --teacher runs/ft-few --task custom --train few.tsv --dev dev.tsv \\
      --text-columns sentence --label-column label --unlabeled raw.txt --out runs/kd-few \\
      student.init=teacher-layers distill.intermediate_epochs=0 distill.hard_label_weight=0.5
  leanbert distill --stage task --teacher runs/ft-sst2 --task sst2 --data ../shared/data/glue --out runs/kd3 \\
      student.init=teacher-layers --print-config
"""


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "distill", help="distil a teacher into a smaller student (TinyBERT, general and task stages)",
        description="Transformer distillation (TinyBERT): a frozen teacher, a student, layer matches.",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG)
    parser.add_argument("--stage", required=True, choices=("general", "task"), help="which stage to run")
    parser.add_argument("--teacher", metavar="TEACHER",
                        help="teacher model directory (general --resume reads it from RUN/config.yaml)")
    add_task_arguments(parser, required=False)
    parser.add_argument("--unlabeled", action="append", default=[], metavar="FILE",
                        help="task: text without labels that the teacher labels (repeatable): .tsv/.csv/.jsonl "
                             "with the task's text columns, or plain text, one example (pair: two "
                             "tab-separated texts) per line")
    parser.add_argument("--out", required=True, metavar="OUT_DIR", help="run directory (general) or output "
                        "directory (task)")
    parser.add_argument("--config", metavar="FILE.yaml", help="a YAML file with the groups below")
    parser.add_argument("--resume", action="store_true", help="general: continue the run in --out")
    parser.add_argument("--overwrite", action="store_true", help="task: replace an existing OUT_DIR")
    parser.add_argument("--print-config", action="store_true", help="show the resolved config and exit")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="student.*, model.*, distill.*, "
                        "data.*, train.* settings")
    parser.set_defaults(func=run)


def _check_overrides(overrides: list[str]) -> None:
    from leanbert.errors import UserError

    for item in overrides:
        if "=" not in item:
            raise UserError(f"unexpected argument {item!r}: settings look like key=value (e.g. train.lr=1e-4)")


def run(args) -> int:
    _check_overrides(args.overrides)
    if args.stage == "general":
        return run_general(args)
    return run_task(args)


def _print_yaml(data) -> None:
    import yaml

    print(yaml.safe_dump(data, sort_keys=False), end="")


def run_general(args) -> int:
    from pathlib import Path

    from leanbert.config import load_config_file
    from leanbert.distill.config import load_general_config
    from leanbert.distill.run import distill_general, general_config_dict, saved_teacher
    from leanbert.errors import UserError

    if args.task or args.train or args.dev or args.unlabeled:
        raise UserError("--task/--train/--dev/--unlabeled belong to --stage task; --stage general reads --data "
                        "PREPARED")
    saved = None
    out = Path(args.out)
    if args.resume and (out / "config.yaml").is_file():
        saved = load_config_file(out / "config.yaml")
    teacher = args.teacher or (saved_teacher(out) if args.resume else None)
    if teacher is None:
        raise UserError("--teacher is required (a pretrained model directory)")
    if args.resume and saved is not None and args.config is None:
        base_overrides = [f"data.path={args.data}"] if args.data else []
        config = load_general_config(None, base_overrides + args.overrides, base=general_config_dict(saved))
    else:
        if not args.data and not any(o.startswith("data.path=") for o in args.overrides):
            raise UserError("--data PREPARED is required: a corpus `leanbert prepare` made with the teacher's "
                            "tokenizer")
        config = load_general_config(args.config, ([f"data.path={args.data}"] if args.data else [])
                                     + args.overrides)
    if args.print_config:
        from leanbert.distill.config import GENERAL_FEATURES

        return print_resolved(config, teacher, GENERAL_FEATURES, [], 2, {})
    result = distill_general(config, teacher, out, resume=args.resume, saved_config=saved,
                             progress=not args.quiet)
    if result.model_dir is not None:
        print(f"student after {result.loop.step} steps -> {result.model_dir}")
    return 0


def print_resolved(config, teacher, features, heads: list[str], num_labels: int, extra: dict) -> int:
    """The resolved config with the matches expanded for this teacher and student, as YAML on stdout."""
    import shutil
    import tempfile
    from pathlib import Path

    from leanbert.distill.config import resolved_matches, with_matches
    from leanbert.distill.student import student_config
    from leanbert.finetune.source import resolve_model_dir
    from leanbert.model_dir import read_model_config

    work = Path(tempfile.mkdtemp(prefix=".leanbert-distill-"))
    try:
        log = lambda *a, **k: print(*a, **k, file=sys.stderr)  # noqa: E731 - stdout holds the YAML
        teacher_config, _ = read_model_config(resolve_model_dir(teacher, work / "teacher", log=log))
        shape = student_config(config.student.init, teacher=teacher_config, heads=heads, num_labels=num_labels,
                               preset=config.student.preset, overrides=config.model,
                               keep_every=config.student.keep_every, work=work, log=log)
        matches = resolved_matches(config.distill, features, shape.num_layers, teacher_config.num_layers)
        _print_yaml({"teacher": str(teacher), **extra, **with_matches(config.to_dict(), matches)})
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def run_task(args) -> int:
    from leanbert.distill.config import load_task_config
    from leanbert.distill.run import distill_task
    from leanbert.errors import UserError

    if not args.teacher:
        raise UserError("--teacher is required (a model fine-tuned on the task: `leanbert finetune`'s OUT_DIR)")
    if not args.task:
        raise UserError("--task is required with --stage task (a GLUE task name, custom, or a task type such "
                        "as qa, ner, multiple-choice)")
    if args.resume:
        raise UserError("--resume is for --stage general; a task stage is short: run it again")
    from leanbert.tasks import get_task_type

    task = load_task(args)
    task_type = get_task_type(task.kind)
    config = load_task_config(task.spec.recipe, args.config, args.overrides, task_type.data_config)
    if args.print_config:
        from leanbert.distill.config import TASK_FEATURES

        num_labels = task_type.head_options(task.spec).get("num_labels", 2)
        return print_resolved(config, args.teacher, TASK_FEATURES, [task_type.head], num_labels,
                              {"task": task.spec.name})
    result = distill_task(args.teacher, task, args.out, config, overwrite=args.overwrite,
                          progress=not args.quiet, unlabeled=args.unlabeled)
    if not result.is_main:
        return 0
    metrics = result.metrics
    several = len(metrics["seeds"]) > 1
    parts = []
    for name in metrics["metric_names"]:
        value = metrics[name + "_mean"] if several else metrics[name]
        teacher = metrics["teacher_metrics"][name]
        parts.append(f"{name} {value:.4f} (teacher {teacher:.4f})")
    mix = metrics["training_rows"]
    print(f"{metrics['task']} dev: " + ", ".join(parts) + f" -> {args.out} (trained on {mix['labelled']:,} "
          f"labelled + {mix['unlabeled']:,} unlabeled rows)")
    return 0
