"""The encoder's switches: factorization, sharing modes, score output, padding, and a float64 reference."""

import math

import pytest
import torch
import torch.nn.functional as F

from helpers import random_inputs, randomize_, tiny_config
from leanbert.config import ConfigError
from leanbert.model.attention import AttentionBias
from leanbert.model.config import ModelConfig
from leanbert.model.encoder import block_indices
from leanbert.model.model import LeanBertModel
from leanbert.model.positions import POSITION_SCHEMES, AbsoluteOptions, AbsolutePositions, PositionSchemeSpec


def reference_forward(model: LeanBertModel, ids, mask, types, position_bias=None, hook=None):
    """BERT's equations written out directly in float64 from the parameters (no shared code paths).
    position_bias: (1, heads, T, T) added to every layer's logits; hook: applied to the summed embeddings."""
    enc = model.encoder
    cfg = model.config
    p = {k: v.double() for k, v in model.state_dict().items()}
    T = ids.shape[1]
    x = p["encoder.embeddings.word_embeddings.weight"][ids] + p["encoder.embeddings.position_embeddings.weight"][:T]
    x = x + p["encoder.embeddings.token_type_embeddings.weight"][types]
    if hook is not None:
        x = hook(x)
    x = F.layer_norm(x, (cfg.embedding_size,), p["encoder.embeddings.norm.weight"], p["encoder.embeddings.norm.bias"],
                     cfg.layer_norm_eps)
    if cfg.embedding_size != cfg.hidden_size:
        x = x @ p["encoder.embeddings.project.weight"].T + p["encoder.embeddings.project.bias"]
    nh, d = cfg.num_heads, cfg.head_dim
    for layer in range(cfg.num_layers):
        a = f"encoder.attention.{enc.attention_index[layer]}."
        q, k, v = (x @ p[a + "qkv.weight"].T + p[a + "qkv.bias"]).split(cfg.hidden_size, dim=-1)
        heads = lambda t: t.view(t.shape[0], T, nh, d).transpose(1, 2)  # noqa: E731
        scores = heads(q) @ heads(k).transpose(-1, -2) / math.sqrt(d)
        if position_bias is not None:
            scores = scores + position_bias.double()
        scores = scores.masked_fill(mask[:, None, None, :] == 0, float("-inf"))
        ctx = (scores.softmax(-1) @ heads(v)).transpose(1, 2).reshape(x.shape)
        x = F.layer_norm(x + ctx @ p[a + "out.weight"].T + p[a + "out.bias"], (cfg.hidden_size,),
                         p[a + "norm.weight"], p[a + "norm.bias"], cfg.layer_norm_eps)
        f = f"encoder.ffn.{enc.ffn_index[layer]}."
        h = F.gelu(x @ p[f + "fc_in.weight"].T + p[f + "fc_in.bias"]) @ p[f + "fc_out.weight"].T + p[f + "fc_out.bias"]
        x = F.layer_norm(x + h, (cfg.hidden_size,), p[f + "norm.weight"], p[f + "norm.bias"], cfg.layer_norm_eps)
    return x


@pytest.mark.parametrize("sharing", ["none", "all", "attention", "ffn"])
@pytest.mark.parametrize("embedding_size", [32, 16])
def test_forward_matches_float64_reference(sharing, embedding_size):
    model = LeanBertModel(tiny_config(sharing=sharing, embedding_size=embedding_size, num_layers=3)).eval()
    randomize_(model)
    ids, mask, types = random_inputs()
    with torch.no_grad():
        out = model(ids, mask, types).last_hidden_state
    ref = reference_forward(model, ids, mask, types)
    keep = mask.bool()
    assert torch.allclose(out[keep].double(), ref[keep], atol=1e-5)


def test_sharing_modes_store_the_right_number_of_blocks():
    counts = {}
    for sharing in ("none", "attention", "ffn", "all"):
        enc = LeanBertModel(tiny_config(sharing=sharing, num_layers=4)).encoder
        counts[sharing] = (len(enc.attention), len(enc.ffn))
    assert counts == {"none": (4, 4), "attention": (1, 4), "ffn": (4, 1), "all": (1, 1)}
    enc = LeanBertModel(tiny_config(sharing="all", num_layers=6, num_groups=3)).encoder
    assert enc.attention_index == [0, 0, 1, 1, 2, 2] == enc.ffn_index
    assert block_indices(12, 1) == [0] * 12


def test_shared_layers_receive_gradient_from_every_layer():
    model = LeanBertModel(tiny_config(sharing="all", num_layers=3))
    ids, mask, types = random_inputs()
    model(ids, mask, types).last_hidden_state.sum().backward()
    assert model.encoder.attention[0].qkv.weight.grad.abs().sum() > 0


