"""ONNX Runtime int8 at batch 1 vs leanbert eager fp32: which quantization settings win, measured, not guessed.

Variants of the same fine-tuned model (all dynamic quantization: int8 weights, activations quantized per call):

* ``int8``: ``quantize_dynamic`` on the exported graph, every operator type it knows (leanbert's default before);
* ``int8-matmul``: only MatMul quantized (embeddings' Gather stays fp32);
* ``int8-perchannel``: per-channel weight scales;
* ``opt+int8`` / ``opt+int8-perchannel``: onnxruntime.transformers' optimizer first (LayerNorm, GELU,
  attention fusion where its patterns match), then quantization;
* ``onnx-fp32`` / ``opt-fp32``: the unquantized graphs, for reference.

Each variant's batch-1 latency at every length is compared with leanbert eager fp32 (PyTorch, inference mode) in
the same rounds, alternating; accuracy of each is measured on SST-2 dev (and the demo's snippets with
``--demo``) against the eager model's.

  OMP_NUM_THREADS=1 python benchmarks/int8_levers.py --model runs/ft-minilm-sst2 --threads 1 2
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from leanbert.batch import Batch
from leanbert.demo.data import rotten_tomatoes
from leanbert.export.onnx import OnnxRunner, export_graph, quantize_int8
from leanbert.inference import run_in_order, torch_forward
from leanbert.model.padding import set_unpadding
from leanbert.model_dir import load_model
from leanbert.tasks.encode import Collator, PairEncoder
from leanbert.tasks.glue import Example
from leanbert.train.cpu_features import cpu_flags, describe

SST2_DEV = Path(__file__).resolve().parents[1] / "../shared/data/glue/SST-2/dev.tsv"


def build_variants(model, work: Path, names: list[str]) -> dict[str, Path]:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers.optimizer import optimize_model

    fp32 = work / "fp32.onnx"
    export_graph(model, fp32)
    set_unpadding(model, True)
    paths = {"onnx-fp32": fp32}
    logging.getLogger().setLevel(logging.ERROR)
    cfg = model.config
    if any(n.startswith("opt") for n in names):
        optimized = optimize_model(str(fp32), "bert", num_heads=cfg.num_heads, hidden_size=cfg.hidden_size)
        print("optimizer fusions:", optimized.get_fused_operator_statistics())
        optimized.save_model_to_file(str(work / "opt.onnx"))
        paths["opt-fp32"] = work / "opt.onnx"
    settings = {"int8": (fp32, {}), "int8-matmul": (fp32, {"op_types_to_quantize": ["MatMul"]}),
                "int8-perchannel": (fp32, {"per_channel": True}),
                "opt+int8": (work / "opt.onnx", {}), "opt+int8-perchannel": (work / "opt.onnx", {"per_channel": True}),
                "leanbert-export": (fp32, None)}
    for name in names:
        if name in ("onnx-fp32", "opt-fp32"):
            continue
        source, options = settings[name]
        paths[name] = work / f"{name}.onnx"
        if options is None:
            quantize_int8(source, paths[name])  # what `leanbert export --quantize int8` writes
        else:
            quantize_dynamic(str(source), str(paths[name]), weight_type=QuantType.QInt8,
                             extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT}, **options)
    return {n: p for n, p in paths.items() if n in names}


def eager_fn(model):
    forward = torch_forward(model)
    return lambda ids, mask, types: forward(Batch(torch.from_numpy(ids), torch.from_numpy(mask),
                                                  torch.from_numpy(types)))


def onnx_fn(runner: OnnxRunner):
    return lambda ids, mask, types: runner.run(ids, mask, types)["logits"]


def latency(fns: dict, vocab: int, length: int, rounds: int) -> dict[str, float]:
    rng = np.random.default_rng(length)
    ids = rng.integers(1000, vocab, size=(1, length), dtype=np.int64)
    ids[0, 0], ids[0, -1] = 101, 102
    args = (ids, np.ones_like(ids), np.zeros_like(ids))
    times = {n: [] for n in fns}
    for step in range(rounds + 3):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn(*args)
            if step >= 3:
                times[name].append(time.perf_counter() - start)
    return {n: statistics.median(v) for n, v in times.items()}


def dev_sets(demo: bool) -> dict[str, tuple[list[str], np.ndarray]]:
    rows = [line.split("\t") for line in SST2_DEV.read_text(encoding="utf-8").splitlines()[1:]]
    sets = {"sst2": ([r[0] for r in rows], np.asarray([int(r[1]) for r in rows]))}
    if demo:
        dev = rotten_tomatoes(seed=0).dev
        sets["demo"] = ([t for t, _ in dev], np.asarray([int(label == "pos") for _, label in dev]))
    return sets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, type=Path, help="a fine-tuned leanbert model dir (or OUT_DIR)")
    parser.add_argument("--variants", nargs="+", default=["onnx-fp32", "opt-fp32", "leanbert-export", "int8-matmul",
                                                          "int8-perchannel", "opt+int8", "opt+int8-perchannel"])
    parser.add_argument("--lengths", nargs="+", type=int, default=[32, 128])
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--demo", action="store_true", help="also score the demo's 2,562 snippets")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    print(f"CPU flags: {describe(cpu_flags())}")
    model_dir = args.model / "model" if (args.model / "model" / "config.json").is_file() else args.model
    model = load_model(model_dir)
    results: dict = {"latency": [], "accuracy": {}}
    with tempfile.TemporaryDirectory() as tmp:
        paths = build_variants(model, Path(tmp), args.variants)
        encoder = PairEncoder.from_dir(model_dir, 128)
        for name, (texts, gold) in dev_sets(args.demo).items():
            features = encoder.encode([Example(t, None, 0) for t in texts])
            fns = {"leanbert-eager": torch_forward(model)} | {n: OnnxRunner(p).forward for n, p in paths.items()}
            acc = {n: float((run_in_order(f, features, Collator(encoder.pad_id), 32).argmax(1) == gold).mean())
                   for n, f in fns.items()}
            results["accuracy"][name] = acc
            print(f"{name} dev accuracy: " + ", ".join(f"{n} {a:.4f} ({100 * (a - acc['leanbert-eager']):+.2f})"
                                                     for n, a in acc.items()), flush=True)
        for threads in args.threads:
            torch.set_num_threads(threads)
            fns = {"leanbert-eager": eager_fn(model)} | {n: onnx_fn(OnnxRunner(p, threads)) for n, p in paths.items()}
            for length in args.lengths:
                cell = latency(fns, model.config.vocab_size, length, args.rounds)
                results["latency"].append({"threads": threads, "seq": length, "seconds": cell})
                print(f"threads {threads} seq {length}: " + ", ".join(
                    f"{n} {1000 * s:.2f} ms ({cell['leanbert-eager'] / s:.2f}x)" for n, s in cell.items()), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
