"""``leanbert rare-words DATA``: TNF's rare-word table of a prepared dataset (leanbert/addons/tnf/rare_words.py)."""

from __future__ import annotations

import argparse

EPILOG = """\
Counts every whole word (a word = its run of word pieces, as whole-word masking defines it) over the train
split, streaming the shards (memory: ~16 bytes per distinct word, e.g. ~50-200 MB for a 1 GB corpus), and
writes DATA/rare_words.json atomically: for each rare word its id, pieces and count. Rare = count in
[tnf.min_count, tnf.max_count], at most tnf.max_words words (the most frequent of them). Give the same tnf.*
settings (or the same --config) as the pretraining run: `leanbert pretrain ... tnf.enabled=true` refuses a
table made with other ones.

examples:
  leanbert rare-words data/wiki                                   # tnf defaults: 100..500, 20000 words
  leanbert rare-words data/wiki tnf.min_count=20 tnf.max_count=200 tnf.max_words=5000
  leanbert rare-words data/wiki --config configs/my-tnf-run.yaml  # the tnf group of a pretraining recipe
"""


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "rare-words", help="count whole words of a prepared dataset and store TNF's rare-word table in it",
        description="Write DATA/rare_words.json, the rare-word table TNF (tnf.enabled=true) reads.",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG)
    parser.add_argument("data", metavar="DATA", help="a dataset directory made by `leanbert prepare`")
    parser.add_argument("overrides", nargs="*", metavar="tnf.key=value",
                        help="tnf.min_count, tnf.max_count, tnf.max_words (other tnf.* keys are accepted)")
    parser.add_argument("--config", metavar="FILE.yaml", help="a pretraining recipe; its tnf group is used")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import sys
    from pathlib import Path

    from leanbert.addons.tnf.addon import TnfConfig
    from leanbert.addons.tnf.rare_words import (
        RARE_WORDS_FILE,
        RareWordSettings,
        build_rare_word_table,
        write_rare_word_table,
    )
    from leanbert.config import ConfigError, apply_overrides, from_dict, load_config_file
    from leanbert.data.tokenizer import load_tokenizer
    from leanbert.outdir import check_out_file

    raw = load_config_file(args.config) if args.config else {}
    group = {"tnf": dict(raw.get("tnf") or {})}
    apply_overrides(group, list(args.overrides or []), allowed_roots=("tnf",))
    if not isinstance(group["tnf"], dict):
        raise ConfigError("tnf must be a mapping of tnf.* keys")
    config = from_dict(TnfConfig, group["tnf"], prefix="tnf.")
    settings = RareWordSettings(*config.table_settings)
    # the table belongs in its dataset (replaced on every run), never in any other command's output
    check_out_file(Path(args.data) / RARE_WORDS_FILE, overwrite=True, flag="DATA", part_of="prepare")
    tokenizer = load_tokenizer(Path(args.data) / "tokenizer")
    table = build_rare_word_table(args.data, tokenizer, settings)
    path = write_rare_word_table(args.data, table)
    note = f"; {table.collisions} hash collision(s) dropped" if table.collisions else ""
    print(f"leanbert: {len(table)} rare words (counts {settings.min_count}..{settings.max_count}, at most "
          f"{settings.max_words}) -> {path}{note}", file=sys.stderr)
    return 0
