"""``leanbert predict``: run a fine-tuned classifier over a file (or stdin) and write a TSV of predictions."""

from __future__ import annotations

import argparse

EPILOG = """\
MODEL is a leanbert model directory with a classifier head, a `leanbert finetune` OUT_DIR (its model/), a
local Hugging Face *ForSequenceClassification directory, or an ONNX directory from
`leanbert export MODEL OUT --format onnx` (run with onnxruntime). Nothing is downloaded.

--input is a .tsv, .csv or .jsonl file with a header (read as `finetune --task custom` reads them), or - for
stdin: one text per line, or two tab-separated texts per line with two --text-columns. The output TSV has
the header index, label, probability (the softmax of the predicted label, as transformers' text-classification
pipeline reports it), or index, score for a regression model; index is the row's position in the input.
Label names are the ones the model was fine-tuned with. A malformed row stops with FILE:LINE (exit status 2).

Rows are sorted by length and batched by --batch-size rows and --max-tokens padded tokens (the output keeps the
input order). --precision bf16 runs a PyTorch model under bf16 autocast on CPUs with AVX512-BF16 or AMX (and on
GPUs); it is refused elsewhere, and it always prints how often its labels agree with fp32 on up to 512 rows
(with --label-column, the accuracy of both).

Extractive QA models (`finetune --task qa`; leanbert, *ForQuestionAnswering or ONNX directories): --input is
SQuAD JSON (.json) or JSONL with {"question", "context"} per line ("id" optional; - reads JSONL from stdin); no
--text-columns. The output is JSONL, one {"id", "answer", "score", "start", "end"} per question: the answer
cut from the context at characters start..end, its probability among the n-best candidates; "" (start and
end null) when a SQuAD v2 model prefers no answer. Windows and answer settings are the ones the model was
fine-tuned with (a Hugging Face directory: 384 / 128, 30 tokens).

Token-classification models (`finetune --task ner`): --input a CoNLL file (.conll, .bio, .iob, .iob2: every
line comes back with the predicted tag appended) or JSONL {"tokens": [...]} (the same); JSONL {"text": ...}, any
other file or - (one text per line) are raw text: the output is JSONL {"index", "text", "entities": [{"type",
"score", "start", "end", "text"}]} with character offsets, as transformers' token-classification pipeline with
aggregation_strategy="first" reports them (tested).

Multiple-choice models (`finetune --task multiple-choice`): --input JSONL in any layout finetune reads (label
optional); the output is JSONL {"index", "label", "probabilities"} (the softmax over each row's options).

examples:
  leanbert predict runs/ft-sst2 --input ../shared/data/glue/SST-2/dev.tsv --text-columns sentence \\
      --out preds.tsv
  leanbert predict runs/sst2-onnx --input reviews.jsonl --text-columns text --out preds.tsv --batch-size 64
  echo "a gorgeous , witty film" | leanbert predict runs/ft-sst2 --input - --out -
  leanbert predict runs/ft-sst2 --input ../shared/data/glue/SST-2/dev.tsv --text-columns sentence \\
      --label-column label --precision bf16 --out preds.tsv
  leanbert predict runs/ft-squad --input dev-v1.1.json --out answers.jsonl
  echo "Peter moved to New York" | leanbert predict runs/ft-ner --input - --out -
  leanbert predict runs/ft-siqa --input siqa_dev.jsonl --out choices.jsonl
"""


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "predict", help="predict labels (or QA answers) for a file with a fine-tuned model",
        description="Run a fine-tuned classifier or QA model (leanbert, Hugging Face or ONNX) over a file.",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG)
    parser.add_argument("model", metavar="MODEL", help="model dir, finetune OUT_DIR, HF dir or ONNX dir")
    parser.add_argument("--input", required=True, metavar="FILE", help=".tsv, .csv, .jsonl, or - for stdin")
    parser.add_argument("--text-columns", metavar="A[,B]", help="one text column, or two for sentence pairs")
    parser.add_argument("--out", required=True, metavar="FILE", help="output TSV (- for stdout)")
    parser.add_argument("--batch-size", type=int, default=32, metavar="N", help="rows per forward at most (32)")
    parser.add_argument("--max-tokens", type=int, default=2048, metavar="N",
                        help="padded tokens per forward at most (2048)")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                        help="bf16: autocast on CPUs with AVX512-BF16/AMX; prints its agreement with fp32")
    parser.add_argument("--label-column", metavar="C", help="gold labels in the input file: print the accuracy")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import sys

    from leanbert.outdir import check_out_file
    from leanbert.predict import STDIN, predict_file

    if args.out != STDIN:  # the single-file output policy of every command (leanbert.outdir)
        check_out_file(args.out, [item for item in (args.input, args.model) if item != STDIN], args.overwrite)

    def log(message: str) -> None:
        print(message, file=sys.stderr)  # stdout may carry the predictions (--out -)

    count = predict_file(args.model, args.input, args.out, text_columns=args.text_columns,
                         batch_size=args.batch_size, overwrite=args.overwrite, progress=not args.quiet,
                         log=log, max_tokens=args.max_tokens, precision=args.precision,
                         label_column=args.label_column)
    if args.out != "-":
        log(f"wrote {count} predictions to {args.out}")
    return 0
