"""Benchmark the pretraining data stream: sequences/s of ``build_loader`` for each instance/masking mode.

Prepares ../shared/data/corpus (repeated ``--copies`` times, in a temporary directory) with a WordPiece
tokenizer trained on it, then times ``make_batch`` on one thread (``prefetch=0``), after one warm-up batch.

    python benchmarks/loader_speed.py --seq-len 128 --batch-size 128
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from leanbert.data import DataConfig, build_loader
from leanbert.data.prepare import prepare_dataset
from leanbert.data.tokenizer import train_tokenizer

DEFAULT_CORPUS = Path(__file__).resolve().parents[2] / "shared" / "data" / "corpus"
MODES = {
    "MLM packed, BERT 80/10/10": {},
    "MLM packed, ELECTRA 85/15": {"masking": "electra"},
    "MLM packed, whole-word": {"whole_word": True},
    "NSP pairs (BERT)": {"pairs": "nsp"},
    "SOP pairs + 3-gram (ALBERT)": {"pairs": "sop", "ngram": 3},
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--copies", type=int, default=3)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--batches", type=int, default=10)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="leanbert-loader-bench-"))
    try:
        (work / "corpus").mkdir()
        for i in range(args.copies):
            for path in sorted(args.corpus.glob("*.txt")):
                shutil.copyfile(path, work / "corpus" / f"{i}-{path.name}")
        train_tokenizer([str(args.corpus)], work / "tok", kind="wordpiece", vocab_size=30522, lowercase=True)
        prepare_dataset([str(work / "corpus")], work / "tok", work / "data", progress=False)
        print("| mode | seq_len | batch | ms/batch | sequences/s |\n|---|---:|---:|---:|---:|")
        for name, overrides in MODES.items():
            config = DataConfig(path=str(work / "data"), seq_len=args.seq_len, **overrides)
            loader = build_loader(config, batch_size=args.batch_size, seed=0, prefetch=0)
            loader.make_batch(0, 0)
            start = time.perf_counter()
            for b in range(1, args.batches + 1):
                loader.make_batch(0, b)
            per_batch = (time.perf_counter() - start) / args.batches
            print(f"| {name} | {args.seq_len} | {args.batch_size} | {per_batch * 1000:.1f} | "
                  f"{args.batch_size / per_batch:,.0f} |", flush=True)
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
