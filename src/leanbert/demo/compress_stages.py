"""The stages of ``leanbert demo`` (compress.py runs them in order), each through the library function behind
its command, so report.md's commands redo them."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from leanbert.demo.compress_settings import CompressSettings
from leanbert.demo.data import rotten_tomatoes, write_tsv
from leanbert.demo.few_labels import split_labels, write_split
from leanbert.demo.latency import batch1_latency_ms, onnx_runner, torch_runner
from leanbert.distill.augment import AugmentConfig, Augmenter, augment_file
from leanbert.distill.config import load_task_config
from leanbert.distill.run import distill_task
from leanbert.distill.student import build_student
from leanbert.export.onnx import export_onnx
from leanbert.finetune.run import finetune
from leanbert.finetune.task_job import TaskJobResult
from leanbert.interop.hf import export_to_hf
from leanbert.model_dir import load_model, save_model
from leanbert.predict import predict_file
from leanbert.tasks.encode import PairEncoder
from leanbert.tasks.glue import Example, TaskData
from leanbert.tasks.sequence_data import load_task_data

Log = Callable[[str], Any]
LATENCY_THREADS = 1  # batch-1 latency is measured with one thread per model (PyTorch and onnxruntime)


@dataclass
class DemoData:
    """The demo's files and the labelled task (labelled training snippets + dev)."""

    task: TaskData
    train_file: Path  # the labelled snippets
    dev_file: Path
    unlabeled_file: Path | None  # the other training snippets as plain text (few-label setting)
    counts: dict[str, Any]  # train, labelled, unlabeled, dev, majority
    dev_labels: list[str]


def _custom_task(train: Path, dev: Path) -> TaskData:
    return load_task_data("custom", train=train, dev=dev, text_columns="sentence", label_column="label")


def prepare_data(s: CompressSettings, data_dir: Path) -> DemoData:
    """The snippets, the seeded train/dev split and the labelled/unlabeled split of the training part."""
    reviews = rotten_tomatoes(seed=s.seed)
    if s.max_reviews:
        n_dev = s.max_reviews // 4
        reviews.train, reviews.dev = reviews.train[: s.max_reviews - n_dev], reviews.dev[:n_dev]
    data_dir.mkdir(parents=True, exist_ok=True)
    write_tsv(data_dir / "dev.tsv", reviews.dev)
    split = split_labels(reviews.train, s.labels, s.seed)
    labelled, pool = write_split(split, data_dir)
    labels = [label for _, label in reviews.dev]
    counts = {"train": len(reviews.train), "labelled": len(split.labelled), "unlabeled": len(split.unlabeled),
              "dev": len(reviews.dev), "majority": max(labels.count("pos"), labels.count("neg")) / len(labels)}
    return DemoData(_custom_task(labelled, data_dir / "dev.tsv"), labelled, data_dir / "dev.tsv", pool, counts,
                    labels)


def common_args(s: CompressSettings) -> list[str]:
    return [f"train.batch_size={s.batch_size}", f"data.max_seq_len={s.max_seq_len}", "train.device=cpu"]


def seed_list(first: int, count: int) -> str:
    return "[" + ",".join(str(first + i) for i in range(count)) + "]"


def train_teacher(s: CompressSettings, minilm: Path, out: Path, data: DemoData, log: Log) -> TaskJobResult:
    """MiniLM fine-tuned on the labelled snippets. Its step-0 score (a random head) says nothing and costs a
    6-layer pass over dev, so it is skipped."""
    args = [f"train.epochs={s.teacher_epochs}", f"train.lr={s.teacher_lr}", f"train.seeds=[{s.seed}]",
            "train.eval_at_start=false", *common_args(s)]
    return finetune(minilm, data.task, out, args, log=log)


def augment_labelled(s: CompressSettings, data: DemoData, glove) -> tuple[Path, int]:
    """GloVe variants of the labelled snippets (a variant keeps its snippet's label): (file, rows)."""
    augmented = data.train_file.with_name("train-augmented.tsv")
    summary = augment_file(data.train_file, augmented,
                           Augmenter(AugmentConfig(num_augmented=s.variants, seed=s.seed), glove),
                           ["sentence"], "tsv", progress=True)
    return augmented, summary.examples + summary.variants


@dataclass
class StudentRun:
    result: TaskJobResult
    rows: int  # training rows: labelled (+ variants) + unlabeled
    steps: int
    epochs: float