def test_attention_scores_are_pre_softmax_and_default_path_is_unchanged():
    model = LeanBertModel(tiny_config()).eval()
    randomize_(model)
    ids, mask, types = random_inputs()
    with torch.no_grad():
        fast = model(ids, mask, types)
        slow = model(ids, mask, types, output_hidden_states=True, output_attention_scores=True)
    assert fast.attention_scores is None and fast.hidden_states is None
    assert torch.allclose(fast.last_hidden_state, slow.last_hidden_state, atol=1e-5)
    assert len(slow.hidden_states) == 3 and len(slow.attention_scores) == 2
    scores = slow.attention_scores[0]
    assert scores.shape == (3, 4, 17, 17)
    # Recompute layer 0's scores from its input: QK^T / sqrt(d), no mask, no softmax.
    attn = model.encoder.attention[0]
    q, k, _ = attn.qkv(slow.hidden_states[0]).split(32, dim=-1)
    q = q.view(3, 17, 4, 8).transpose(1, 2)
    k = k.view(3, 17, 4, 8).transpose(1, 2)
    real = (mask[:, None, :, None] * mask[:, None, None, :]).bool().expand_as(scores)  # padding rows/cols are moot
    assert torch.allclose(scores[real], (q @ k.transpose(-1, -2) / math.sqrt(8))[real], atol=1e-5)


class AbsoluteWithFixedBias(AbsolutePositions):
    """A toy scheme for the tests: absolute positions plus a fixed random per-head logits bias."""

    calls = 0

    def __init__(self, config):
        super().__init__(config)
        g = torch.Generator().manual_seed(1)
        P = config.max_positions
        self.register_buffer("bias", torch.randn(1, config.num_heads, P, P, generator=g), persistent=False)

    def attention_bias(self, length: int) -> torch.Tensor:
        AbsoluteWithFixedBias.calls += 1
        return self.bias[:, :, :length, :length]  # (1, heads, T, T)


@pytest.fixture
def toy_scheme(monkeypatch):
    monkeypatch.setitem(POSITION_SCHEMES, "toy_bias", PositionSchemeSpec(  # one registration, nothing else
        "toy_bias", AbsoluteWithFixedBias, AbsoluteOptions, hf_reason=lambda o: "a toy bias",
        shareable_across_widths=lambda o: False))
    AbsoluteWithFixedBias.calls = 0
    return "toy_bias"


def test_position_bias_is_added_to_every_layer(toy_scheme):
    plain_model = LeanBertModel(tiny_config()).eval()
    model = LeanBertModel(tiny_config(position=toy_scheme)).eval()
    model.load_state_dict(plain_model.state_dict())  # the scheme adds no saved state: same keys
    bias = model.encoder.position_scheme.bias[:, :, :17, :17]
    ids, mask, types = random_inputs()
    with torch.no_grad():
        plain = plain_model(ids, mask, types, output_attention_scores=True)
        biased = model(ids, mask, types, output_attention_scores=True)
        biased_fast = model(ids, mask, types)
    assert torch.allclose(biased.last_hidden_state, biased_fast.last_hidden_state, atol=1e-5)
    # Layer 0 sees the same input, so its scores differ exactly by the bias.
    assert torch.allclose(biased.attention_scores[0] - plain.attention_scores[0], bias.expand(3, -1, -1, -1),
                          atol=1e-5)
    assert not torch.allclose(biased.last_hidden_state, plain.last_hidden_state, atol=1e-3)


