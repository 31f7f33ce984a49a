"""Step cost of the pretraining methods against plain MLM on the same encoder, measured alternately in one run.

Variants (all on the same encoder shape and the same random-token batches as benchmarks/train_speed.py):
  mlm          BERT-A: MLM, absolute positions (the baseline every ratio is against)
  bert-r       MLM, absolute positions + T5 relative buckets (32, max distance 128)
  tupe-a       MLM, TUPE untied positions ([CLS] untied, derived as in the reference code)
  tupe-r       MLM, TUPE + relative buckets
  electra      ELECTRA (generator hidden = hidden / 4)
  mcbert       MC-BERT (controller = width / 3, 10 candidates)
Each step = forward + backward + torch's fused AdamW step. Rounds alternate between the variants so machine
noise hits all of them; the reported tokens/s is the median over rounds and "cost" is the baseline's tokens/s
divided by the variant's (1.05 = 5% slower per token). Model FLOPs per token come from leanbert.flops.

  python benchmarks/method_cost.py --threads 1
  python benchmarks/method_cost.py --variants mlm,tupe-a,tupe-r --rounds 5
"""

from __future__ import annotations

import argparse
import statistics

import torch
from train_speed import make_batches, time_steps

from leanbert.config import ModelConfig
from leanbert.data.config import DataConfig
from leanbert.flops import training_flops_per_token
from leanbert.objectives import build_objective, objective_config

RELATIVE = {"relative_buckets": 32, "relative_max_distance": 128}
# name -> (objective name, objective keys, encoder overrides, data.masking of the batches)
VARIANTS = {
    "mlm": ("mlm", {}, {}, "bert"),
    "bert-r": ("mlm", {}, RELATIVE, "bert"),
    "tupe-a": ("mlm", {}, {"position": "tupe"}, "bert"),
    "tupe-r": ("mlm", {}, {"position": "tupe", **RELATIVE}, "bert"),
    "electra": ("electra", {"generator_fraction": 0.25}, {}, "electra"),
    "mcbert": ("mcbert", {}, {}, "mask"),
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--steps", type=int, default=3, help="timed steps per round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device("cpu")
    base = dict(vocab_size=30522, hidden_size=256, num_layers=4, num_heads=4, intermediate_size=1024)
    names = args.variants.split(",")
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        p.error(f"unknown variant {unknown[0]!r}; choose from {', '.join(VARIANTS)}")
    # packed pretraining batches: no padding (min_len = seq_len); masking as each objective's data pipeline does
    batches = {masking: make_batches(4, args.batch_size, args.seq_len, base["vocab_size"],
                                     electra=masking != "bert", min_len=args.seq_len)
               for masking in {VARIANTS[n][3] for n in names}}
    runs = {}
    for name in names:
        objective_name, keys, encoder, masking = VARIANTS[name]
        cfg = ModelConfig(**base, **encoder)
        obj_cfg = objective_config(objective_name, **keys)
        torch.manual_seed(0)
        objective = build_objective(obj_cfg, cfg)
        flops = training_flops_per_token(cfg, obj_cfg, DataConfig(seq_len=args.seq_len, masking=masking))
        runs[name] = (objective, batches[masking], flops)
    speeds = {name: [] for name in names}
    for _ in range(args.rounds):
        for name, (objective, data, _) in runs.items():
            speeds[name].append(time_steps(lambda b, o=objective: o(b).loss, objective, data, device, "fp32",
                                           args.steps))
    baseline = statistics.median(speeds[names[0]])
    print(f"{'variant':8s} {'tokens/s':>9s} {'cost':>6s} {'GFLOP/token':>12s} {'params':>8s}")
    for name in names:
        objective, _, flops = runs[name]
        speed = statistics.median(speeds[name])
        params = sum(p.numel() for p in objective.parameters())
        print(f"{name:8s} {speed:9.0f} {baseline / speed:6.3f} {flops / 1e9:12.3f} {params / 1e6:7.2f}M"
              f"   rounds: {', '.join(f'{s:.0f}' for s in speeds[name])}", flush=True)


if __name__ == "__main__":
    main()
