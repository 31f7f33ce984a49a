"""Batch-inference speed of ``leanbert predict`` vs transformers' ``pipeline("text-classification")``: rows/s on
real dev sets, the same fine-tuned model, the same machine, the same labels checked.

Contenders, alternating inside every round (a machine that slows down mid-run slows all of them alike):

* ``leanbert`` / ``leanbert-bf16``: what ``leanbert predict`` does after opening the model: tokenize the texts
  (the Rust batch encoder), length-sorted token-budget batches under ``torch.inference_mode``, softmax and the
  TSV lines. The tokenizer's share is timed on its own too.
* ``pipeline bN``: ``pipeline(texts, batch_size=N, truncation=True, max_length=L)`` on the Hugging Face export of
  the same model, for every N of ``--pipeline-batches``; its best N is the one compared against.

Model loading is outside the timings for both (once per process). Data: SST-2 dev (872 sentences) and the demo's
Rotten Tomatoes dev snippets (``demo.data.rotten_tomatoes``, seed 0: 2,562 rows; ``pos`` (fresh) = 1, ``neg`` (rotten) = 0 for
an SST-2 model's accuracy).

  OMP_NUM_THREADS=1 python benchmarks/predict_speed.py --model runs/ft-minilm-sst2 --threads 1 2
  python benchmarks/predict_speed.py --model runs/ft-tiny --datasets sst2 --rounds 1 --limit 64   # smoke
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from leanbert.demo.data import rotten_tomatoes
from leanbert.inference import DEFAULT_MAX_TOKENS, run_in_order
from leanbert.interop.hf import export_to_hf
from leanbert.predict import format_predictions, open_predictor
from leanbert.tasks.encode import Collator, PairEncoder
from leanbert.tasks.glue import Example
from leanbert.train.cpu_features import cpu_flags, describe, has_bf16

SST2_DEV = Path(__file__).resolve().parents[1] / "../shared/data/glue/SST-2/dev.tsv"
DEMO_LABELS = {"neg": 0, "pos": 1}  # demo.data maps fresh -> pos, rotten -> neg


def load_dataset(name: str, limit: int) -> tuple[list[str], np.ndarray]:
    """(texts, gold label indices) of a dev set."""
    if name == "sst2":
        rows = [line.split("\t") for line in SST2_DEV.read_text(encoding="utf-8").splitlines()[1:]]
        texts, gold = [r[0] for r in rows], [int(r[1]) for r in rows]
    else:
        dev = rotten_tomatoes(seed=0).dev
        texts, gold = [t for t, _ in dev], [DEMO_LABELS[label] for _, label in dev]
    return texts[:limit or None], np.asarray(gold[:limit or None])


def leanbert_run(predictor, texts: list[str], batch_size: int, max_tokens: int, timings: dict) -> np.ndarray:
    """What predict_file does between opening the model and writing: returns (N, C) logits."""
    start = time.perf_counter()
    encoder = PairEncoder.from_dir(predictor.tokenizer_dir, predictor.max_seq_len)
    features = encoder.encode([Example(t, None, 0) for t in texts])
    timings.setdefault("tokenize", []).append(time.perf_counter() - start)
    logits = run_in_order(predictor.forward, features, Collator(encoder.pad_id), batch_size, max_tokens)
    format_predictions(logits, predictor.labels)
    return logits


def contenders(model: Path, work: Path, args) -> tuple[dict, int]:
    """name -> function(texts) -> (N,) label indices; and the model's max length."""
    from transformers import pipeline

    fp32 = open_predictor(model, work / "open", log=lambda *_: None)
    runs = {"leanbert": lambda texts, t: leanbert_run(fp32, texts, args.batch_size, args.max_tokens, t)}
    if has_bf16(cpu_flags()):
        bf16 = open_predictor(model, work / "open16", log=lambda *_: None, precision="bf16")
        runs["leanbert-bf16"] = lambda texts, t: leanbert_run(bf16, texts, args.batch_size, args.max_tokens, t)
    model_dir = model / "model" if (model / "model" / "config.json").is_file() else model
    hf_dir = export_to_hf(model_dir, work / "hf")
    pipe = pipeline("text-classification", model=str(hf_dir), tokenizer=str(hf_dir), device="cpu")
    names = list(pipe.model.config.id2label.values())
    max_len = fp32.max_seq_len

    def piped(batch_size: int):
        def run(texts, _timings):
            out = pipe(texts, batch_size=batch_size, truncation=True, max_length=max_len)
            return np.asarray([names.index(o["label"]) for o in out])
        return run

    for b in args.pipeline_batches:
        runs[f"pipeline b{b}"] = piped(b)
    return runs, max_len


