"""Student recipes for `leanbert demo`, measured on a finished demo's teacher and data (issue 17's search).

Each recipe is a distillation of the demo's 2-layer student (teacher layers 3 and 6) or a label-only control
from the same start (OUT/control-init), trained for a number of steps at batch 32, max length 64, and scored
on the demo's dev set. One line of JSON per recipe is appended to OUT/recipes.jsonl.

  leanbert demo --out runs/demo                                   # once: the teacher, data and control-init
  OMP_NUM_THREADS=1 python benchmarks/demo_recipes.py runs/demo kd-lr1e3 ctl-lr1e3 --seeds 0
  python benchmarks/demo_recipes.py runs/demo --list
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

# name -> (kind, training file, steps, keys); kind "kd" = leanbert distill --stage task, "ctl" = finetune
BASE_KD = ["student.init=teacher-layers", "student.keep_every=3", "distill.intermediate_epochs=0"]
RECIPES = {
    "kd-base": ("kd", "train-augmented.tsv", 100, ["distill.prediction_lr=3e-4"]),
    "kd-hl5": ("kd", "train-augmented.tsv", 100, ["distill.prediction_lr=3e-4", "distill.hard_label_weight=0.5"]),
    "kd-noaug": ("kd", "train.tsv", 100, ["distill.prediction_lr=3e-4"]),
    "kd-lr1e3": ("kd", "train-augmented.tsv", 100, ["distill.prediction_lr=1e-3"]),
    "kd-T2-hl5-lr1e3": ("kd", "train-augmented.tsv", 100, ["distill.prediction_lr=1e-3", "distill.temperature=2",
                                                           "distill.hard_label_weight=0.5"]),
    "kd-hl5-lr1e3-s300": ("kd", "train-augmented.tsv", 300, ["distill.prediction_lr=1e-3",
                                                             "distill.hard_label_weight=0.5"]),
    "kd-hl5-lr1e3-s150": ("kd", "train-augmented.tsv", 150, ["distill.prediction_lr=1e-3",
                                                             "distill.hard_label_weight=0.5"]),
    "ctl": ("ctl", "train.tsv", 100, ["train.lr=3e-4"]),
    "ctl-lr1e3-s150": ("ctl", "train.tsv", 150, ["train.lr=1e-3"]),
    "ctl-lr1e3": ("ctl", "train.tsv", 100, ["train.lr=1e-3"]),
    "ctl-lr1e3-s300": ("ctl", "train.tsv", 300, ["train.lr=1e-3"]),
}
COMMON = ["train.batch_size=32", "data.max_seq_len=64", "train.device=cpu"]


def run_recipe(demo: Path, name: str, seeds: list[int], work: Path) -> dict:
    from leanbert.distill.config import load_task_config
    from leanbert.distill.run import distill_task
    from leanbert.finetune.run import finetune
    from leanbert.tasks.sequence_data import load_task_data

    kind, train, steps, keys = RECIPES[name]
    task = load_task_data("custom", train=demo / "data" / train, dev=demo / "data" / "dev.tsv",
                          text_columns="sentence", label_column="label")
    rows = sum(1 for _ in (demo / "data" / train).open(encoding="utf-8")) - 1
    epochs = steps / math.ceil(rows / 32)  # the fraction of the training file that makes `steps` batches
    seed_key = f"train.seeds=[{','.join(map(str, seeds))}]"
    start = time.perf_counter()
    quiet = lambda message: None  # noqa: E731
    if kind == "kd":
        config = load_task_config(task.spec.recipe, None, [*BASE_KD, f"distill.prediction_epochs={epochs!r}",
                                                           *COMMON, *keys, seed_key])
        result = distill_task(demo / "teacher" / "model", task, work / name, config, overwrite=True,
                              progress=False, log=quiet)
    else:
        result = finetune(demo / "control-init", task, work / name,
                          [f"train.epochs={epochs:.6g}", *COMMON, *keys, seed_key], overwrite=True, log=quiet)
    metrics = result.metrics
    accuracy = ([run["accuracy"] for run in metrics["per_seed"].values()] if "per_seed" in metrics
                else [metrics["accuracy"]])
    return {"name": name, "kind": kind, "train": train, "steps": steps, "keys": keys, "seeds": seeds,
            "accuracy": accuracy, "seconds": round(time.perf_counter() - start)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("demo", type=Path, help="a finished `leanbert demo` output folder")
    parser.add_argument("recipes", nargs="*", help="recipe names (--list shows them)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--list", action="store_true", help="print the recipes and exit")
    args = parser.parse_args()
    if args.list or not args.recipes:
        for name, (kind, train, steps, keys) in RECIPES.items():
            print(f"{name:20s} {kind:3s} {train:20s} {steps:4d} steps  {' '.join(keys)}")
        return
    unknown = [name for name in args.recipes if name not in RECIPES]
    if unknown:
        parser.error(f"unknown recipe {unknown[0]!r}; --list shows them")
    for name in args.recipes:
        row = run_recipe(args.demo, name, args.seeds, args.demo / "recipes")
        print(json.dumps(row), flush=True)
        with (args.demo / "recipes.jsonl").open("a", encoding="utf-8") as out:
            out.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