def distill_student(s: CompressSettings, teacher: TaskJobResult, teacher_dir: Path, out: Path, data: DemoData,
                    labelled_file: Path, labelled_rows: int, log: Log) -> StudentRun:
    """The teacher's layers keep_every, 2 keep_every, ... distilled on the labelled rows (soft + gold loss)
    and the unlabeled pool (the teacher's soft targets alone) for ``student_steps`` batches."""
    rows = labelled_rows + data.counts["unlabeled"]
    epochs = s.student_steps / math.ceil(rows / s.batch_size)  # distill counts epochs of the mix
    steps = max(1, round(epochs * math.ceil(rows / s.batch_size)))
    args = ["student.init=teacher-layers", f"student.keep_every={s.keep_every}", "distill.intermediate_epochs=0",
            f"distill.prediction_epochs={epochs!r}", f"distill.prediction_lr={s.student_lr}",
            f"distill.temperature={s.temperature}", f"distill.hard_label_weight={s.hard_label_weight}",
            f"train.seeds={seed_list(s.seed, s.seeds)}", *common_args(s)]
    task = _custom_task(labelled_file, data.dev_file)
    config = load_task_config(task.spec.recipe, None, args)
    metrics = {name: teacher.metrics[name] for name in teacher.metrics["metric_names"]}
    unlabeled = [data.unlabeled_file] if data.unlabeled_file is not None else []
    result = distill_task(teacher_dir, task, out, config, log=log, teacher_metrics=metrics, unlabeled=unlabeled)
    return StudentRun(result, rows, steps, epochs)


def control_epochs(s: CompressSettings, data: DemoData, steps: int) -> float:
    """The label-only controls' epochs for ``steps`` batches of the labelled snippets."""
    return steps / math.ceil(data.counts["labelled"] / s.batch_size)


def train_controls(s: CompressSettings, teacher_dir: Path, paths: dict[str, Path], data: DemoData, steps: int,
                   log: Log) -> dict[str, TaskJobResult]:
    """The student's network on the labels alone: from the student's starting weights (a new head) for the
    student's steps and for ``long_control_factor`` times as many, and from random weights."""
    teacher_model = load_model(teacher_dir, map_location="cpu")
    initial = build_student("teacher-layers", teacher=teacher_model, teacher_dir=teacher_dir, heads=["classifier"],
                            num_labels=2, preset="tinybert-4l-312d", overrides={}, keep_every=s.keep_every,
                            seed=s.seed, work=paths["control-init"].parent)
    save_model(initial, paths["control-init"], tokenizer_dir=teacher_dir)
    del teacher_model, initial
    seeds = seed_list(s.seed, s.seeds)

    def run(folder: str, epochs: float, seed_text: str, scratch: bool = False) -> TaskJobResult:
        args = [f"train.epochs={epochs:.6g}", f"train.lr={s.student_lr}", f"train.seeds={seed_text}",
                *common_args(s)]
        return finetune(paths["control-init"], data.task, paths[folder], args, from_scratch=scratch, log=log)

    return {"control": run("control", control_epochs(s, data, steps), seeds),
            "control_long": run("control-long", control_epochs(s, data, steps * s.long_control_factor), seeds),
            "control_random": run("control-random", control_epochs(s, data, steps),
                                  seed_list(s.seed, s.random_seeds), scratch=True)}


def export_and_predict(student_dir: Path, paths: dict[str, Path], out: Path, data: DemoData, log: Log) -> float:
    """The student to Hugging Face and ONNX int8; ``leanbert predict`` over dev with the int8 model: its
    accuracy."""
    export_to_hf(student_dir, paths["student-hf"])
    export_onnx(student_dir, paths["student-onnx-int8"], quantize="int8", log=log)
    predictions = out / "student-onnx-int8-dev-predictions.tsv"
    predict_file(paths["student-onnx-int8"], str(data.dev_file), str(predictions), text_columns="sentence",
                 progress=False, log=log)
    predicted = [line.split("\t")[1] for line in predictions.read_text(encoding="utf-8").splitlines()[1:]]
    return sum(p == g for p, g in zip(predicted, data.dev_labels)) / len(data.dev_labels)


def measure_latency(s: CompressSettings, paths: dict[str, Path], data: DemoData) -> dict[str, float]:
    """Batch-1 latency (ms) of teacher, student, control and the int8 student, alternating, one thread: on a
    busy machine two threads per call made PyTorch's batch-1 calls 7x slower (threads waiting on each other)
    while onnxruntime's were not, which distorts every ratio."""
    encoder = PairEncoder.from_dir(paths["teacher"] / "model", s.max_seq_len)
    rows = data.dev_file.read_text(encoding="utf-8").splitlines()[1:]
    sentences = encoder.encode([Example(line.split("\t", 1)[0], None, 0) for line in rows if line
                                ][: s.latency_sentences])
    train_threads = torch.get_num_threads()
    torch.set_num_threads(LATENCY_THREADS)
    try:
        return batch1_latency_ms({"teacher": torch_runner(paths["teacher"] / "model"),
                                  "student": torch_runner(paths["student"] / "model"),
                                  "control": torch_runner(paths["control"] / "model"),
                                  "student_onnx_int8": onnx_runner(paths["student-onnx-int8"], LATENCY_THREADS)},
                                 sentences)
    finally:
        torch.set_num_threads(train_threads)
