"""Model directories: round trip, atomic writes, and clear errors for every kind of broken file."""

import json

import pytest
import torch

from helpers import random_inputs, tiny_config
from leanbert import load_model, save_model
from leanbert.atomic import write_dir_atomically
from leanbert.errors import UserError
from leanbert.model.model import LeanBertModel


@pytest.fixture
def saved(tmp_path):
    model = LeanBertModel(tiny_config(heads=["mlm", "sop"], family="albert", sharing="all", embedding_size=16))
    save_model(model, tmp_path / "m")
    return model, tmp_path / "m"


def test_round_trip_is_exact(saved):
    model, path = saved
    loaded = load_model(path)
    assert loaded.config == model.config and not loaded.training
    for (k, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), k
    ids, mask, types = random_inputs()
    with torch.no_grad():
        assert torch.equal(model.eval()(ids, mask, types).mlm_logits, loaded(ids, mask, types).mlm_logits)
    assert sorted(p.name for p in path.iterdir()) == ["config.json", "model.safetensors"]


def test_truncated_weights_name_the_file(saved):
    _, path = saved
    weights = path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(UserError, match=r"model\.safetensors: cannot read safetensors weights .*truncated"):
        load_model(path)


def test_garbage_weights(saved):
    _, path = saved
    (path / "model.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(UserError, match=r"model\.safetensors"):
        load_model(path)


def test_corrupted_config(saved):
    _, path = saved
    (path / "config.json").write_text('{"format": "leanbert-model", "model": {')
    with pytest.raises(UserError, match=r"config\.json: not valid JSON"):
        load_model(path)


def test_config_with_bad_field(saved):
    _, path = saved
    meta = json.loads((path / "config.json").read_text())
    meta["model"]["sharing"] = "sometimes"
    (path / "config.json").write_text(json.dumps(meta))
    with pytest.raises(UserError, match=r"config\.json: model\.sharing='sometimes' is not allowed"):
        load_model(path)


def test_mismatched_config_and_weights(saved):
    _, path = saved
    meta = json.loads((path / "config.json").read_text())
    meta["model"]["intermediate_size"] = 64
    (path / "config.json").write_text(json.dumps(meta))
    with pytest.raises(UserError, match=r"tensor 'encoder\.ffn\.0\.fc_in\.\w+' has shape \(48.*config\.json implies \(64"):
        load_model(path)
    meta["model"]["intermediate_size"] = 48
    meta["model"]["heads"] = ["mlm"]
    (path / "config.json").write_text(json.dumps(meta))
    with pytest.raises(UserError, match=r"unexpected 2 tensor\(s\)"):
        load_model(path)


def test_hf_directory_gets_a_hint(tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "bert"}')
    with pytest.raises(UserError, match="leanbert import"):
        load_model(tmp_path)
    with pytest.raises(UserError, match="not a directory"):
        load_model(tmp_path / "nope")


def test_failed_write_leaves_previous_directory_intact(saved, tmp_path):
    model, path = saved
    before = (path / "model.safetensors").read_bytes()

    def fail(tmp):
        (tmp / "model.safetensors").write_bytes(b"partial")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_dir_atomically(path, fail)
    assert (path / "model.safetensors").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m"]  # no temporary directory left behind
