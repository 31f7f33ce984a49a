"""DIR/report.md, DIR/results.json and the PNG plots (matplotlib's Agg backend: no display needed).

Plots: ``valid_loss.png`` (validation MLM loss against training FLOPs and against wall time, every entry and
pretraining seed on one figure) and ``downstream.png`` (each entry's downstream and probe scores, mean with
error bars of one standard deviation over the seeds).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from leanbert.atomic import write_json_atomically, write_text_atomically
from leanbert.compare.results import BASELINE, VALID_LOSS
from leanbert.plots import pyplot, save_figure
from leanbert.verdict import RULE

LOSS_PLOT, SCORES_PLOT = "valid_loss.png", "downstream.png"


def plot_losses(results: dict[str, Any], path: Path) -> None:
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.5))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (name, curves) in enumerate(results["curves"].items()):
        color = colors[i % len(colors)]
        for j, curve in enumerate(curves):
            label = name if j == 0 else None
            axes[0].plot([p["flops"] for p in curve], [p["valid_loss"] for p in curve], "o-", ms=3, color=color,
                         label=label)
            axes[1].plot([p["elapsed_s"] / 60 for p in curve], [p["valid_loss"] for p in curve], "o-", ms=3,
                         color=color, label=label)
    axes[0].set_xlabel("training FLOPs")
    axes[1].set_xlabel("wall time (minutes)")
    for ax, title in zip(axes, ("against compute", "against wall time")):
        ax.set_ylabel("validation MLM loss")
        ax.set_title(f"validation MLM loss {title}")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)


def score_panels(results: dict[str, Any]) -> list[tuple[str, str, dict[str, dict[str, Any]]]]:
    """(group, task, {entry: scores}) for every downstream task and probe."""
    panels = []
    for group in ("downstream", "probe"):
        tasks = {t for e in results["entries"].values() for t in e[group]}
        for task in sorted(tasks):
            panels.append((group, task, {n: e[group][task] for n, e in results["entries"].items()
                                         if task in e[group]}))
    return panels


def plot_scores(results: dict[str, Any], path: Path) -> None:
    panels = score_panels(results)
    plt = pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(max(5.0, 4.5 * len(panels)), 4.2), squeeze=False)
    for ax, (group, task, scores) in zip(axes[0], panels):
        names = list(scores)
        means = [scores[n]["mean"] for n in names]
        errors = [scores[n]["std"] or 0.0 for n in names]
        ax.bar(range(len(names)), means, yerr=errors, capsize=4, color="tab:blue", alpha=0.8)
        ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
        low = min(m - e for m, e in zip(means, errors))
        high = max(m + e for m, e in zip(means, errors))
        pad = max(0.02, 0.2 * (high - low))
        ax.set_ylim(low - pad, high + pad)
        metric = next(iter(scores.values()))["metric"]
        ax.set_title(f"{task} ({'probe' if group == 'probe' else 'fine-tuned'})")
        ax.set_ylabel(f"{metric}, mean ± std")
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)


def _number(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def _score(scores: dict[str, Any] | None) -> str:
    if not scores:
        return "-"
    text = f"{scores['mean']:.4f}"
    return text + (f" ± {scores['std']:.4f}" if scores["std"] is not None else "")


def verdict_text(verdict: Any) -> str:
    if verdict == BASELINE:
        return "baseline"
    if not verdict:
        return "-"
    return "; ".join(f"{metric}: {v['outcome']}" for metric, v in verdict.items())


def table_rows(results: dict[str, Any]) -> list[list[str]]:
    """The table the issue lists: entry, parameters, FLOPs, wall time, tokens, final validation loss, steps to
    the baseline's final loss, downstream mean ± std per task, and the verdict."""
    tasks = [(g, t) for g, t, _ in score_panels(results)]
    header = ["entry", "parameters", "FLOPs", "wall time", "tokens", "steps", "final valid loss",
              "steps to baseline loss"]
    header += [f"{t} ({'probe' if g == 'probe' else 'fine-tuned'})" for g, t in tasks] + ["verdict vs baseline"]
    rows = [header]
    for name, e in results["entries"].items():
        loss = _number(e["final_valid_loss"], ".4f")
        if e["final_valid_loss_std"] is not None:
            loss += f" ± {e['final_valid_loss_std']:.4f}"
        reach = "not reached" if e["steps_to_baseline_loss"] is None else f"{e['steps_to_baseline_loss']:.0f}"
        rows.append([name, f"{e['parameters'] / 1e6:.2f}M", f"{e['flops']:.3g}", f"{e['minutes']:.1f} min",
                     f"{e['tokens']:,.0f}", f"{e['steps']:.0f}", loss, reach]
                    + [_score(e[g].get(t)) for g, t in tasks] + [verdict_text(e["verdict"])])
    return rows


def markdown_table(rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(rows[0]) + " |", "|" + "|".join("---" for _ in rows[0]) + "|"]
    return "\n".join(out + ["| " + " | ".join(r) + " |" for r in rows[1:]])


def budget_text(budget: dict[str, float]) -> str:
    kind, value = next(iter(budget.items()))
    return {"flops": f"{value:.3g} training FLOPs per run", "minutes": f"{value:g} minutes of training per run",
            "steps": f"{value:.0f} optimizer steps per run"}[kind]


def report_markdown(results: dict[str, Any], spec_path: str) -> str:
    lines = [f"# leanbert compare: {spec_path}", "",
             f"Budget: {budget_text(results['budget'])}, identical for every entry; pretraining seeds "
             f"{results['seeds']}; baseline: `{results['baseline']}`.", ""]
    if results["unfinished"]:
        lines += [f"**Not finished yet:** {', '.join(results['unfinished'])} (run the same command again to "
                  "continue them).", ""]
    if results["entries"]:
        lines += [markdown_table(table_rows(results)), ""]
    lines += ["FLOPs are model FLOPs (`leanbert.flops`) of every network the objective trains (ELECTRA: generator "
              "+ discriminator; MC-BERT: the meta-controller too), plus what enabled add-ons declare (TNF: 0), over every token position of every step "
              "(batch x sequence length); results.json also holds the FLOPs over the real, unpadded tokens. "
              "Parameters are those of the network that is kept and fine-tuned (ELECTRA, MC-BERT: the "
              "discriminator). The validation loss is the metric the objective's registry entry names (compare_metric; "
              "the built-in objectives: the MLM loss of the network that has an MLM head): the "
              "model itself for MLM objectives, ELECTRA's generator and MC-BERT's controller otherwise (smaller "
              "networks: compare those entries on their downstream scores).", "",
              f"Verdicts (`leanbert/verdict.py`): {RULE}. `{VALID_LOSS}` compares the final validation losses "
              "over the pretraining seeds (lower is better); a task compares the fine-tuning scores of every "
              "fine-tuning seed of every pretraining seed.", "",
              f"![validation loss]({LOSS_PLOT})", ""]
    if score_panels(results):
        lines += [f"![downstream scores]({SCORES_PLOT})", ""]
    return "\n".join(lines)


def write_report(out_dir: Path, results: dict[str, Any], spec_path: str) -> Path:
    """results.json, the plots (when there is something to plot) and report.md, each written atomically."""
    write_json_atomically(out_dir / "results.json", results)
    if results["curves"]:
        plot_losses(results, out_dir / LOSS_PLOT)
    if score_panels(results):
        plot_scores(results, out_dir / SCORES_PLOT)
    write_text_atomically(out_dir / "report.md", report_markdown(results, spec_path) + "\n")
    return out_dir / "report.md"
