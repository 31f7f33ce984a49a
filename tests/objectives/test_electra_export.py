"""Both ELECTRA networks, saved as the trainer saves them, export to transformers' ElectraForPreTraining and
ElectraForMaskedLM with no missing/unexpected weights and the same logits."""

from __future__ import annotations

import pytest
import torch
import transformers

from helpers import random_inputs, randomize_, tiny_config
from leanbert.interop.hf import export_to_hf
from leanbert.model_dir import load_model, save_model
from leanbert.objectives import build_objective, objective_config

HF_CLASSES = {"discriminator": ("ElectraForPreTraining", "rtd_logits"), "generator": ("ElectraForMaskedLM",
                                                                                       "mlm_logits")}


@pytest.mark.parametrize("embedding_size", [16, 32], ids=["factorized", "unfactorized-discriminator"])
def test_exported_generator_and_discriminator_load_in_transformers(embedding_size, tmp_path, make_batch):
    torch.manual_seed(0)
    objective = build_objective(objective_config("electra"),
                                tiny_config(family="electra", embedding_size=embedding_size))
    randomize_(objective)
    objective(make_batch()).loss.backward()  # a trained-looking state is not needed, but the path must work
    ids, mask, types = random_inputs()
    hf_models = {}
    for name, net in objective.models().items():
        model_dir = save_model(net, tmp_path / "model" / name)
        hf_dir = export_to_hf(model_dir, tmp_path / "hf" / name)
        cls_name, field = HF_CLASSES[name]
        hf_model, info = getattr(transformers, cls_name).from_pretrained(str(hf_dir), output_loading_info=True)
        assert not info["missing_keys"], info
        assert not info["unexpected_keys"] and not info["mismatched_keys"] and not info["error_msgs"], info
        hf_model.eval()
        net.eval()
        with torch.no_grad():
            ours = getattr(net(ids, mask, types), field)
            theirs = hf_model(input_ids=ids, attention_mask=mask, token_type_ids=types).logits
        real = mask.bool()
        torch.testing.assert_close(ours[real], theirs[real], rtol=1e-4, atol=1e-4)
        # the model directory reloads to the same network
        with torch.no_grad():
            torch.testing.assert_close(getattr(load_model(model_dir)(ids, mask, types), field), ours)
        hf_models[name] = hf_model
    gen, disc = hf_models["generator"], hf_models["discriminator"]
    assert gen.config.hidden_size == 8 and gen.config.embedding_size == embedding_size
    assert hasattr(gen.electra, "embeddings_project")  # generator width 8 != E
    # the shared embedding tables arrive identical in both exports
    for sub in ("word_embeddings", "position_embeddings", "token_type_embeddings", "LayerNorm"):
        torch.testing.assert_close(getattr(gen.electra.embeddings, sub).weight,
                                   getattr(disc.electra.embeddings, sub).weight, rtol=0, atol=0)
