"""``leanbert compare``: equal-compute comparisons of pretraining methods, with plots and a verdict."""

from __future__ import annotations

import argparse

DESCRIPTION = """\
Pretrain every entry of SPEC.yaml on the same dataset with the same budget (FLOPs, minutes or steps),
evaluate each (validation MLM loss at evenly spaced FLOPs marks, fine-tuning with several seeds, a linear
probe of the frozen features) and write DIR/report.md, DIR/results.json and PNG plots, with a verdict per
entry against the baseline (a difference inside the seeds' noise is a tie).

Everything in SPEC is checked before anything runs. Running the same command again continues: finished
entries are not run again and an interrupted one resumes from its newest checkpoint. Entries can run as
separate processes (or machines sharing DIR) with --entry NAME; each entry is locked by the process that
runs it, and the report lists what has finished."""

EPILOG = """\
examples:
  # the seed papers' claims at CPU scale (about an hour on 2 cores)
  leanbert compare configs/compare/seed-claims-cpu.yaml --out runs/compare-cpu

  # one entry per process, then the report over all of them
  leanbert compare configs/compare/seed-claims-cpu.yaml --out runs/compare-cpu --entry electra &
  leanbert compare configs/compare/seed-claims-cpu.yaml --out runs/compare-cpu --entry mlm
  leanbert compare configs/compare/seed-claims-cpu.yaml --out runs/compare-cpu --report-only

spec:
  data: runs/data-wp                  # a prepared dataset
  budget: {flops: 2.0e13}             # or {minutes: 10} or {steps: 2000}
  base: {model.preset: bert-mini, data.seq_len: 128, train.batch_size: 32}
  seeds: [0]                          # pretraining seeds
  baseline: mlm
  entries:
    - {name: mlm, objective.name: mlm}
    - {name: electra, objective.name: electra}
  evaluate: {valid_marks: 10, finetune: [{task: sst2, data: ../shared/data/glue, seeds: 3}], probe: []}"""


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("compare", help="compare pretraining methods at equal compute",
                                   description=DESCRIPTION, epilog=EPILOG,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("spec", metavar="SPEC.yaml", help="the comparison (see configs/compare/)")
    parser.add_argument("--out", required=True, metavar="DIR", help="where the entries and the report go")
    parser.add_argument("--entry", action="append", metavar="NAME",
                        help="run only this entry (repeatable); the report covers every finished entry")
    parser.add_argument("--report-only", action="store_true", help="run nothing; rewrite the report from the "
                                                                   "finished entries")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(func=run)


def run(args) -> int:
    from leanbert.compare import run_compare

    report = run_compare(args.spec, args.out, only=args.entry, progress=not args.no_progress,
                         report_only=args.report_only)
    print(f"leanbert compare: wrote {report}")
    return 0
