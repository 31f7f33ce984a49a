"""``leanbert tokenizer train``: train a WordPiece (BERT/ELECTRA) or Unigram (ALBERT) tokenizer."""

from __future__ import annotations

import argparse
import sys
import time

from leanbert.data.sources import DEFAULT_MAX_LINE_BYTES, SkipStats
from leanbert.data.tokenizer import KINDS, train_tokenizer

EPILOG = """\
Inputs: .txt (one sentence or paragraph per line, blank line between documents) and .jsonl (one document per
line, text in --text-field), optionally .gz; files, directories (searched recursively) and glob patterns.
The corpus is streamed, never read into memory whole. Special tokens get fixed ids:
[PAD]=0 [UNK]=1 [CLS]=2 [SEP]=3 [MASK]=4.

The output directory loads with transformers.AutoTokenizer.from_pretrained(DIR).

examples:
  leanbert tokenizer train corpus/ --out tok-wp --kind wordpiece --vocab-size 30522 --lowercase
  leanbert tokenizer train 'data/*.jsonl.gz' --out tok-spm --kind unigram --vocab-size 30000 --max-lines 5000000
"""


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "tokenizer", help="train a tokenizer (WordPiece or Unigram)",
        description="Tokenizer tools (Hugging Face `tokenizers`).",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG)
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    train = actions.add_parser(
        "train", help="train a tokenizer on corpus files",
        description="Train a WordPiece (BERT, ELECTRA) or Unigram SentencePiece-style (ALBERT) tokenizer.",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG)
    train.add_argument("inputs", nargs="+", metavar="INPUT", help="corpus files, directories or globs")
    train.add_argument("--out", required=True, metavar="DIR", help="output tokenizer directory")
    train.add_argument("--overwrite", action="store_true",
                       help="replace a tokenizer directory that an earlier `leanbert tokenizer train` wrote")
    train.add_argument("--kind", choices=KINDS, default="wordpiece",
                       help="wordpiece (BERT/ELECTRA, default) or unigram (ALBERT)")
    train.add_argument("--vocab-size", type=int, default=30000, metavar="N", help="vocabulary size (30000)")
    train.add_argument("--lowercase", action="store_true", help="lowercase (and for wordpiece strip accents)")
    train.add_argument("--min-frequency", type=int, default=2, metavar="N",
                       help="wordpiece: minimum count of a merged piece (2)")
    train.add_argument("--text-field", default="text", metavar="NAME", help="JSONL field holding the text")
    train.add_argument("--max-line-bytes", type=int, default=DEFAULT_MAX_LINE_BYTES, metavar="N",
                       help="lines longer than this are skipped (16 MiB)")
    train.add_argument("--max-lines", type=int, default=0, metavar="N",
                       help="train on the first N lines only (0 = all); bounds time on huge corpora")
    train.set_defaults(func=run_train)
    parser.set_defaults(func=lambda args: parser.print_help() or 2)


def run_train(args) -> int:
    stats = SkipStats(report=lambda message: print(f"warning: {message}", file=sys.stderr))
    start = time.perf_counter()
    info = train_tokenizer(args.inputs, args.out, kind=args.kind, vocab_size=args.vocab_size,
                           lowercase=args.lowercase, min_frequency=args.min_frequency,
                           text_field=args.text_field, max_line_bytes=args.max_line_bytes, stats=stats,
                           max_lines=args.max_lines, overwrite=args.overwrite)
    skipped = f", skipped {stats.total} bad input(s)" if stats.total else ""
    print(f"{info.kind} tokenizer with {info.vocab_size} tokens -> {args.out} "
          f"(fingerprint {info.fingerprint[:12]}, {time.perf_counter() - start:.1f}s{skipped})")
    return 0
