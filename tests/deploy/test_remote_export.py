"""`leanbert export` of configurations transformers has no class for: a self-contained modeling file and
auto_map, loaded by AutoModel / AutoModelForSequenceClassification / AutoModelForMaskedLM with
trust_remote_code=True, with outputs equal to leanbert's; shapes transformers does represent keep its classes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from helpers import randomize_, tiny_config
from leanbert.export.remote import MODELING_FILE, remote_code_reason
from leanbert.export.remote_bundle import WRAPPER, flat_name, module_file, rewrite_imports, shipped_modules
from leanbert.interop.hf import export_to_hf
from leanbert.model.model import LeanBertModel
from leanbert.model_dir import save_model

transformers = pytest.importorskip("transformers")

CONFIGS = {
    "sharing-attention": dict(family="albert", sharing="attention", embedding_size=16),
    "sharing-ffn": dict(sharing="ffn", num_groups=2, num_layers=4),
    "sharing-all-bert": dict(sharing="all"),
    "factorized-bert": dict(embedding_size=16),
    "tupe-a": dict(position="tupe"),
    "tupe-r": dict(position="tupe", position_options=dict(relative_buckets=8, relative_max_distance=16)),
    "tupe-learned-theta": dict(position="tupe", position_options=dict(cls_theta="learned")),
    "bert-r": dict(position_options=dict(relative_buckets=8, relative_max_distance=16)),
    "electra-tupe-factorized": dict(family="electra", position="tupe", embedding_size=16, hidden_act="gelu_new"),
}
AUTO = {"classifier": "AutoModelForSequenceClassification", "mlm": "AutoModelForMaskedLM", None: "AutoModel"}


def _inputs():
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(5, 101, (3, 19), generator=g)  # (B, T)
    mask = torch.ones_like(ids)
    mask[1, 11:] = 0
    mask[2, 3:] = 0
    ids[mask == 0] = 0
    types = (torch.arange(19) >= 7).long().expand(3, -1) * mask  # (B, T)
    return ids, mask, types


def _assert_ships_leanberts_own_modules(directory):
    """Every shipped .py file is a leanbert module with only its leanbert imports rewritten (no second copy)."""
    modules = shipped_modules()
    expected = {flat_name(m): m for m in modules} | {MODELING_FILE: WRAPPER}
    assert {p.name for p in directory.glob("*.py")} == set(expected)
    assert {"leanbert.config", "leanbert.model.encoder", "leanbert.model.positions.tupe"} <= set(modules)
    for name, module in expected.items():
        source = module_file(module).read_text(encoding="utf-8")
        text, rewritten = (directory / name).read_text(encoding="utf-8"), rewrite_imports(source, set(modules))
        # the modeling file ends with sibling imports of every shipped module (remote_bundle.bundle_files)
        assert text.startswith(rewritten) if name == MODELING_FILE else text == rewritten, name
        assert "from leanbert" not in (directory / name).read_text(encoding="utf-8"), name


@pytest.mark.parametrize("head", ["classifier", "mlm", None])
@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_remote_code_model_equals_leanbert(name, head, tmp_path):
    heads = [head] if head else []
    config = tiny_config(**CONFIGS[name], heads=heads, num_labels=3)
    assert remote_code_reason(config) is not None
    torch.manual_seed(0)
    ours = LeanBertModel(config).eval()
    randomize_(ours, std=0.1)
    save_model(ours, tmp_path / "ours")
    export_to_hf(tmp_path / "ours", tmp_path / "hf")
    _assert_ships_leanberts_own_modules(tmp_path / "hf")
    loader = getattr(transformers, AUTO[head])
    theirs, info = loader.from_pretrained(tmp_path / "hf", trust_remote_code=True, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"], info
    ids, mask, types = _inputs()
    real = mask.bool()
    with torch.no_grad():
        mine = ours(ids, mask, types)
        got = theirs.eval()(input_ids=ids, attention_mask=mask, token_type_ids=types)
    if head == "classifier":
        torch.testing.assert_close(got.logits, mine.logits, rtol=0, atol=1e-5)
    elif head == "mlm":
        torch.testing.assert_close(got.logits[real], mine.logits[real], rtol=0, atol=1e-5)
    else:
        torch.testing.assert_close(got.last_hidden_state[real], mine.last_hidden_state[real], rtol=0, atol=1e-5)
        if mine.pooler_output is not None:
            torch.testing.assert_close(got.pooler_output, mine.pooler_output, rtol=0, atol=1e-5)


def test_the_encoder_of_a_classifier_export_loads_with_automodel(tmp_path):
    torch.manual_seed(0)
    ours = LeanBertModel(tiny_config(position="tupe", heads=["classifier"])).eval()
    randomize_(ours, std=0.1)
    save_model(ours, tmp_path / "ours")
    export_to_hf(tmp_path / "ours", tmp_path / "hf")
    base, info = transformers.AutoModel.from_pretrained(tmp_path / "hf", trust_remote_code=True,
                                                        output_loading_info=True)
    assert not info["missing_keys"]
    ids, mask, types = _inputs()
    with torch.no_grad():
        got = base.eval()(input_ids=ids, attention_mask=mask, token_type_ids=types).last_hidden_state
        want = ours(ids, mask, types).last_hidden_state
    torch.testing.assert_close(got[mask.bool()], want[mask.bool()], rtol=0, atol=1e-5)


def test_fine_tuned_remote_export_keeps_labels_and_tokenizer(sst2_finetuned, tmp_path):
    """A fine-tuned TUPE classifier (the fixture's weights with TUPE positions) keeps id2label and its
    tokenizer, and the pipeline runs it."""
    import dataclasses

    from leanbert.model_dir import load_model, read_model_config

    source = load_model(sst2_finetuned / "model")
    config = dataclasses.replace(source.config, position="tupe")
    torch.manual_seed(0)
    model = LeanBertModel(config).eval()
    model.load_state_dict(source.state_dict(), strict=False)
    task = read_model_config(sst2_finetuned / "model")[1]["task"]
    save_model(model, tmp_path / "tupe", tokenizer_dir=sst2_finetuned / "model", extra={"task": task})
    export_to_hf(tmp_path / "tupe", tmp_path / "hf")
    meta = json.loads((tmp_path / "hf" / "config.json").read_text())
    assert meta["id2label"] == {"0": "0", "1": "1"} and meta["architectures"] == ["LeanBertForSequenceClassification"]
    pipe = transformers.pipeline("text-classification", model=str(tmp_path / "hf"), trust_remote_code=True)
    assert pipe("a gorgeous , witty film")[0]["label"] in ("0", "1")


def test_modeling_file_needs_no_leanbert(tmp_path):
    """Loaded in a fresh interpreter where importing leanbert fails."""
    torch.manual_seed(0)
    save_model(LeanBertModel(tiny_config(sharing="ffn", heads=["classifier"])), tmp_path / "ours")
    export_to_hf(tmp_path / "ours", tmp_path / "hf")
    script = (
        "import sys; sys.modules['leanbert'] = None\n"
        "import torch, transformers\n"
        f"m = transformers.AutoModelForSequenceClassification.from_pretrained({str(tmp_path / 'hf')!r}, "
        "trust_remote_code=True)\n"
        "print(tuple(m(input_ids=torch.tensor([[2, 7, 3]])).logits.shape))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                          env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1",
                               "HOME": str(tmp_path)})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith("(1, 2)")


def test_representable_shapes_keep_transformers_classes(tmp_path):
    save_model(LeanBertModel(tiny_config(family="albert", sharing="all", embedding_size=16)), tmp_path / "a")
    export_to_hf(tmp_path / "a", tmp_path / "hf")
    meta = json.loads((tmp_path / "hf" / "config.json").read_text())
    assert meta["model_type"] == "albert" and "auto_map" not in meta
    assert not (tmp_path / "hf" / MODELING_FILE).exists()
