"""``leanbert prepare``: tokenize a corpus into a memory-mapped, sharded dataset for pretraining."""

from __future__ import annotations

import argparse
import sys
import time

from leanbert.data.prepare import prepare_dataset
from leanbert.data.sources import DEFAULT_MAX_LINE_BYTES

EPILOG = """\
Inputs: .txt (one sentence or paragraph per line, blank line between documents) and .jsonl (one document per
line, text in --text-field), optionally .gz; files, directories (searched recursively) and glob patterns.

Output DATA_DIR: manifest.json (counts, sources, skipped input, tokenizer fingerprint), a copy of the tokenizer,
and train/ valid/ shards of token ids (uint16 when the vocabulary fits) with line and document boundaries.
Bad input (empty or binary files, invalid UTF-8, over-long lines, invalid JSON, a missing field) is skipped
with a warning naming the file and line, and counted in the manifest. The dataset appears only when complete.
Tokenization uses all cores (RAYON_RS_NUM_THREADS limits them); the same inputs give the same bytes.

examples:
  leanbert prepare corpus/ --tokenizer tok-wp --out data/wp --valid-fraction 0.01
  leanbert prepare 'dump/*.jsonl.gz' --text-field body --tokenizer tok-spm --out data/spm
"""


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "prepare", help="tokenize a corpus into a sharded dataset",
        description="Tokenize corpus files into memory-mapped token shards for pretraining.",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG)
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="corpus files, directories or globs")
    parser.add_argument("--tokenizer", required=True, metavar="DIR", help="tokenizer directory")
    parser.add_argument("--out", required=True, metavar="DATA_DIR", help="output dataset directory")
    parser.add_argument("--valid-fraction", type=float, default=0.01, metavar="F",
                        help="fraction of documents for the validation split (0.01)")
    parser.add_argument("--text-field", default="text", metavar="NAME", help="JSONL field holding the text")
    parser.add_argument("--max-line-bytes", type=int, default=DEFAULT_MAX_LINE_BYTES, metavar="N",
                        help="lines longer than this are skipped (16 MiB)")
    parser.add_argument("--shard-tokens", type=int, default=1 << 27, metavar="N",
                        help="start a new shard after this many tokens (134M)")
    parser.add_argument("--overwrite", action="store_true", help="replace a dataset that an earlier `leanbert prepare` wrote at DATA_DIR")
    parser.add_argument("--no-word-cache", action="store_true",
                        help="encode every line with the tokenizer (slower; same output)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args) -> int:
    start = time.perf_counter()
    manifest = prepare_dataset(args.inputs, args.tokenizer, args.out, valid_fraction=args.valid_fraction,
                               text_field=args.text_field, max_line_bytes=args.max_line_bytes,
                               shard_tokens=args.shard_tokens, overwrite=args.overwrite,
                               progress=not args.quiet, word_cache=not args.no_word_cache)
    seconds = time.perf_counter() - start
    splits = manifest["splits"]
    skipped = sum(manifest["skipped"].values())
    print(f"{manifest['num_tokens']:,} tokens, {manifest['num_docs']:,} documents, {manifest['num_lines']:,} lines "
          f"from {len(manifest['sources'])} file(s) in {seconds:.1f}s "
          f"({manifest['num_tokens'] / max(seconds, 1e-9):,.0f} tokens/s) -> {args.out}")
    print(f"  train: {splits['train']['num_tokens']:,} tokens / {splits['train']['num_docs']:,} docs; "
          f"valid: {splits['valid']['num_tokens']:,} tokens / {splits['valid']['num_docs']:,} docs"
          + (f"; skipped {skipped} bad input(s) (see manifest.json)" if skipped else ""))
    if args.valid_fraction > 0 and splits["valid"]["num_docs"] == 0:
        print(f"warning: no document went to the validation split ({manifest['num_docs']} documents x "
              f"{args.valid_fraction}); raise --valid-fraction for one", file=sys.stderr)
    return 0
