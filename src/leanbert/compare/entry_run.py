"""Run one entry of a comparison into ``DIR/entries/NAME`` (its own lock: one process per entry).

::

    DIR/entries/NAME/
      .leanbert-lock              held while a process runs this entry
      seed-S/pretrain/            a `leanbert pretrain` run directory (resumed when interrupted)
      seed-S/finetune-TASK/       a `leanbert finetune` output (appears complete or not at all)
      seed-S/probe-TASK.json      the linear probe's dev accuracies
      result.json                 written last: the entry is finished and is never run again

Every stage is skipped when its output exists, so a killed entry continues where it stopped: pretraining
resumes from its newest checkpoint with ``--resume`` semantics (same losses as an uninterrupted run).
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from leanbert.atomic import write_json_atomically
from leanbert.compare.plan import EntryPlan
from leanbert.compare.spec import CompareSpec, TaskRef
from leanbert.config import load_config_file
from leanbert.finetune.run import finetune
from leanbert.finetune.source import resolve_model_dir
from leanbert.model_dir import load_model
from leanbert.objectives.registry import objective_spec
from leanbert.pretrain import CONFIG_FILE, pretrain
from leanbert.probe import last_layer_key, load_probe_inputs, majority_accuracy, probe
from leanbert.run_lock import lock_run_dir
from leanbert.train.checkpoint import latest_checkpoint
from leanbert.train.metrics import read_metrics

RESULT = "result.json"


def entry_dir(out_dir: Path, name: str) -> Path:
    return out_dir / "entries" / name


def is_finished(out_dir: Path, name: str) -> bool:
    return (entry_dir(out_dir, name) / RESULT).is_file()


def pretrain_seed(plan: EntryPlan, seed: int, run_dir: Path, progress: bool) -> None:
    """Pretrain (or resume, or skip when finished) one seed of the entry."""
    if (run_dir / "model").is_dir():
        return
    resume = run_dir.exists() and (latest_checkpoint(run_dir) is not None or (run_dir / CONFIG_FILE).exists())
    saved = load_config_file(run_dir / CONFIG_FILE) if resume and (run_dir / CONFIG_FILE).is_file() else None
    if resume:
        print(f"leanbert compare: {plan.name} seed {seed}: resuming {run_dir}", file=sys.stderr)
    pretrain(plan.configs[seed], run_dir, resume=resume, saved_config=saved, progress=progress)


def finetune_seed(run_dir: Path, task: TaskRef, out: Path, progress: bool) -> dict[str, Any]:
    """Fine-tune the pretrained run on ``task`` with the task's seeds (skipped when ``out`` exists)."""
    if not (out / "metrics.json").is_file():
        overrides = [*task.overrides, f"train.seeds={list(task.seeds)}"]
        finetune(run_dir, task.load(), out, overrides, progress=progress,
                 log=lambda *a: print(*a, file=sys.stderr))
    return json.loads((out / "metrics.json").read_text(encoding="utf-8"))


def per_seed_scores(metrics: dict[str, Any]) -> tuple[str, list[float]]:
    """(main metric, its value for every fine-tuning seed) from a finetune metrics.json."""
    main = metrics["main_metric"]
    if "per_seed" in metrics:
        return main, [float(m[main]) for m in metrics["per_seed"].values()]
    return main, [float(metrics[main])]


def probe_seed(run_dir: Path, task: TaskRef, out: Path) -> dict[str, Any]:
    """Linear probe of the pretrained encoder's frozen features (skipped when ``out`` exists)."""
    if not out.is_file():
        model, encoder, train, dev = load_probe_inputs(run_dir, task.load(), task.max_train, task.max_seq_len)
        scores = probe(model, encoder, train, dev)
        write_json_atomically(out, {"task": task.task, "score": scores[last_layer_key(model)],
                                    "feature": last_layer_key(model), "majority": majority_accuracy(dev),
                                    "all_features": scores, "num_train": len(train), "num_dev": len(dev)})
    return json.loads(out.read_text(encoding="utf-8"))


