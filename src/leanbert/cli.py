"""``leanbert <verb>``: thin argument parsing; each verb lives in ``leanbert/commands/<verb>.py`` and calls
library functions. A verb module exposes ``add_parser(subparsers)`` which registers itself and sets
``func(args) -> int``.

Errors a user can fix (bad config, bad file) are raised as ``UserError`` (or ``ConfigError``) and printed as
one line on stderr with exit status 2; they never end in a traceback. An ``OSError`` that reaches this level
(permissions, a busy directory, a full disk) is reported the same way, naming the path and the errno's meaning:
this is the one place that mapping happens.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from leanbert.config import ConfigError
from leanbert.errors import UserError
from leanbert.paths import describe_os_error

# Order here is the order in `leanbert --help`.
VERBS = ("demo", "params", "tokenizer", "prepare", "rare-words", "pretrain", "finetune", "distill", "compare",
         "augment", "predict", "export", "import")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="leanbert",
        description="Pretrain, distil and fine-tune compact BERT-family encoders (BERT, ALBERT, ELECTRA, "
                    "TUPE, TNF, MC-BERT, TinyBERT distillation), compare methods at equal compute, and export "
                    "to Hugging Face transformers and ONNX.",
        epilog="Run `leanbert VERB --help` for each verb's options and examples.",
    )
    subparsers = parser.add_subparsers(dest="verb", metavar="VERB")
    for verb in VERBS:
        try:
            module = importlib.import_module(f"leanbert.commands.{verb.replace('-', '_')}_cmd")
        except ModuleNotFoundError as err:
            if err.name and err.name.startswith("leanbert.commands."):
                continue  # verb not built yet
            raise
        module.add_parser(subparsers)
    return parser


def one_line(message: str) -> str:
    """Errors are one line on stderr (a message quoting a file's content may carry newlines)."""
    return " ".join(message.split("\n"))


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    # argparse fills a verb's trailing `key=value` positionals at their first occurrence, so settings written
    # after options (`--out DIR train.lr=1e-3`) come back unrecognised: collect them here, for every verb.
    args, extra = parser.parse_known_args(argv)
    settings = [a for a in extra if not a.startswith("-")]  # a malformed one is reported by apply_overrides
    if len(settings) < len(extra) or (settings and not hasattr(args, "overrides")):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if settings:
        args.overrides = list(args.overrides or []) + settings
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (UserError, ConfigError) as err:
        print(f"leanbert {args.verb}: error: {one_line(str(err))}", file=sys.stderr)
        return 2
    except OSError as err:
        print(f"leanbert {args.verb}: error: {one_line(describe_os_error(err))}", file=sys.stderr)
        return 2
    except MemoryError:
        print(f"leanbert {args.verb}: error: out of memory; use a smaller model, batch or vocabulary",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"leanbert {args.verb}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
