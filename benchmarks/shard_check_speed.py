"""Benchmark what opening a prepared split costs now that every shard's token ids are scanned against the
vocabulary (``PreparedDataset._open_shard``), against trusting the manifest's recorded ``max_token_id`` alone.

Writes a synthetic dataset of ``--tokens`` random uint16 ids (``--shards`` shards, in a temporary directory),
then opens its train split ``--repeats`` times with and without the scan, alternating, page cache warm.

    python benchmarks/shard_check_speed.py --tokens 200000000 --shards 4
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from leanbert.data import shards

VOCAB = 30522


def write_dataset(root: Path, tokens: int, num_shards: int) -> None:
    rng = np.random.default_rng(0)
    (root / "train").mkdir(parents=True)
    entries = []
    per_shard = tokens // num_shards
    for index in range(num_shards):
        writer = shards.ShardWriter(root / "train", index, np.dtype("<u2"))
        for start in range(0, per_shard, 1 << 24):
            count = min(1 << 24, per_shard - start)
            ids = rng.integers(5, VOCAB, size=count, dtype=np.uint16)
            lengths = np.full(count // 64, 64, dtype=np.int64)  # (L,) lines of 64 tokens
            writer.append(ids[: lengths.sum()], lengths, np.arange(len(lengths)) % 8 == 0)
        entries.append(writer.close())
    manifest = {"format": shards.FORMAT, "format_version": shards.FORMAT_VERSION, "dtype": "<u2",
                "tokenizer": {"fingerprint": "0" * 64, "vocab_size": VOCAB},
                "splits": {"train": {"num_docs": sum(e["num_docs"] for e in entries), "shards": entries}}}
    (root / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")


def open_split(root: Path, scan: bool) -> float:
    original = shards._max_token_id
    if not scan:  # the check before: the recorded max only
        shards._max_token_id = lambda tokens, chunk=0: -1
    try:
        start = time.perf_counter()
        shards.PreparedDataset(root).split("train")
        return time.perf_counter() - start
    finally:
        shards._max_token_id = original


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=200_000_000)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="leanbert-shard-bench-"))
    try:
        write_dataset(root, args.tokens, args.shards)
        size = sum(p.stat().st_size for p in (root / "train").glob("*.tokens.bin"))
        times: dict[bool, list[float]] = {True: [], False: []}
        for _ in range(args.repeats):
            for scan in (False, True):  # alternating: the machine is shared, its load drifts
                times[scan].append(open_split(root, scan))
        old, new = statistics.median(times[False]), statistics.median(times[True])
        print(f"{size / 1e6:,.0f} MB of token ids in {args.shards} shards, median of {args.repeats}:")
        print(f"  recorded max only: {old * 1e3:8.1f} ms")
        print(f"  scan every shard:  {new * 1e3:8.1f} ms  ({(new - old) / (size / 1e9) * 1e3:.0f} ms per GB)")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
