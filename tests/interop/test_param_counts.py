"""Every preset's parameter count equals what transformers counts for the same shape."""

import json

import pytest
import torch
import transformers

from leanbert.cli import main
from leanbert.interop.hf import hf_config_dict
from leanbert.model.model import LeanBertModel
from leanbert.presets import PRESETS, model_config

BASE_CLASSES = {"bert": "BertModel", "albert": "AlbertModel", "electra": "ElectraModel"}


@pytest.mark.parametrize("name", list(PRESETS))
def test_preset_counts_equal_transformers(name):
    config = model_config(name)
    hf_dict = hf_config_dict(config)
    config_cls = transformers.AutoConfig.for_model(hf_dict.pop("model_type")).__class__
    with torch.device("meta"):
        hf_model = getattr(transformers, BASE_CLASSES[config.family])(config_cls(**hf_dict))
        ours = LeanBertModel(config).num_parameters()["total"]
    assert ours == sum(p.numel() for p in hf_model.parameters())


def test_albert_base_sharing_ablation_near_paper():
    paper = {"none": 89e6, "attention": 64e6, "ffn": 38e6, "all": 12e6}
    for sharing, expected in paper.items():
        with torch.device("meta"):
            total = LeanBertModel(model_config("albert-base", sharing=sharing)).num_parameters()["total"]
        assert abs(total - expected) / expected < 0.03, (sharing, total)  # the paper rounds to 1M


def test_params_cli_json(capsys):
    assert main(["params", "albert-base", "sharing=attention", "--json"]) == 0
    counts = json.loads(capsys.readouterr().out)
    assert counts["total"] == counts["embedding"] + counts["non_embedding"]
    assert 63e6 < counts["total"] < 65e6


def test_params_cli_bad_override_is_one_line_error(capsys):
    assert main(["params", "albert-base", "sharing=everything"]) == 2
    err = capsys.readouterr().err
    assert "model.sharing='everything' is not allowed" in err and "Traceback" not in err
    assert main(["params", "no-such-preset"]) == 2
    assert "unknown preset 'no-such-preset'" in capsys.readouterr().err
