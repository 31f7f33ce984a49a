"""`leanbert params`: parameter counts of a preset (with field overrides), or the table of all presets."""

from __future__ import annotations

import argparse
import json

from leanbert.config import apply_overrides

EXAMPLES = """examples:
  leanbert params                                  # table of every preset
  leanbert params albert-base
  leanbert params albert-base sharing=attention    # ALBERT's ablation: share only attention
  leanbert params bert-base embedding_size=128 --json
"""


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "params", help="parameter counts of a model preset",
        description="Print total, embedding and non-embedding parameter counts of a preset. key=value "
                    "overrides any encoder field (vocab_size, embedding_size, hidden_size, num_layers, "
                    "num_heads, intermediate_size, sharing, num_groups, ...). Counts equal what "
                    "transformers counts for the same shape (pooler included where it has one).",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("preset", nargs="?", help="preset name; omit to print the table of all presets")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="encoder field overrides")
    p.add_argument("--json", action="store_true", help='print {"total": N, "embedding": N, "non_embedding": N}')
    p.set_defaults(func=run)


def count_parameters(preset: str, overrides: list[str] | None = None) -> dict[str, int]:
    """Count on the meta device: no memory is allocated, so even albert-xxlarge is instant."""
    import torch

    from leanbert.model.model import LeanBertModel
    from leanbert.presets import model_config

    fields = apply_overrides({}, [o if o.startswith("model.") else f"model.{o}" for o in overrides or []])
    config = model_config(preset, **fields.get("model", {}))
    with torch.device("meta"):
        return LeanBertModel(config).num_parameters()


def run(args: argparse.Namespace) -> int:
    from leanbert.presets import PRESETS

    if args.preset is None:
        if args.overrides:
            raise SystemExit("leanbert params: overrides need a preset name first")
        rows = {name: count_parameters(name) for name in PRESETS}
        if args.json:
            print(json.dumps(rows, indent=2))
            return 0
        print(f"{'preset':<18} {'total':>14} {'embedding':>14} {'non-embedding':>14}")
        for name, c in rows.items():
            print(f"{name:<18} {c['total']:>14,} {c['embedding']:>14,} {c['non_embedding']:>14,}")
        return 0
    counts = count_parameters(args.preset, args.overrides)
    if args.json:
        print(json.dumps(counts))
    else:
        print(f"{args.preset}{' ' + ' '.join(args.overrides) if args.overrides else ''}")
        for key in ("total", "embedding", "non_embedding"):
            print(f"  {key.replace('_', '-'):<14} {counts[key]:>14,}  ({counts[key] / 1e6:.1f}M)")
    return 0
