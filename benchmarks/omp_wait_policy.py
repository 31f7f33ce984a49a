"""OpenMP's wait policy on a quiet and on a busy CPU: the default (threads spin between parallel regions) against
``OMP_WAIT_POLICY=PASSIVE`` (they sleep), for the work `leanbert` runs: batch-1 and batch-32 inference of a
MiniLM-L6-shaped encoder (random weights) and a fine-tuning step (forward + backward + AdamW, batch 32 x 64).

The policy is read once, when torch's OpenMP runtime loads, so each measurement is a fresh process; the two
policies alternate, round by round. ``--busy N`` starts N CPU-bound Python processes for the whole run (the
"another job is running" case: a second training run, a test suite, a browser).

  python benchmarks/omp_wait_policy.py --threads 2 --rounds 5            # quiet
  python benchmarks/omp_wait_policy.py --threads 2 --rounds 5 --busy 1   # one other busy process
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import time

WORKER = r"""
import json, sys, time
import torch
from leanbert.model.config import ModelConfig
from leanbert.model.model import LeanBertModel

torch.manual_seed(0)
config = ModelConfig(vocab_size=30522, hidden_size=384, num_layers=6, num_heads=12, intermediate_size=1536,
                     heads=["classifier"], num_labels=2)
model = LeanBertModel(config)
calls = int(sys.argv[1])


def timed(fn, n):
    fn()  # warm-up
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    times.sort()
    return 1000 * times[len(times) // 2]


def infer(batch, length):
    ids = torch.randint(1000, 30000, (batch, length))
    model.eval()
    with torch.inference_mode():
        return lambda: model(input_ids=ids, attention_mask=torch.ones_like(ids))


ids = torch.randint(1000, 30000, (32, 64))
labels = torch.randint(0, 2, (32,))
optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)


def step():
    model.train()
    out = model(input_ids=ids, attention_mask=torch.ones_like(ids))
    loss = torch.nn.functional.cross_entropy(out.logits, labels)
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


print(json.dumps({"batch1_len32_ms": timed(infer(1, 32), calls), "batch32_len128_ms": timed(infer(32, 128), max(2, calls // 10)),
                  "train_step_ms": timed(step, max(2, calls // 10))}))
"""


def burn() -> None:
    while True:
        pass


def measure(policy: str | None, threads: int, calls: int) -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    env["OMP_NUM_THREADS"] = str(threads)
    if policy:
        env["OMP_WAIT_POLICY"] = policy
    out = subprocess.run([sys.executable, "-c", WORKER, str(calls)], env=env, check=True, capture_output=True,
                         text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=40, help="batch-1 calls per process (batch 32: a tenth)")
    parser.add_argument("--busy", type=int, default=0, help="CPU-bound processes running alongside")
    args = parser.parse_args()
    burners = [multiprocessing.Process(target=burn, daemon=True) for _ in range(args.busy)]
    for proc in burners:
        proc.start()
    try:
        results: dict[str, list[dict[str, float]]] = {"default": [], "PASSIVE": []}
        for round_ in range(args.rounds):
            order = ("default", "PASSIVE") if round_ % 2 == 0 else ("PASSIVE", "default")
            for policy in order:
                results[policy].append(measure(None if policy == "default" else policy, args.threads, args.calls))
                print(f"round {round_ + 1} {policy}: {results[policy][-1]}", file=sys.stderr, flush=True)
    finally:
        for proc in burners:
            proc.terminate()
    summary = {"threads": args.threads, "busy": args.busy, "rounds": args.rounds, "loadavg_end": os.getloadavg(),
               "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    for key in results["default"][0]:
        default = statistics.median(r[key] for r in results["default"])
        passive = statistics.median(r[key] for r in results["PASSIVE"])
        summary[key] = {"default": round(default, 2), "PASSIVE": round(passive, 2),
                        "default / PASSIVE": round(default / passive, 3)}
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
