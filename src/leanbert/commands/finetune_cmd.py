"""``leanbert finetune``: fine-tune a model on a GLUE task or your own TSV/CSV/JSONL files."""

from __future__ import annotations

import argparse

EPILOG = """\
MODEL is a leanbert model directory, a pretraining run directory (ELECTRA: its discriminator is used), or a
local Hugging Face BERT / ALBERT / ELECTRA directory (imported on the fly; nothing is downloaded). The
pretraining heads are dropped and a fresh classifier head is trained with the encoder.

GLUE tasks (official TSV layouts; --data is the GLUE folder or the task's own folder):
  cola (mcc, accuracy)  sst2 (accuracy)  mrpc (f1, accuracy)  stsb (pearson, spearman; regression)
  qqp (f1, accuracy)  mnli (accuracy_matched, accuracy_mismatched)  qnli, rte, wnli (accuracy)

Your own data: --task custom --train FILE --dev FILE --text-columns A[,B] --label-column C [--regression]
(.tsv, .csv, .jsonl; labels are read from the training file; the metrics are accuracy, f1 (2 labels) and mcc,
or pearson and spearman with --regression).

Extractive QA: --task qa --train FILE --dev FILE with SQuAD JSON (v1.1; v2.0 with is_impossible / empty answers
switches on null answers). Contexts become windows of data.max_seq_len (384) tokens sharing data.doc_stride (128);
data.max_query_length (64), data.max_answer_length (30), data.n_best (20), data.null_threshold (0; v2). Dev
metrics are SQuAD's official ones in percent: exact_match and f1 (v1.1); exact, f1, best_exact, best_f1 (at the
best null threshold on dev, *_thresh) and the HasAns_/NoAns_ split (v2.0). OUT_DIR/predictions.json is
{question id: answer} ("" = no answer), the official evaluation scripts' input. Defaults: lr 5e-5, batch 32,
2 epochs.

Token classification (NER): --task ner --train FILE --dev FILE, CoNLL columns (token first, BIO tag last, blank
line between sentences, -DOCSTART- skipped) or JSONL {"tokens": [...], "tags": [...]}. A word's first sub-word
carries its tag (data.label_all_subwords=true: all of them). Dev metrics with seqeval's default rules:
entity_f1 (main), entity_precision, entity_recall, token_accuracy, f1_<type>. OUT_DIR/predictions.conll repeats
the dev lines with the predicted tag appended; entity_report.txt is the per-type table. Defaults: lr 5e-5,
batch 16, 3 epochs.

Multiple choice: --task multiple-choice --train FILE --dev FILE, JSONL {"context", "question", "options": [...],
"label"} (0-based), or the SWAG / HellaSwag (ctx_a, ctx_b, endings) and Social IQa (answerA.., 1-based label)
layouts. Each option is [CLS] context [SEP] question option [SEP] (the context truncated first); rows with fewer
options are masked. Metric: accuracy. OUT_DIR/predictions.jsonl: {"index", "label", "probabilities"} per dev row.
Defaults: lr 5e-5, batch 16, 3 epochs.

Options as key=value (defaults per task; ELECTRA's GLUE recipe: lr 1e-4, batch 32, 10% warm-up, 3 epochs,
10 for RTE/STS-B, 5 for CoLA/MRPC, max length 128):
  train.lr  train.epochs  train.batch_size  train.warmup_ratio  train.weight_decay
  train.layer_decay   layer-wise LR decay (ELECTRA: 0.8 small/base, 0.9 large; 1 = off)
  train.seeds=[0,1,2] one run per seed; metrics.json adds <metric>_mean and <metric>_std
  train.precision     fp32 | bf16        train.device  auto | cpu | cuda
  train.unpad         true | false: skip padding in projections/FFN (speed only; false: static shapes)
  train.max_steps     cap on optimizer steps (0 = from epochs)
  train.eval_every    also score dev every N steps (0 = per epoch); train.eval_at_start=false skips step 0's
  data.max_seq_len    tokens per example    data.max_train_examples  use the first N training rows (0 = all)

OUT_DIR gets metrics.json (dev metrics), predictions.tsv (index, prediction, gold; QA: predictions.json), model/
(the fine-tuned model: `leanbert export OUT_DIR/model HF_DIR` writes a *ForSequenceClassification, QA a
*ForQuestionAnswering) and runs/seed-N/metrics.jsonl
(training loss, learning rate, dev metrics per epoch). Malformed data stops with FILE:LINE and exit status 2.

examples:
  leanbert finetune run/electra --task sst2 --data ../shared/data/glue --out ft/sst2
  leanbert finetune run/electra --task rte --data ../shared/data/glue --out ft/rte train.layer_decay=0.8 \\
      train.seeds=[1,2,3]
  leanbert finetune minilm --task stsb --data ../shared/data/glue/STS-B --out ft/stsb train.lr=5e-5
  leanbert finetune run/electra --task custom --train reviews_train.csv --dev reviews_dev.csv \\
      --text-columns text --label-column sentiment --out ft/reviews
  leanbert finetune run/electra --task sst2 --data ../shared/data/glue --out ft/scratch --from-scratch
  leanbert finetune minilm --task qa --train train-v1.1.json --dev dev-v1.1.json --out ft/squad
  leanbert finetune minilm --task ner --train wnut_train.conll --dev wnut_dev.conll --out ft/ner
  leanbert finetune minilm --task multiple-choice --train siqa_train.jsonl --dev siqa_dev.jsonl --out ft/siqa
  torchrun --nproc_per_node 4 -m leanbert.cli finetune run/electra --task mnli --data ../shared/data/glue \\
      --out ft/mnli          # 4 processes share each global batch (train.batch_size) and the dev scoring
"""


