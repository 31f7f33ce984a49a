"""Few-label distillation on SST-2: the demo's recipe at several numbers of labels (issue 27).

For each L: a seeded, stratified sample of L SST-2 training sentences keeps its labels, the next --pool
training sentences (labels dropped) are the unlabeled pool; all-MiniLM-L6-v2 is fine-tuned on the L labels
(the teacher); a 2-layer student of its layers 3 and 6 is distilled on the L labelled + pool sentences
(`leanbert distill --stage task --unlabeled`, gold-label weight 0.5 on the labelled rows); the control is the
same network from the same start trained on the L labels alone, for as many steps. Both are scored on the
872 dev sentences. L = all: every training sentence is labelled (capped by --all-rows), no pool.
One JSON line per (L, kind, seed) is appended to OUT/results.jsonl; --plot draws the L-curve from it.

  OMP_NUM_THREADS=2 python benchmarks/few_label_sst2.py runs/fewlabel-sst2 --labels 500 1000 2000 all \\
      --seeds 0 1 --pool 8000
  python benchmarks/few_label_sst2.py runs/fewlabel-sst2 --plot
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

COMMON = ["train.batch_size=32", "data.max_seq_len=64", "train.device=cpu"]


def sst2_rows(glue: Path) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    def read(name: str) -> list[tuple[str, str]]:
        lines = (glue / "SST-2" / name).read_text(encoding="utf-8").splitlines()[1:]
        return [(text, label) for text, label in (line.split("\t") for line in lines if line)]

    return read("train.tsv"), read("dev.tsv")


def write_data(out: Path, train, dev, labels: int, pool: int, all_rows: int, seed: int) -> tuple[Path, Path | None]:
    from leanbert.demo.data import write_tsv
    from leanbert.demo.few_labels import LabelSplit, split_labels, write_split

    folder = out / f"data-L{labels or 'all'}"
    folder.mkdir(parents=True, exist_ok=True)
    write_tsv(folder / "dev.tsv", dev)
    split = LabelSplit(train[:all_rows], []) if labels == 0 else split_labels(train, labels, seed)
    split.unlabeled = split.unlabeled[:pool]
    return write_split(split, folder)


def task_for(train_file: Path):
    from leanbert.tasks.sequence_data import load_task_data

    return load_task_data("custom", train=train_file, dev=train_file.with_name("dev.tsv"),
                          text_columns="sentence", label_column="label")


def run_level(args, minilm: Path, train, dev, labels: int) -> list[dict]:
    from leanbert.distill.config import load_task_config
    from leanbert.distill.run import distill_task
    from leanbert.finetune.run import finetune

    quiet = lambda message: None  # noqa: E731
    name = f"L{labels or 'all'}"
    labelled, pool = write_data(args.out, train, dev, labels, args.pool, args.all_rows, args.split_seed)
    task = task_for(labelled)
    n_labelled = len(task.train)
    n_pool = sum(1 for _ in pool.open(encoding="utf-8")) if pool else 0
    start = time.perf_counter()
    teacher = finetune(minilm, task, args.out / f"teacher-{name}", [
        f"train.epochs={args.teacher_epochs}", "train.lr=1e-4", "train.seeds=[0]", "train.eval_at_start=false",
        *COMMON], log=quiet, overwrite=True)
    lines = [{"labels": name, "kind": "teacher", "seed": 0, "accuracy": teacher.metrics["accuracy"],
              "seconds": round(time.perf_counter() - start, 1), "labelled": n_labelled, "unlabeled": n_pool}]
    seeds = f"train.seeds=[{','.join(map(str, args.seeds))}]"
    rows = n_labelled + n_pool
    epochs = args.steps / math.ceil(rows / 32)
    config = load_task_config(task.spec.recipe, None, [
        "student.init=teacher-layers", "student.keep_every=3", "distill.intermediate_epochs=0",
        f"distill.prediction_epochs={epochs!r}", "distill.prediction_lr=1e-3", "distill.hard_label_weight=0.5",
        seeds, *COMMON])
    teacher_metrics = {"accuracy": teacher.metrics["accuracy"]}
    for kind in ("student", "control"):
        start = time.perf_counter()
        if kind == "student":
            result = distill_task(args.out / f"teacher-{name}" / "model", task, args.out / f"student-{name}",
                                  config, overwrite=True, progress=False, log=quiet,
                                  teacher_metrics=teacher_metrics, unlabeled=[pool] if pool else [])
        else:
            init = control_init(args.out / f"teacher-{name}" / "model", args.out / f"control-init-{name}")
            result = finetune(init, task, args.out / f"control-{name}", [
                f"train.epochs={args.steps / math.ceil(n_labelled / 32):.6g}", "train.lr=1e-3", seeds, *COMMON],
                log=quiet, overwrite=True)
        per_seed = result.metrics.get("per_seed") or {str(args.seeds[0]): {"accuracy": result.metrics["accuracy"]}}
        for seed, metrics in per_seed.items():
            lines.append({"labels": name, "kind": kind, "seed": int(seed), "accuracy": metrics["accuracy"],
                          "seconds": round(time.perf_counter() - start, 1), "labelled": n_labelled,
                          "unlabeled": n_pool if kind == "student" else 0, "steps": args.steps})
    return lines


def control_init(teacher_dir: Path, folder: Path) -> Path:
    """The student's starting point (its teacher's layers 3 and 6, a new head) for the label-only control,
    as the demo builds it: student and control start from the same encoder weights."""
    from leanbert.distill.student import build_student
    from leanbert.model_dir import load_model, save_model

    teacher = load_model(teacher_dir, map_location="cpu")
    student = build_student("teacher-layers", teacher=teacher, teacher_dir=teacher_dir, heads=["classifier"],
                            num_labels=2, preset="tinybert-4l-312d", overrides={}, keep_every=3, seed=0,
                            work=folder.parent)
    save_model(student, folder, tokenizer_dir=teacher_dir)
    return folder


def plot(out: Path) -> None:
    from leanbert.plots import pyplot, save_figure

    lines = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    levels = sorted({r["labels"] for r in lines}, key=lambda n: (n == "Lall", int(n[1:]) if n != "Lall" else 0))
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for kind, color in (("teacher", "tab:blue"), ("student", "tab:green"), ("control", "tab:gray")):
        means = []
        for level in levels:
            runs = [r["accuracy"] for r in lines if r["labels"] == level and r["kind"] == kind]
            ax.scatter([levels.index(level)] * len(runs), runs, color=color, alpha=0.4, s=14)
            means.append(sum(runs) / len(runs) if runs else float("nan"))
        ax.plot(range(len(levels)), means, "o-", color=color, label=kind)
    ax.set_xticks(range(len(levels)), [n[1:] for n in levels])
    ax.set_xlabel("labelled SST-2 training sentences")
    ax.set_ylabel("dev accuracy (dots: seeds)")
    ax.set_title("SST-2: distilled student vs label-only control")
    ax.legend()
    fig.tight_layout()
    save_figure(fig, out / "few_label_sst2.png")
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--glue", type=Path, default=Path("../shared/data/glue"))
    parser.add_argument("--labels", nargs="+", default=["500", "1000", "2000", "all"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    parser.add_argument("--pool", type=int, default=8000, help="unlabeled sentences (default 8000)")
    parser.add_argument("--all-rows", type=int, default=67349, help="rows of the L=all setting")
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--teacher-epochs", type=float, default=3.0)
    parser.add_argument("--split-seed", type=int, default=0)
    parser.add_argument("--dev-rows", type=int, default=0, help="score on the first N dev sentences (0 = all)")
    parser.add_argument("--plot", action="store_true", help="only draw OUT/few_label_sst2.png")
    args = parser.parse_args()
    if args.plot:
        plot(args.out)
        return
    from leanbert.demo.compress import minilm_dir
    from leanbert.demo.few_labels import parse_labels
    from leanbert.interop.hf import import_from_hf

    args.out.mkdir(parents=True, exist_ok=True)
    minilm = args.out / "minilm"
    if not minilm.is_dir():
        import_from_hf(minilm_dir(), minilm)
    train, dev = sst2_rows(args.glue)
    dev = dev[: args.dev_rows] if args.dev_rows else dev
    for text in args.labels:
        for line in run_level(args, minilm, train, dev, parse_labels(text)):
            print(json.dumps(line), flush=True)
            with (args.out / "results.jsonl").open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(line) + "\n")
    plot(args.out)


if __name__ == "__main__":
    main()
