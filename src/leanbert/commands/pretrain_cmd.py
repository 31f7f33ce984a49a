"""``leanbert pretrain``: pretrain an encoder (MLM, MLM+NSP, MLM+SOP, ELECTRA) from a YAML recipe."""

from __future__ import annotations

import argparse
import sys

import yaml

DESCRIPTION = """\
Pretrain a BERT-family encoder on a dataset made by `leanbert prepare`.

A run is described by a YAML recipe (configs/*.yaml) with four groups, and any key can be
changed on the command line as group.key=value:

  model.preset=NAME          a named shape (bert-mini, albert-base, electra-small, ...; `leanbert params`)
  model.<field>=VALUE        any encoder field: hidden_size, num_layers, embedding_size, sharing, ...
  objective.name=NAME        mlm | mlm+nsp | mlm+sop | electra (sets data.pairs / data.masking for you);
                             each objective has its own keys: objective.mlm_weight (all),
                             objective.sentence_weight (mlm+nsp, mlm+sop), objective.rtd_weight,
                             objective.temperature, objective.generator_fraction (electra). Naming another
                             objective than the recipe's starts that objective from its defaults.
  data.path=DIR              a prepared dataset;  data.seq_len, data.mask_prob, data.ngram, ...
  train.batch_size=N         GLOBAL sequences per optimizer step (split over grad_accum and processes)
  train.lr, train.warmup_steps, train.schedule (linear|cosine|constant), train.optimizer (adamw|lamb),
  train.max_steps, train.max_minutes (wall-clock budget), train.precision (fp32|bf16), train.compile,
  train.unpad (true|false), train.checkpoint_every, train.eval_every, train.log_every, train.seed, ...

RUN_DIR receives config.yaml (the resolved config), metrics.jsonl (one JSON line per logged step),
checkpoints/step-N/ (atomic, newest K kept) and, at the end, model/ (a model directory with the
dataset's tokenizer; model/discriminator and model/generator for ELECTRA) ready for
`leanbert export` and `leanbert finetune`.

--resume continues from the newest complete checkpoint with the exact next batch, RNG and
optimizer state: an interrupted and resumed run gives the same losses as an uninterrupted one.
Only budgets and logging/speed settings may change on resume (e.g. train.max_minutes=20;
train.compile, train.device, train.unpad), not the experiment (train.precision included).

The same command runs on a CPU, one GPU, or many GPUs/nodes under torchrun (DDP)."""

EPILOG = """\
examples:
  # a 10-minute CPU ELECTRA-small-ish run on a prepared dataset
  leanbert pretrain --config configs/electra-cpu.yaml data.path=runs/data-wp --out runs/electra

  # the same recipe with a different learning rate and a 30-minute budget
  leanbert pretrain --config configs/electra-cpu.yaml data.path=runs/data-wp train.lr=1e-3 \\
      train.max_minutes=30 --out runs/electra-lr1e-3

  # continue an interrupted run (reads runs/electra/config.yaml)
  leanbert pretrain --out runs/electra --resume

  # ALBERT (factorized, all-shared, MLM + sentence-order prediction, LAMB)
  leanbert pretrain --config configs/albert-cpu.yaml data.path=runs/data-uni --out runs/albert

  # 8 GPUs on one node: the global batch stays train.batch_size
  torchrun --nproc_per_node 8 -m leanbert.cli pretrain --config configs/electra-small.yaml \\
      data.path=DATA --out runs/electra-small

  # show the resolved config without training
  leanbert pretrain --config configs/smoke.yaml data.path=runs/data-wp --out runs/x --print-config
"""


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("pretrain", help="pretrain an encoder (MLM, NSP/SOP, ELECTRA, MC-BERT; TUPE, TNF)",
                                   description=DESCRIPTION, epilog=EPILOG,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="config overrides, e.g. train.lr=1e-3 model.hidden_size=128")
    parser.add_argument("--config", metavar="FILE.yaml", help="the recipe (see configs/)")
    parser.add_argument("--out", required=True, metavar="RUN_DIR", help="run directory")
    parser.add_argument("--resume", action="store_true",
                        help="continue from the newest complete checkpoint in RUN_DIR (from step 0 if none)")
    parser.add_argument("--print-config", action="store_true",
                        help="print the resolved config as YAML and exit")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from leanbert.pretrain import load_run_config, pretrain

    config, saved = load_run_config(args.config, args.overrides, args.out, args.resume)
    if args.print_config:
        print(yaml.safe_dump(config.to_dict(), sort_keys=False), end="")
        return 0
    result = pretrain(config, args.out, resume=args.resume, saved_config=saved, progress=not args.no_progress)
    if result.model_dir is not None:  # rank 0
        loop = result.loop
        shown = {k: round(v, 4) for k, v in loop.last_log.items()
                 if k.startswith("val_") or k in ("loss",)}
        print(f"leanbert pretrain: {loop.step} steps, {loop.tokens:,} tokens, {loop.elapsed_s / 60:.1f} min "
              f"(stopped by {loop.stop_reason}); {shown}", file=sys.stderr)
        print(f"model: {result.model_dir}")
    return 0