@pytest.mark.parametrize("num_layers, sharing", [(1, "none"), (3, "none"), (6, "all")])
@pytest.mark.parametrize("scores", [False, True])
def test_position_and_padding_bias_are_combined_once_per_forward(toy_scheme, num_layers, sharing, scores):
    model = LeanBertModel(tiny_config(position=toy_scheme, num_layers=num_layers, sharing=sharing)).eval()
    randomize_(model)
    encoder = model.encoder
    ids, mask, types = random_inputs()
    built, received = [], []
    original = encoder.attention_bias

    def recording_attention_bias(*args):
        built.append(original(*args))
        return built[-1]

    encoder.attention_bias = recording_attention_bias
    hooks = [block.register_forward_pre_hook(lambda module, args: received.append(args[1]))
             for block in encoder.attention]
    with torch.no_grad():
        out = model(ids, mask, types, output_attention_scores=scores)
    for hook in hooks:
        hook.remove()
    del encoder.attention_bias
    assert len(built) == 1 and AbsoluteWithFixedBias.calls == 1  # one per forward, whatever the depth
    bias = built[0]
    assert isinstance(bias, AttentionBias) and len(received) == num_layers
    assert all(layer_bias is bias for layer_bias in received)  # every layer gets the very same tensors
    padding = (1.0 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min
    position = encoder.position_scheme.bias[:, :, :17, :17]
    assert torch.equal(bias.position, position) and torch.equal(bias.combined, padding + position)
    # Outputs unchanged: the float64 reference adds the position bias inside every layer.
    ref = reference_forward(model, ids, mask, types, position_bias=position)
    keep = mask.bool()
    assert torch.allclose(out.last_hidden_state[keep].double(), ref[keep], atol=1e-5)


@pytest.mark.parametrize("embedding_size", [32, 16])
def test_embedding_hook_runs_before_the_embedding_layernorm(embedding_size):
    """TNF's slot: the hook sees (token + position + type) embeddings in E dims, before LayerNorm and E -> H."""
    model = LeanBertModel(tiny_config(embedding_size=embedding_size, num_layers=2)).eval()
    randomize_(model)
    ids, mask, types = random_inputs()
    note = torch.randn(3, 17, embedding_size, generator=torch.Generator().manual_seed(3))
    seen = []

    def mix_note(x):  # (B, T, E): TNF's (1 - lambda) e + lambda note
        seen.append(x.shape)
        return 0.5 * x + 0.5 * note.to(x.dtype)

    with torch.no_grad():
        out = model(ids, mask, types, embedding_hooks=[mix_note]).last_hidden_state
        plain = model(ids, mask, types).last_hidden_state
    ref = reference_forward(model, ids, mask, types, hook=mix_note)
    keep = mask.bool()
    assert seen[0] == (3, 17, embedding_size)
    assert torch.allclose(out[keep].double(), ref[keep], atol=1e-5)
    assert not torch.allclose(out, plain, atol=1e-3)


def test_unpadded_path_equals_padded_path():
    """Projections/FFN on real tokens only (unpadding) give the same outputs and gradients as the padded path."""
    from leanbert.model import padding

    model = LeanBertModel(tiny_config(heads=["mlm"], hidden_dropout=0.0)).train()
    randomize_(model)
    ids, mask, types = random_inputs()
    results = []
    for threshold in (0.0, 1.01):  # never unpad, always unpad
        padding.UNPAD_BELOW_FILL = threshold
        try:
            model.zero_grad()
            out = model(ids, mask, types)
            (out.mlm_logits * mask[..., None]).square().mean().backward()
        finally:
            padding.UNPAD_BELOW_FILL = 0.95
        grads = [p.grad.clone() for p in model.parameters() if p.grad is not None]  # the pooler gets none
        results.append((out.last_hidden_state * mask[..., None], grads))
    (h0, g0), (h1, g1) = results
    assert torch.allclose(h0, h1, atol=1e-5) and len(g0) == len(g1) > 10
    for a, b in zip(g0, g1):
        assert torch.allclose(a, b, atol=1e-5)


def test_padding_does_not_change_real_tokens():
    model = LeanBertModel(tiny_config()).eval()
    ids, mask, types = random_inputs()
    with torch.no_grad():
        full = model(ids[1:2, :8], mask[1:2, :8], types[1:2, :8]).last_hidden_state
        padded = model(ids[1:2], mask[1:2], types[1:2]).last_hidden_state[:, :8]
    assert torch.allclose(full, padded, atol=1e-5)


def test_sparse_mlm_equals_dense_at_selected_positions():
    model = LeanBertModel(tiny_config(heads=["mlm"], embedding_size=16)).eval()
    ids, mask, types = random_inputs()
    positions = torch.zeros_like(ids, dtype=torch.bool)
    positions[0, 3] = positions[2, 5] = positions[2, 9] = True
    with torch.no_grad():
        dense = model(ids, mask, types).logits
        sparse = model(ids, mask, types, mlm_positions=positions).mlm_logits
    assert sparse.shape == (3, 101)
    assert torch.allclose(sparse, dense[positions], atol=1e-5)


def test_output_names_follow_transformers():
    ids, mask, types = random_inputs()
    out = LeanBertModel(tiny_config(heads=["mlm", "sop"], family="albert"))(ids, mask, types)
    assert out.sop_logits.shape == (3, 2) and out["logits"].shape == (3, 17, 101)
    out = LeanBertModel(tiny_config(heads=["mlm", "nsp"]))(ids, mask, types)
    assert out.seq_relationship_logits.shape == (3, 2)
    out = LeanBertModel(tiny_config(heads=["rtd"], family="electra"))(ids, mask, types)
    assert out.logits.shape == (3, 17) and out.pooler_output is None
    out = LeanBertModel(tiny_config(heads=["classifier"], num_labels=1))(ids, mask, types)
    assert out.logits.shape == (3, 1)


@pytest.mark.parametrize("fields, message", [
    (dict(hidden_size=30), "divisible by model.num_heads"),
    (dict(sharing="some"), "model.sharing='some' is not allowed; choose one of none, all, attention, ffn"),
    (dict(num_groups=2), "num_groups > 1 only makes sense"),
    (dict(heads=["mlm", "xyz"]), "model.heads entry='xyz'"),
    (dict(hidden_dropout=1.5), "model.hidden_dropout"),
    (dict(num_layers=0), "model.num_layers=0 must be a positive integer"),
])
def test_config_errors_name_the_field(fields, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        tiny_config(**fields)


def test_embedding_size_defaults_to_hidden():
    assert ModelConfig(hidden_size=64, num_heads=4).embedding_size == 64
