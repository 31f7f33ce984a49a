"""Step cost of the pretraining methods against plain MLM on the same encoder, measured alternately in one run.

Variants (all on the same encoder shape and the same random-token batches as benchmarks/train_speed.py):
  mlm          BERT-A: MLM, absolute positions (the baseline every ratio is against)
  bert-r       MLM, absolute positions + T5 relative buckets (32, max distance 128)
  tupe-a       MLM, TUPE untied positions ([CLS] untied, derived as in the reference code)
  tupe-r       MLM, TUPE + relative buckets
  electra      ELECTRA (generator hidden = hidden / 4)
  mcbert       MC-BERT (controller = width / 3, 10 candidates)
  tnf          MLM + TNF notes (needs --data: real batches carrying the dataset's rare-word occurrences; the
               table must have been made with --tnf-counts, see `leanbert rare-words`)
With --data DIR the batches are real packed sequences of that prepared dataset (its vocabulary) instead of
random tokens, the same for every variant that masks alike.
Each step = forward + backward + torch's fused AdamW step. Rounds alternate between the variants so machine
noise hits all of them; the reported tokens/s is the median over rounds and "cost" is the baseline's tokens/s
divided by the variant's (1.05 = 5% slower per token). Model FLOPs per token come from leanbert.flops.

  python benchmarks/method_cost.py --threads 1
  python benchmarks/method_cost.py --variants mlm,tupe-a,tupe-r --rounds 5
  python benchmarks/method_cost.py --data runs/data-wp --tnf-counts 10,100 --variants mlm,tnf,electra
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from train_speed import make_batches

from leanbert.addons.tnf.addon import TnfConfig, wrap_with_notes
from leanbert.addons.tnf.rare_words import RARE_WORDS_FEATURE
from leanbert.data.config import DataConfig
from leanbert.data.loader import build_loader, resolve_tokenizer
from leanbert.model.config import ModelConfig
from leanbert.objectives import build_objective, objective_config, objective_spec
from leanbert.objectives.registry import training_flops_per_token
from leanbert.train.distributed import DistEnv

RELATIVE = {"position_options": {"relative_buckets": 32, "relative_max_distance": 128}}
# name -> (objective name, objective keys, encoder overrides, data.masking of the batches[, add-on keys])
VARIANTS = {
    "mlm": ("mlm", {}, {}, "bert"),
    "bert-r": ("mlm", {}, RELATIVE, "bert"),
    "tupe-a": ("mlm", {}, {"position": "tupe"}, "bert"),
    "tupe-r": ("mlm", {}, {"position": "tupe", **RELATIVE}, "bert"),
    "electra": ("electra", {"generator_fraction": 0.25}, {}, "electra"),
    "mcbert": ("mcbert", {}, {}, "mask"),
    "tnf": ("mlm", {}, {}, "bert", {"enabled": True}),
}


def time_objective(objective, batches: list, steps: int) -> float:
    """Real tokens/s of ``steps`` training steps as the trainer runs them: forward, backward, fused AdamW, then
    ``after_step`` (TNF's note update) under no_grad; one untimed warm-up step first."""
    optimizer = torch.optim.AdamW(objective.parameters(), lr=1e-4, fused=True)
    objective.train()
    env = DistEnv()

    def one(step: int, batch) -> None:
        objective(batch).loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        with torch.no_grad():
            objective.after_step(step, env)

    one(0, batches[0])
    start, tokens = time.perf_counter(), 0
    for i in range(steps):
        batch = batches[(i + 1) % len(batches)]
        one(i + 1, batch)
        tokens += batch.num_tokens
    return tokens / (time.perf_counter() - start)


def real_batches(path: str, masking: str, batch_size: int, seq_len: int, n: int = 4) -> list:
    """The first ``n`` training batches of a prepared dataset (with rare-word occurrences when it has a table)."""
    config = DataConfig(path=path, seq_len=seq_len, masking=masking,
                        features=[RARE_WORDS_FEATURE.name])
    loader = build_loader(config, resolve_tokenizer(config), batch_size, "train", seed=0)
    stream = iter(loader)
    return [next(stream) for _ in range(n)]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--steps", type=int, default=3, help="timed steps per round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--data", help="a prepared dataset: real batches instead of random tokens (tnf needs it)")
    p.add_argument("--tnf-counts", default="100,500", help="tnf.min_count,max_count the table was made with")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    vocab = resolve_tokenizer(DataConfig(path=args.data)).vocab_size if args.data else 30522
    base = dict(vocab_size=vocab, hidden_size=256, num_layers=4, num_heads=4, intermediate_size=1024)
    names = args.variants.split(",")
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        p.error(f"unknown variant {unknown[0]!r}; choose from {', '.join(VARIANTS)}")
    if "tnf" in names and not args.data:
        p.error("the tnf variant needs --data DIR (a prepared dataset with a rare-word table)")
    # packed pretraining batches: no padding (min_len = seq_len); masking as each objective's data pipeline does
    maskings = {VARIANTS[n][3] for n in names}
    if args.data:
        batches = {m: real_batches(args.data, m, args.batch_size, args.seq_len) for m in maskings}
    else:
        batches = {m: make_batches(4, args.batch_size, args.seq_len, vocab, electra=m != "bert",
                                   min_len=args.seq_len) for m in maskings}
    min_count, max_count = (int(x) for x in args.tnf_counts.split(","))
    runs = {}
    for name in names:
        objective_name, keys, encoder, masking, *addon = VARIANTS[name]
        cfg = ModelConfig(**base, **encoder)
        obj_cfg = objective_config(objective_name, **keys)
        torch.manual_seed(0)
        objective = build_objective(obj_cfg, cfg)
        if addon:  # TNF wraps the objective, sized like the table it reads
            tnf = TnfConfig(**addon[0], min_count=min_count, max_count=max_count)
            objective = wrap_with_notes(objective, tnf, cfg, objective_spec(objective_name).kept)
        flops = training_flops_per_token(cfg, obj_cfg, DataConfig(seq_len=args.seq_len, masking=masking))
        runs[name] = (objective, batches[masking], flops)
    speeds = {name: [] for name in names}
    for _ in range(args.rounds):
        for name, (objective, data, _) in runs.items():
            speeds[name].append(time_objective(objective, data, args.steps))
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
