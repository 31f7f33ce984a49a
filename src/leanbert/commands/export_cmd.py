"""`leanbert export`: leanbert model directory -> Hugging Face transformers directory."""

from __future__ import annotations

import argparse

EXAMPLES = """examples:
  leanbert export runs/electra/model/discriminator hf/electra-disc
  python -c "import transformers; transformers.AutoModel.from_pretrained('hf/electra-disc')"

Refused (with the reason) when transformers cannot represent the model: sharing=attention|ffn, a factorized
BERT, TUPE positions, or a combination of heads without a transformers class.
"""


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "export", help="write a Hugging Face transformers directory",
        description="Convert a leanbert model directory into a directory that transformers' AutoModel (and "
                    "the matching *ForMaskedLM / *ForPreTraining / *ForSequenceClassification class) loads "
                    "with no missing or unexpected weights. Tokenizer files are copied when present.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model_dir", help="a leanbert model directory (config.json + model.safetensors)")
    p.add_argument("out_dir", help="where to write the Hugging Face directory (replaced atomically)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from leanbert.interop.hf import export_to_hf

    out = export_to_hf(args.model_dir, args.out_dir)
    print(f"wrote {out}")
    return 0
