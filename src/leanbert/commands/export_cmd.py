"""`leanbert export`: leanbert model directory -> Hugging Face transformers directory."""

from __future__ import annotations

from leanbert.commands.interop_verb import InteropVerb


def _export_to_hf():
    from leanbert.interop.hf import export_to_hf

    return export_to_hf


VERB = InteropVerb(
    name="export", help="write a Hugging Face transformers or ONNX (fp32/int8) directory",
    description="Convert a leanbert model directory into a directory that transformers' AutoModel (and "
                "the matching *ForMaskedLM / *ForPreTraining / *ForSequenceClassification class) loads "
                "with no missing or unexpected weights. Tokenizer files are copied when present.",
    examples="""examples:
  leanbert export runs/electra/model/discriminator hf/electra-disc
  python -c "import transformers; transformers.AutoModel.from_pretrained('hf/electra-disc')"

Refused (with the reason) when transformers cannot represent the model: sharing=attention|ffn, a factorized
BERT, or a combination of heads without a transformers class.
""",
    source_name="model_dir", source_help="a leanbert model directory (config.json + model.safetensors)",
    out_help="where to write the Hugging Face directory", convert=_export_to_hf)

ONNX_EXAMPLES = """
ONNX (needs pip install 'leanbert[onnx]'): model.onnx with dynamic batch and sequence axes, config.json and the
tokenizer files; `leanbert predict OUT` runs it. --quantize int8 applies onnxruntime's dynamic quantization;
--dev (the fine-tuned model's GLUE task folder or dev file) scores fp32 and int8 and prints the change.
  leanbert export runs/ft-sst2/model runs/sst2-onnx --format onnx
  leanbert export runs/ft-sst2/model runs/sst2-int8 --format onnx --quantize int8 --dev ../shared/data/glue
"""


def add_parser(subparsers) -> None:
    VERB.add_parser(subparsers)
    parser = subparsers.choices[VERB.name]
    parser.epilog += ONNX_EXAMPLES
    parser.add_argument("--format", choices=("hf", "onnx"), default="hf",
                        help="hf: a transformers directory (default); onnx: an ONNX Runtime directory")
    parser.add_argument("--quantize", choices=("int8",), help="with --format onnx: dynamic int8 weights")
    parser.add_argument("--dev", metavar="DATA", help="with --quantize: dev data to measure the change on")
    parser.set_defaults(func=run)


def run(args) -> int:
    if args.format == "onnx":
        from leanbert.export.onnx import export_onnx

        out = export_onnx(args.model_dir, args.out_dir, quantize=args.quantize, dev=args.dev,
                          overwrite=args.overwrite)
        print(f"wrote {out}")
        return 0
    if args.quantize or args.dev:
        from leanbert.errors import UserError

        raise UserError("--quantize and --dev apply to --format onnx")
    return VERB.run(args)
