"""From the entries' result.json files to the comparison's numbers: per-entry summaries, the steps each entry
needs to reach the baseline's final validation loss, and a verdict per entry against the baseline.

The verdict is ``leanbert.verdict.compare`` (the project's one rule) on the per-seed values: downstream scores
(every fine-tuning seed of every pretraining seed), probe accuracies, and the final validation MLM loss over
the pretraining seeds (negated: lower is better). With a single value on either side it is "cannot tell".
"""

from __future__ import annotations

import statistics
from typing import Any

from leanbert.verdict import RULE, compare

BASELINE = "baseline"
VALID_LOSS = "valid_loss"


def mean_std(values: list[float]) -> dict[str, Any]:
    """{mean, std (sample, None for one value), n}."""
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else None,
            "n": len(values)}


def first_reaching(curve: list[dict[str, Any]], target: float) -> dict[str, Any] | None:
    """The first validation point at or below ``target`` loss."""
    return next((p for p in curve if p["valid_loss"] is not None and p["valid_loss"] <= target), None)


def final_losses(result: dict[str, Any]) -> list[float]:
    return [r["final_valid_loss"] for r in result["runs"] if r["final_valid_loss"] is not None]


def verdict_of(values: list[float], base: list[float]) -> dict[str, Any]:
    outcome = compare(values, base)
    return {"outcome": outcome.outcome, "difference": outcome.difference,
            "standard_error": outcome.standard_error}


def entry_verdicts(result: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    """Metric -> verdict of ``result`` against the baseline's ``base`` (higher is better for every metric;
    the validation loss is negated)."""
    verdicts: dict[str, Any] = {}
    losses, base_losses = final_losses(result), final_losses(base)
    if losses and base_losses:
        verdicts[VALID_LOSS] = verdict_of([-x for x in losses], [-x for x in base_losses])
    for group in ("downstream", "probe"):
        for task, scores in result.get(group, {}).items():
            if task in base.get(group, {}):
                key = task if group == "downstream" else f"probe:{task}"
                verdicts[key] = verdict_of(scores["values"], base[group][task]["values"])
    return verdicts


def summarize_entry(result: dict[str, Any], base: dict[str, Any] | None, is_baseline: bool) -> dict[str, Any]:
    runs = result["runs"]
    summary: dict[str, Any] = {
        "objective": result["objective"], "parameters": result["parameters"],
        "flops": statistics.fmean(r["flops"] for r in runs),
        "flops_real_tokens": statistics.fmean(r["flops_real_tokens"] for r in runs),
        "minutes": statistics.fmean(r["minutes"] for r in runs),
        "steps": statistics.fmean(r["steps"] for r in runs),
        "tokens": statistics.fmean(r["tokens"] for r in runs),
        "flops_per_token": result["flops_per_token"], "max_steps": result["max_steps"],
        "pretraining_seeds": [r["seed"] for r in runs],
    }
    losses = final_losses(result)
    summary["final_valid_loss"] = statistics.fmean(losses) if losses else None
    summary["final_valid_loss_std"] = statistics.stdev(losses) if len(losses) > 1 else None
    summary["downstream"] = {task: {**mean_std(s["values"]), "metric": s["metric"], "values": s["values"]}
                             for task, s in result["downstream"].items()}
    summary["probe"] = {task: {**mean_std(s["values"]), "metric": s["metric"], "values": s["values"],
                               "majority": s["majority"]} for task, s in result["probe"].items()}
    summary["steps_to_baseline_loss"] = summary["flops_to_baseline_loss"] = None
    base_losses = final_losses(base) if base is not None else []
    if base_losses:
        target = statistics.fmean(base_losses)
        reached = [first_reaching(r["curve"], target) for r in runs]
        if all(p is not None for p in reached):  # every seed got there; else "not reached"
            summary["steps_to_baseline_loss"] = statistics.fmean(p["step"] for p in reached)
            summary["flops_to_baseline_loss"] = statistics.fmean(p["flops"] for p in reached)
    if is_baseline:
        summary["verdict"] = BASELINE
    elif base is not None:
        summary["verdict"] = entry_verdicts(result, base)
    else:
        summary["verdict"] = None  # the baseline has not finished yet
    return summary


def build_results(spec_dict: dict[str, Any], results: dict[str, dict[str, Any]], baseline: str,
                  order: list[str]) -> dict[str, Any]:
    """results.json: the budget, the rule, and ``entries: {name: {flops, minutes, steps, final_valid_loss,
    downstream: {task: {mean, std}}, verdict, ...}}`` for the finished entries (``unfinished`` lists the
    others)."""
    base = results.get(baseline)
    entries = {name: summarize_entry(results[name], base, name == baseline) for name in order if name in results}
    return {"budget": spec_dict["budget"], "baseline": baseline, "seeds": spec_dict["seeds"],
            "verdict_rule": RULE, "entries": entries, "unfinished": [n for n in order if n not in results],
            "curves": {name: [r["curve"] for r in results[name]["runs"]] for name in order if name in results}}