def add_task_arguments(parser, required: bool) -> None:
    """--task, --data and the custom-task options (shared with `leanbert distill --stage task`)."""
    parser.add_argument("--task", required=required, metavar="TASK",
                        help="cola, sst2, mrpc, stsb, qqp, mnli, qnli, rte, wnli, custom, or another "
                        "task type (qa, ner, multiple-choice)")
    parser.add_argument("--data", metavar="DIR", help="GLUE folder (or the task's folder) for GLUE tasks")
    custom = parser.add_argument_group("--task custom (and the other task types: qa, ner, multiple-choice)")
    custom.add_argument("--train", metavar="FILE", help="training file (.tsv, .csv, .jsonl; qa: SQuAD .json; ner: "
                        "CoNLL or .jsonl)")
    custom.add_argument("--dev", metavar="FILE", help="dev file, same format")
    custom.add_argument("--text-columns", metavar="A[,B]", help="one text column, or two for sentence pairs")
    custom.add_argument("--label-column", metavar="C", help="label column")
    custom.add_argument("--regression", action="store_true", help="the label is a number (MSE loss)")


def load_task(args):
    """The TaskData the task options of ``add_task_arguments`` name, read by the task type that handles
    ``--task`` (leanbert.tasks: GLUE names and custom are the sequence type's, qa is extractive QA's, ...)."""
    from leanbert.tasks import TaskRequest, task_type_for

    request = TaskRequest(args.task, data=args.data, train=args.train, dev=args.dev,
                          text_columns=args.text_columns, label_column=args.label_column,
                          regression=args.regression)
    return task_type_for(args.task).load(request)


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "finetune", help="fine-tune on a GLUE task, your own data, or SQuAD (extractive QA)",
        description="Fine-tune a pretrained encoder with a task head (classification/regression, extractive QA) "
                    "and score the dev set.",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG)
    parser.add_argument("model", metavar="MODEL", help="leanbert model dir, pretraining run dir, or HF model dir")
    add_task_arguments(parser, required=True)
    parser.add_argument("--out", required=True, metavar="OUT_DIR", help="output directory")
    parser.add_argument("--from-scratch", action="store_true",
                        help="random weights with MODEL's shape and tokenizer: a no-pretraining baseline")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing OUT_DIR")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="train.* / data.* settings")
    parser.set_defaults(func=run)


def run(args) -> int:
    from leanbert.finetune.run import finetune

    for item in args.overrides:
        if "=" not in item:
            from leanbert.errors import UserError

            raise UserError(f"unexpected argument {item!r}: settings look like key=value (e.g. train.lr=1e-4)")
    task = load_task(args)
    result = finetune(args.model, task, args.out, args.overrides, from_scratch=args.from_scratch,
                      overwrite=args.overwrite, progress=not args.quiet)
    if not result.is_main:
        return 0
    metrics = result.metrics
    several = len(metrics["seeds"]) > 1
    parts = []
    for name in metrics["metric_names"]:
        if several:
            parts.append(f"{name} {metrics[name + '_mean']:.4f} +- {metrics[name + '_std']:.4f}")
        else:
            parts.append(f"{name} {metrics[name]:.4f}")
    print(f"{metrics['task']} dev: " + ", ".join(parts) + f" -> {args.out}")
    return 0
