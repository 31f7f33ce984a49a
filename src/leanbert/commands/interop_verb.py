"""The shape shared by `leanbert export` and `leanbert import`: SOURCE_DIR OUT_DIR [--overwrite] -> convert."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class InteropVerb:
    """One conversion verb: its texts and the library function ``convert(source, out, overwrite=...)``."""

    name: str
    help: str
    description: str
    examples: str
    source_name: str
    source_help: str
    out_help: str
    convert: Callable[[], Callable[..., Path]]  # returns the function; imported lazily (torch is slow to load)

    def add_parser(self, subparsers) -> None:
        p = subparsers.add_parser(self.name, help=self.help, description=self.description, epilog=self.examples,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
        p.add_argument(self.source_name, help=self.source_help)
        p.add_argument("out_dir", help=f"{self.out_help} (written atomically; see --overwrite)")
        p.add_argument("--overwrite", action="store_true",
                       help=f"replace a directory that an earlier `leanbert {self.name}` wrote")
        p.set_defaults(func=self.run)

    def run(self, args: argparse.Namespace) -> int:
        out = self.convert()(getattr(args, self.source_name), args.out_dir, overwrite=args.overwrite)
        print(f"wrote {out}")
        return 0
