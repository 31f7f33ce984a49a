"""Export of QA models: transformers' {Bert, Albert, Electra}ForQuestionAnswering (and back), the remote-code
LeanBertForQuestionAnswering for a TUPE model, and ONNX fp32 / int8 with start_logits / end_logits outputs; all
within 1e-5 of leanbert's start/end logits (ONNX fp32 1e-4)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers import randomize_, tiny_config
from leanbert.export.onnx import OnnxRunner, export_onnx, read_onnx_config
from leanbert.interop.hf import export_to_hf, import_from_hf
from leanbert.model.model import LeanBertModel
from leanbert.model_dir import load_model, save_model

transformers = pytest.importorskip("transformers")

FAMILIES = {"bert": dict(), "albert": dict(family="albert", sharing="all", embedding_size=16),
            "electra": dict(family="electra", embedding_size=16)}


def _inputs():
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(5, 101, (3, 19), generator=g)  # (B, T)
    mask = torch.ones_like(ids)
    mask[1, 11:] = 0
    ids[mask == 0] = 0
    types = (torch.arange(19) >= 7).long().expand(3, -1) * mask  # (B, T)
    return ids, mask, types


def _qa_model(tmp_path, **fields) -> tuple[LeanBertModel, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    ours = LeanBertModel(tiny_config(**fields, heads=["span"], num_labels=2)).eval()
    randomize_(ours, std=0.1)
    save_model(ours, tmp_path / "ours")
    with torch.no_grad():
        start, end = ours(*_inputs()).span_logits.unbind(-1)  # (B, T) each
    return ours, start, end


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_native_question_answering_class_matches(family, tmp_path):
    _, start, end = _qa_model(tmp_path, **FAMILIES[family])
    export_to_hf(tmp_path / "ours", tmp_path / "hf")
    theirs, info = transformers.AutoModelForQuestionAnswering.from_pretrained(tmp_path / "hf",
                                                                              output_loading_info=True)
    assert type(theirs).__name__ == f"{family.capitalize()}ForQuestionAnswering"
    assert not info["missing_keys"] and not info["unexpected_keys"], info
    ids, mask, types = _inputs()
    with torch.no_grad():
        got = theirs.eval()(input_ids=ids, attention_mask=mask, token_type_ids=types)
    real = mask.bool()  # padding positions carry no answer
    torch.testing.assert_close(got.start_logits[real], start[real], rtol=0, atol=1e-5)
    torch.testing.assert_close(got.end_logits[real], end[real], rtol=0, atol=1e-5)
    # and back: the import finds the span head
    import_from_hf(tmp_path / "hf", tmp_path / "back")
    back = load_model(tmp_path / "back").eval()
    assert back.config.heads == ["span"]
    with torch.no_grad():
        again = back(ids, mask, types).span_logits
    torch.testing.assert_close(again[..., 0][real], start[real], rtol=0, atol=1e-5)


def test_remote_code_question_answering_for_tupe(tmp_path):
    _, start, end = _qa_model(tmp_path, position="tupe")
    export_to_hf(tmp_path / "ours", tmp_path / "hf")
    theirs, info = transformers.AutoModelForQuestionAnswering.from_pretrained(
        tmp_path / "hf", trust_remote_code=True, output_loading_info=True)
    assert type(theirs).__name__ == "LeanBertForQuestionAnswering"
    assert not info["missing_keys"] and not info["unexpected_keys"], info
    ids, mask, types = _inputs()
    with torch.no_grad():
        got = theirs.eval()(input_ids=ids, attention_mask=mask, token_type_ids=types)
    real = mask.bool()  # padding positions carry no answer
    torch.testing.assert_close(got.start_logits[real], start[real], rtol=0, atol=1e-5)
    torch.testing.assert_close(got.end_logits[real], end[real], rtol=0, atol=1e-5)


@pytest.mark.parametrize("quantize", [None, "int8"])
def test_onnx_outputs_start_and_end_logits(quantize, tmp_path):
    pytest.importorskip("onnxruntime")
    _, start, end = _qa_model(tmp_path)
    export_onnx(tmp_path / "ours", tmp_path / "onnx", quantize=quantize, log=lambda *_: None)
    assert read_onnx_config(tmp_path / "onnx")["onnx"]["outputs"] == [
        "last_hidden_state", "start_logits", "end_logits"]
    runner = OnnxRunner(tmp_path / "onnx" / "model.onnx")
    ids, mask, types = _inputs()
    out = runner.run(ids.numpy(), mask.numpy(), types.numpy())
    real = mask.bool().numpy()
    tolerance = 1e-4 if quantize is None else 0.1  # int8 weights: close, not equal
    np.testing.assert_allclose(out["start_logits"][real], start.numpy()[real], rtol=0, atol=tolerance)
    np.testing.assert_allclose(out["end_logits"][real], end.numpy()[real], rtol=0, atol=tolerance)
