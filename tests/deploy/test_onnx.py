"""`leanbert export --format onnx [--quantize int8]`: onnxruntime outputs equal PyTorch's within 1e-4 for every
family and head, several batch shapes and padding patterns, TUPE / relative buckets / sharing; int8 prints its
dev-accuracy change; `leanbert predict` runs the ONNX directory like the PyTorch model."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from helpers import randomize_, tiny_config
from leanbert.cli import main
from leanbert.model.model import LeanBertModel
from leanbert.model_dir import save_model

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from leanbert.export.onnx import ONNX_NAME, OnnxRunner, export_graph, export_onnx  # noqa: E402

TOLERANCE = 1e-4
# (batch, length, real lengths per row): full rows, ragged rows, one token, a row that is nearly all padding
SHAPES = [(1, 1, [1]), (1, 9, [9]), (3, 17, [17, 9, 2]), (4, 40, [40, 1, 33, 40]), (2, 6, [3, 6])]

CONFIGS = {
    "bert-encoder": dict(family="bert"),
    "bert-classifier": dict(family="bert", heads=["classifier"], num_labels=3),
    "bert-mlm-nsp": dict(family="bert", heads=["mlm", "nsp"]),
    "albert-encoder": dict(family="albert", embedding_size=16, sharing="all"),
    "albert-classifier": dict(family="albert", embedding_size=16, sharing="all", heads=["classifier"]),
    "electra-encoder": dict(family="electra", embedding_size=16),
    "electra-classifier": dict(family="electra", heads=["classifier"], num_labels=1),
    "electra-rtd": dict(family="electra", heads=["rtd"]),
    "tupe-r-classifier": dict(position="tupe", position_options=dict(relative_buckets=8, relative_max_distance=16),
                              heads=["classifier"]),
    "bert-r-shared-ffn": dict(position_options=dict(relative_buckets=8, relative_max_distance=16), sharing="ffn",
                              heads=["classifier"]),
}


def _inputs(batch: int, length: int, real: list[int], seed: int):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, 101, (batch, length), generator=g)  # (B, T)
    mask = (torch.arange(length)[None, :] < torch.tensor(real)[:, None]).long()  # (B, T)
    ids[mask == 0] = 0
    types = (torch.arange(length)[None, :] >= torch.tensor(real)[:, None] // 2).long() * mask  # (B, T)
    return ids, mask, types


def test_export_graph_leaves_the_model_in_eval_mode(tmp_path):
    """A caller that runs the model after tracing it must not get dropout back (it made the inference
    benchmark time leanbert in training mode)."""
    model = LeanBertModel(tiny_config(heads=["classifier"])).eval()
    export_graph(model, tmp_path / "model.onnx")
    assert not any(module.training for module in model.modules())


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_onnxruntime_equals_pytorch(name, tmp_path):
    torch.manual_seed(0)
    model = LeanBertModel(tiny_config(**CONFIGS[name])).eval()
    randomize_(model, std=0.1)
    save_model(model, tmp_path / "model")
    out = export_onnx(tmp_path / "model", tmp_path / "onnx")
    runner = OnnxRunner(out / ONNX_NAME)
    assert runner.input_names == ["input_ids", "attention_mask", "token_type_ids"]
    has_logits = bool({"classifier", "rtd", "mlm"} & set(model.config.heads))
    assert runner.output_names == ["last_hidden_state", *(["logits"] if has_logits else [])]
    for i, (batch, length, real) in enumerate(SHAPES):
        ids, mask, types = _inputs(batch, length, real, seed=i)
        with torch.no_grad():
            ours = model(ids, mask, types)  # unpadding on: what users run in PyTorch
        theirs = runner.run(ids.numpy(), mask.numpy(), types.numpy())
        real_tokens = mask.bool().numpy()
        np.testing.assert_allclose(theirs["last_hidden_state"][real_tokens],
                                   ours.last_hidden_state.numpy()[real_tokens], atol=TOLERANCE, rtol=0)
        if has_logits:
            logits = ours.logits.numpy()
            if logits.ndim == 2 and "classifier" in model.config.heads:
                np.testing.assert_allclose(theirs["logits"], logits, atol=TOLERANCE, rtol=0)
            else:  # per token (rtd (B, T), mlm (B, T, V)): the real tokens
                np.testing.assert_allclose(theirs["logits"][real_tokens], logits[real_tokens], atol=TOLERANCE,
                                           rtol=0)
    config = json.loads((out / "config.json").read_text())
    assert config["format"] == "leanbert-onnx" and config["onnx"]["opset"] >= 17
    assert config["onnx"]["quantize"] is None


def test_int8_reports_the_dev_change_and_predict_runs_onnx(sst2_finetuned, sst2_dir, tmp_path, capsys):
    model_dir = sst2_finetuned / "model"
    assert main(["export", str(model_dir), str(tmp_path / "fp32"), "--format", "onnx"]) == 0
    assert main(["export", str(model_dir), str(tmp_path / "int8"), "--format", "onnx", "--quantize", "int8",
                 "--dev", str(sst2_dir)]) == 0
    printed = capsys.readouterr().out
    assert "dev accuracy on 872 examples: fp32 " in printed and "-> int8 " in printed
    config = json.loads((tmp_path / "int8" / "config.json").read_text())
    dev = config["onnx"]["dev"]
    assert config["onnx"]["quantize"] == "int8" and dev["examples"] == 872
    assert abs(dev["change"]["accuracy"] - (dev["int8"]["accuracy"] - dev["fp32"]["accuracy"])) < 1e-12
    for name in ("tokenizer.json", "config.json", ONNX_NAME):
        assert (tmp_path / "int8" / name).is_file()
    assert (tmp_path / "int8" / ONNX_NAME).stat().st_size < 0.6 * (tmp_path / "fp32" / ONNX_NAME).stat().st_size

    lines = (sst2_dir / "dev.tsv").read_text(encoding="utf-8").splitlines(keepends=True)[:101]
    (tmp_path / "dev.tsv").write_text("".join(lines), encoding="utf-8")
    preds = {}
    for model in (sst2_finetuned, tmp_path / "fp32", tmp_path / "int8"):
        out = tmp_path / f"{model.name}.tsv"
        assert main(["predict", str(model), "--input", str(tmp_path / "dev.tsv"), "--text-columns", "sentence",
                     "--out", str(out), "--quiet", "--batch-size", "8"]) == 0
        preds[model.name] = [line.split("\t") for line in out.read_text().splitlines()[1:]]
    torch_rows, fp32_rows, int8_rows = preds["sst2"], preds["fp32"], preds["int8"]
    assert [r[1] for r in fp32_rows] == [r[1] for r in torch_rows]
    np.testing.assert_allclose([float(r[2]) for r in fp32_rows], [float(r[2]) for r in torch_rows], atol=1e-4)
    agree = np.mean([a[1] == b[1] for a, b in zip(int8_rows, torch_rows)])
    assert agree >= 0.9


def test_onnx_errors(sst2_finetuned, tmp_path, capsys):
    model_dir = sst2_finetuned / "model"
    cases = [
        (["--format", "onnx", "--dev", str(tmp_path)], "needs --quantize int8"),
        (["--quantize", "int8"], "apply to --format onnx"),
        (["--format", "onnx", "--quantize", "int8", "--dev", str(tmp_path / "nope")], "no such file"),
    ]
    for args, message in cases:
        assert main(["export", str(model_dir), str(tmp_path / "out"), *args]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
        assert not (tmp_path / "out").exists()
