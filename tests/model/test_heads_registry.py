"""Heads are run from their registrations: a new head (here a toy multi-choice head fed candidate ids from the
batch, shaped like MC-BERT's) is one class plus one ``register_head`` call in this file, and its output rides on
ModelOutput without editing model.py."""

import pytest
import torch
from torch import nn

from helpers import random_inputs, randomize_, tiny_config
from leanbert.config import ConfigError
from leanbert.model.heads import HEADS, MaskedLMHead, register_head
from leanbert.model.model import LeanBertModel


class ToyChoiceHead(nn.Module):
    """Scores K candidate tokens per position: dense(h) . E[candidate]."""

    def __init__(self, config):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.embedding_size)

    def forward(self, hidden: torch.Tensor, word_embeddings: torch.Tensor, candidates: torch.Tensor):
        """hidden: (B, T, H); word_embeddings: (V, E); candidates: (B, T, K) token ids -> (B, T, K)."""
        return torch.einsum("bte,btke->btk", self.dense(hidden), word_embeddings[candidates])


@pytest.fixture
def toy_head():
    register_head("toy_choice", ToyChoiceHead, ("hidden", "word_embeddings", "candidates"), "choice_logits")
    yield "toy_choice"
    del HEADS["toy_choice"]


def test_a_registered_head_runs_with_its_declared_inputs_and_output(toy_head):
    model = LeanBertModel(tiny_config(heads=["mlm", toy_head])).eval()
    randomize_(model)
    ids, mask, types = random_inputs()
    candidates = torch.randint(0, 101, (3, 17, 5), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        out = model(ids, mask, types, head_inputs={"candidates": candidates})
    head = model.heads[toy_head]
    hidden = out.last_hidden_state
    expected = torch.stack([(head.dense(hidden) * model.word_embeddings[candidates[..., k]]).sum(-1)
                            for k in range(5)], dim=-1)  # (B, T, K)
    assert out.choice_logits.shape == (3, 17, 5)
    assert torch.allclose(out.choice_logits, expected, atol=1e-5) and out["choice_logits"] is out.choice_logits
    assert out.extra == {"choice_logits": out.choice_logits}
    assert out.mlm_logits.shape == (3, 17, 101) and out.logits is out.mlm_logits  # built-ins unchanged
    with pytest.raises(ValueError, match=r"head 'toy_choice' needs \['candidates'\]; pass them in head_inputs"):
        model(ids, mask, types)
    with pytest.raises(AttributeError, match="ModelOutput has no output 'nope'"):
        _ = out.nope


def test_config_accepts_exactly_the_registered_heads(toy_head):
    assert tiny_config(heads=[toy_head]).heads == [toy_head]
    del HEADS[toy_head]
    try:
        registered = ", ".join(HEADS)
        assert registered.startswith("mlm, nsp, sop, rtd, classifier")
        with pytest.raises(ConfigError, match=f"model.heads entry='toy_choice' is not allowed; choose one of "
                                              f"{registered}$"):
            tiny_config(heads=[toy_head])
    finally:
        register_head("toy_choice", ToyChoiceHead, ("hidden", "word_embeddings", "candidates"), "choice_logits")


def test_built_in_heads_declare_their_outputs():
    outputs = {name: spec.output for name, spec in HEADS.items()}
    assert {k: outputs[k] for k in ("mlm", "nsp", "sop", "rtd", "classifier")} == {
        "mlm": "mlm_logits", "nsp": "seq_relationship_logits", "sop": "sop_logits", "rtd": "rtd_logits",
        "classifier": "logits"}
    assert HEADS["mlm"].head_class is MaskedLMHead
    assert HEADS["mlm"].inputs == ("hidden", "word_embeddings", "mlm_positions")


def test_registration_mistakes_are_refused():
    with pytest.raises(ValueError, match="head 'mlm' is already registered"):
        register_head("mlm", MaskedLMHead, ("hidden",), "other_logits")
    with pytest.raises(ValueError, match="output 'last_hidden_state' is a ModelOutput field"):
        register_head("toy_bad", MaskedLMHead, ("hidden",), "last_hidden_state")
    assert "toy_bad" not in HEADS


def test_two_heads_filling_one_output_are_a_config_error(toy_head, monkeypatch):
    monkeypatch.setitem(HEADS, "mlm_twin", HEADS["mlm"])
    with pytest.raises(ConfigError, match="two heads would fill the same output"):
        LeanBertModel(tiny_config(heads=["mlm", "mlm_twin"]))
