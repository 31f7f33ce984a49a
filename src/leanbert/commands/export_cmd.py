"""`leanbert export`: leanbert model directory -> Hugging Face transformers directory."""

from __future__ import annotations

from leanbert.commands.interop_verb import InteropVerb


def _export_to_hf():
    from leanbert.interop.hf import export_to_hf

    return export_to_hf


VERB = InteropVerb(
    name="export", help="write a Hugging Face transformers directory",
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

add_parser = VERB.add_parser
run = VERB.run
