"""Benchmark ``leanbert prepare``: tokens/s and peak RSS on a >= 1 GB corpus.

The corpus is ../shared/data/corpus (three real text files, ~10.8 MB) repeated into ``--files`` files in a
temporary directory until it reaches ``--gb`` GB; everything is deleted afterwards. A WordPiece tokenizer
(``--vocab-size``) is trained on one copy first (in this process). Each ``leanbert prepare`` runs as a child
process pinned to ``--cores`` CPU cores, and its peak RSS is read from the kernel's accounting of that child.
tokens/s uses the command's own timing (``seconds``); ``wall_seconds`` adds the interpreter start-up.

Repeated text flatters the word cache (every word is a hit after the first copy), so ``--modes cache,nocache``
also measures the pipeline with the cache off, the worst case (all misses) for the tokenizer's work.

    python benchmarks/prepare_speed.py --gb 1.0 --cores 2 --modes cache,nocache
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from leanbert.data.tokenizer import train_tokenizer

DEFAULT_CORPUS = Path(__file__).resolve().parents[2] / "shared" / "data" / "corpus"


def build_corpus(source: Path, out: Path, gigabytes: float, files: int) -> int:
    texts = [p.read_bytes() for p in sorted(source.glob("*.txt"))]
    unit = b"\n".join(t.rstrip(b"\n") + b"\n" for t in texts) + b"\n"  # a blank line ends each file's last doc
    copies = -(-int(gigabytes * 1e9) // len(unit))
    per_file = -(-copies // files)
    written = 0
    for i in range(files):
        n = min(per_file, copies - i * per_file)
        if n <= 0:
            break
        with open(out / f"part-{i:03d}.txt", "wb") as f:
            for _ in range(n):
                f.write(unit)
        written += n * len(unit)
    return written


def run_prepare(work: Path, cores: list[int], word_cache: bool) -> dict:
    """One ``leanbert prepare`` child pinned to ``cores``; returns its time and peak RSS (from wait4)."""
    env = dict(os.environ, RAYON_RS_NUM_THREADS=str(len(cores)))  # the Rust tokenizer's thread pool
    shutil.rmtree(work / "data", ignore_errors=True)
    command = [sys.executable, "-m", "leanbert.cli", "prepare", str(work / "corpus"), "--tokenizer",
               str(work / "tok"), "--out", str(work / "data"), "--valid-fraction", "0.01", "--quiet"]
    if not word_cache:
        command.append("--no-word-cache")
    start = time.perf_counter()
    child = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True,
                             preexec_fn=lambda: os.sched_setaffinity(0, cores))
    report = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    print(report, end="")
    # the command's own timing (tokenizer loading to manifest written), without interpreter start-up
    seconds = float(re.search(r" in ([0-9.]+)s \(", report).group(1))
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"leanbert prepare failed with status {os.waitstatus_to_exitcode(status)}")
    manifest = json.loads((work / "data" / "manifest.json").read_text())
    return {"cores": len(cores), "word_cache": word_cache, "tokens": manifest["num_tokens"],
            "documents": manifest["num_docs"], "lines": manifest["num_lines"], "seconds": round(seconds, 1),
            "wall_seconds": round(wall, 1), "tokens_per_s": round(manifest["num_tokens"] / seconds), "peak_rss_mb": round(usage.ru_maxrss / 1024)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gb", type=float, default=1.0, help="corpus size in GB (1.0)")
    parser.add_argument("--files", type=int, default=8, help="number of corpus files (8)")
    parser.add_argument("--vocab-size", type=int, default=30522)
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--tmp", default=None, help="where to put the temporary corpus and dataset")
    parser.add_argument("--cores", type=int, default=0, help="pin prepare to this many CPU cores (0 = all)")
    parser.add_argument("--modes", default="cache", help="comma-separated: cache, nocache (cache)")
    args = parser.parse_args()

    allowed = sorted(os.sched_getaffinity(0))
    cores = allowed[:args.cores] if args.cores else allowed
    work = Path(tempfile.mkdtemp(prefix="leanbert-prepare-bench-", dir=args.tmp))
    try:
        (work / "corpus").mkdir()
        size = build_corpus(args.corpus, work / "corpus", args.gb, args.files)
        train_tokenizer([str(args.corpus)], work / "tok", kind="wordpiece", vocab_size=args.vocab_size,
                        lowercase=True)
        print(f"corpus: {size / 1e9:.2f} GB in {args.files} files; tokenizer: wordpiece {args.vocab_size}, "
              f"lowercase; cores: {len(cores)}", flush=True)
        for mode in args.modes.split(","):
            result = {"corpus_gb": round(size / 1e9, 2), **run_prepare(work, cores, mode == "cache")}
            print(json.dumps(result), flush=True)
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