def parameter_count(run_dir: Path) -> int:
    """Parameters of the network that is kept and fine-tuned (ELECTRA/MC-BERT: the discriminator); shared
    layers count once."""
    with tempfile.TemporaryDirectory() as tmp:
        model = load_model(resolve_model_dir(run_dir, Path(tmp), log=lambda *_: None))
    return sum(p.numel() for p in model.parameters())


def pretraining_record(plan: EntryPlan, seed: int, run_dir: Path) -> dict[str, Any]:
    """Steps, tokens, FLOPs, minutes and the validation curve (``val_<compare_metric>`` of the objective's
    registry entry) of one finished pretraining run."""
    records = read_metrics(run_dir / "metrics.jsonl")
    train_lines = [r for r in records if "elapsed_s" in r]
    budget = plan.budget

    def elapsed_at(step: int) -> float:
        """Wall seconds at ``step``, interpolated between the training lines around it."""
        before = [r for r in train_lines if r["step"] <= step]
        after = [r for r in train_lines if r["step"] >= step]
        if not before:
            return 0.0 if not after else after[0]["elapsed_s"] * step / max(after[0]["step"], 1)
        if not after or after[0]["step"] == before[-1]["step"]:
            return float(before[-1]["elapsed_s"])
        a, b = before[-1], after[0]
        return a["elapsed_s"] + (b["elapsed_s"] - a["elapsed_s"]) * (step - a["step"]) / (b["step"] - a["step"])

    key = f"val_{objective_spec(plan.configs[seed].objective.name).compare_metric}"  # the objective's own
    curve = [{"step": r["step"], "flops": budget.flops_at(r["step"]), "elapsed_s": round(elapsed_at(r["step"]), 3),
              "valid_loss": r[key]} for r in records if key in r]
    last = train_lines[-1] if train_lines else {"step": 0, "tokens": 0, "elapsed_s": 0.0}
    return {"seed": seed, "steps": last["step"], "tokens": last["tokens"], "flops": budget.flops_at(last["step"]),
            "flops_real_tokens": budget.flops_per_token * last["tokens"],
            "minutes": last["elapsed_s"] / 60.0, "final_valid_loss": curve[-1]["valid_loss"] if curve else None,
            "curve": curve}


def run_entry(spec: CompareSpec, plan: EntryPlan, out_dir: Path, progress: bool = True,
              on_pretrained: Callable[[float], None] | None = None) -> dict[str, Any]:
    """Run (or continue) the entry and write its result.json; returns it. ``on_pretrained(flops)`` is called
    after each pretraining seed (the overall progress bar)."""
    directory = entry_dir(out_dir, plan.name)
    if is_finished(out_dir, plan.name):
        return json.loads((directory / RESULT).read_text(encoding="utf-8"))
    with lock_run_dir(directory):
        runs, downstream, probes = [], {}, {}
        for seed in spec.seeds:
            run_dir = directory / f"seed-{seed}" / "pretrain"
            pretrain_seed(plan, seed, run_dir, progress)
            record = pretraining_record(plan, seed, run_dir)
            runs.append(record)
            if on_pretrained is not None:
                on_pretrained(record["flops"])
            for task in spec.finetune:
                metrics = finetune_seed(run_dir, task, directory / f"seed-{seed}" / f"finetune-{task.name}",
                                        progress)
                metric, scores = per_seed_scores(metrics)
                downstream.setdefault(task.name, {"metric": metric, "values": []})["values"] += scores
            for task in spec.probe:
                result = probe_seed(run_dir, task, directory / f"seed-{seed}" / f"probe-{task.name}.json")
                probes.setdefault(task.name, {"metric": f"probe accuracy ({result['feature']})", "values": [],
                                              "majority": result["majority"]})["values"].append(result["score"])
        result = {"name": plan.name, "overrides": plan.overrides,
                  "objective": plan.configs[spec.seeds[0]].objective.name,
                  "flops_per_token": plan.budget.flops_per_token, "tokens_per_step": plan.budget.tokens_per_step,
                  "max_steps": plan.budget.max_steps, "eval_every": plan.budget.eval_every,
                  "parameters": parameter_count(directory / f"seed-{spec.seeds[0]}" / "pretrain"),
                  "runs": runs, "downstream": downstream, "probe": probes}
        write_json_atomically(directory / RESULT, result)
    return result