def measure(runs: dict, texts: list[str], rounds: int) -> tuple[dict, dict, dict]:
    """Median seconds per contender (after a warm-up call on 64 rows), their label indices, the tokenizer's times."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    labels, tokenize = {}, {}
    for run in runs.values():
        run(texts[:64], {})
    for _ in range(rounds):
        for name, run in runs.items():
            timings: dict = {}
            start = time.perf_counter()
            out = run(texts, timings)
            times[name].append(time.perf_counter() - start)
            tokenize.setdefault(name, []).extend(timings.get("tokenize", []))
            labels[name] = out.argmax(1) if out.ndim == 2 else out
    return ({n: statistics.median(v) for n, v in times.items()}, labels,
            {n: statistics.median(v) for n, v in tokenize.items() if v})


def report(dataset: str, threads: int, texts, gold, seconds, labels, tokenize) -> dict:
    rows = len(texts)
    piped = {n: s for n, s in seconds.items() if n.startswith("pipeline")}
    best = min(piped, key=piped.get)
    print(f"\n{dataset}: {rows} rows, {threads} thread(s); best pipeline: {best}")
    print("| contender | s | rows/s | vs best pipeline | accuracy | labels = pipeline's |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, s in seconds.items():
        same = float((labels[name] == labels[best]).mean())
        print(f"| {name} | {s:.2f} | {rows / s:,.0f} | {piped[best] / s:.2f}x | "
              f"{float((labels[name] == gold).mean()):.4f} | {same:.4f} |")
    for name, s in tokenize.items():
        print(f"tokenizer pass in {name}: {s * 1000:.1f} ms ({100 * s / seconds[name]:.1f}% of its time)")
    return {"dataset": dataset, "rows": rows, "threads": threads, "seconds": seconds, "best_pipeline": best,
            "tokenize_seconds": tokenize,
            "accuracy": {n: float((labels[n] == gold).mean()) for n in labels},
            "agreement_with_best_pipeline": {n: float((labels[n] == labels[best]).mean()) for n in labels}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, type=Path, help="a fine-tuned 2-label model (finetune OUT_DIR)")
    parser.add_argument("--datasets", nargs="+", default=["sst2", "demo"], choices=["sst2", "demo"])
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--limit", type=int, default=0, help="first N rows only (0 = all)")
    parser.add_argument("--batch-size", type=int, default=32, help="leanbert predict's --batch-size")
    parser.add_argument("--max-tokens", type=int, default=DEFAULT_MAX_TOKENS)
    parser.add_argument("--pipeline-batches", nargs="+", type=int, default=[1, 8, 32, 64])
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args()
    print(f"CPU flags: {describe(cpu_flags())}; torch {torch.__version__}")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        runs, _ = contenders(args.model, Path(tmp), args)
        for dataset in args.datasets:
            texts, gold = load_dataset(dataset, args.limit)
            for threads in args.threads:
                torch.set_num_threads(threads)
                seconds, labels, tokenize = measure(runs, texts, args.rounds)
                results.append(report(dataset, threads, texts, gold, seconds, labels, tokenize))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
