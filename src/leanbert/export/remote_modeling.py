"""Self-contained modeling code for leanbert encoders that transformers' own classes cannot represent
(ALBERT's attention-only / FFN-only sharing, a factorized BERT, TUPE positions, relative position buckets).

``leanbert export`` copies this file verbatim into the exported directory as ``modeling_leanbert.py`` and
points config.json's ``auto_map`` at it, so

    AutoModel / AutoModelForSequenceClassification / AutoModelForMaskedLM
        .from_pretrained(DIR, trust_remote_code=True)

load the model with no leanbert installed. It depends on torch and transformers only, and computes what
leanbert's encoder computes (post-LayerNorm BERT layers; see leanbert's model/ package for the papers):
word (+ absolute position) (+ token type) embeddings -> LayerNorm -> optional E -> H projection; layer i uses
attention block ``i * A // L`` and FFN block ``i * F // L`` (sharing); an additive per-head position bias
(TUPE's untied logits with [CLS] reset, T5 relative buckets) is computed once per forward.
Parameter names equal leanbert's, under the ``leanbert.`` prefix.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import (
    BaseModelOutputWithPooling,
    MaskedLMOutput,
    SequenceClassifierOutput,
)

ACTIVATIONS = {
    "gelu": F.gelu,
    "gelu_new": lambda x: F.gelu(x, approximate="tanh"),
    "relu": F.relu,
    "silu": F.silu,
}


class LeanBertConfig(PretrainedConfig):
    model_type = "leanbert"

    def __init__(self, vocab_size=30522, embedding_size=768, hidden_size=768, num_hidden_layers=12,
                 num_attention_heads=12, intermediate_size=3072, hidden_act="gelu", hidden_dropout_prob=0.1,
                 attention_probs_dropout_prob=0.1, max_position_embeddings=512, type_vocab_size=2,
                 layer_norm_eps=1e-12, initializer_range=0.02, sharing="none", num_groups=1,
                 position="absolute", relative_buckets=0, relative_max_distance=128, untie_cls=True,
                 cls_theta="derived", family="bert", pad_token_id=0, **kwargs):
        super().__init__(pad_token_id=pad_token_id, **kwargs)
        self.vocab_size, self.embedding_size, self.hidden_size = vocab_size, embedding_size, hidden_size
        self.num_hidden_layers, self.num_attention_heads = num_hidden_layers, num_attention_heads
        self.intermediate_size, self.hidden_act = intermediate_size, hidden_act
        self.hidden_dropout_prob = hidden_dropout_prob
        self.attention_probs_dropout_prob = attention_probs_dropout_prob
        self.max_position_embeddings, self.type_vocab_size = max_position_embeddings, type_vocab_size
        self.layer_norm_eps, self.initializer_range = layer_norm_eps, initializer_range
        self.sharing, self.num_groups = sharing, num_groups
        self.position, self.relative_buckets = position, relative_buckets
        self.relative_max_distance = relative_max_distance
        self.untie_cls, self.cls_theta, self.family = untie_cls, cls_theta, family

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads


# ------------------------------------------------------------------------------------------------------------
# Positions


def relative_bucket_ids(length: int, num_buckets: int, max_distance: int, untie_cls: bool,
                        device: torch.device) -> torch.Tensor:
    """(T, T) T5 bidirectional buckets of key j seen from query i; [CLS]'s row/column get their own ids."""
    position = torch.arange(length, device=device)
    offset = position[None, :] - position[:, None]  # (T, T)
    half = num_buckets // 2
    exact = half // 2
    side = (offset > 0).long() * half
    distance = offset.abs()
    far = exact + (torch.log(distance.clamp(min=exact).float() / exact) / math.log(max_distance / exact)
                   * (half - exact)).long()
    buckets = side + torch.where(distance < exact, distance, far.clamp(max=half - 1))  # (T, T)
    if untie_cls:
        first_row, first_column = (position == 0)[:, None], (position == 0)[None, :]
        buckets = torch.where(first_column, torch.full_like(buckets, num_buckets), buckets)
        buckets = torch.where(first_row, torch.full_like(buckets, half), buckets)
    return buckets


class RelativePositionBias(nn.Module):
    def __init__(self, config: LeanBertConfig):
        super().__init__()
        self.num_buckets, self.max_distance = config.relative_buckets, config.relative_max_distance
        self.untie_cls = config.untie_cls
        self.bias = nn.Embedding(config.relative_buckets + int(config.untie_cls), config.num_attention_heads)

    def forward(self, length: int) -> torch.Tensor:
        ids = relative_bucket_ids(length, self.num_buckets, self.max_distance, self.untie_cls,
                                  self.bias.weight.device)
        return self.bias(ids).permute(2, 0, 1)  # (heads, T, T)


def relative_or_none(config: LeanBertConfig) -> RelativePositionBias | None:
    return RelativePositionBias(config) if config.relative_buckets else None


class AbsolutePositions(nn.Embedding):
    """Learned positions added to the input, and optional relative buckets."""

    attention_scale = None

    def __init__(self, config: LeanBertConfig):
        super().__init__(config.max_position_embeddings, config.embedding_size)
        self.relative = relative_or_none(config)

    def input_term(self, length: int) -> torch.Tensor:
        return self.weight[:length]  # (T, E)

    def attention_bias(self, length: int) -> torch.Tensor | None:
        return None if self.relative is None else self.relative(length).unsqueeze(0)  # (1, heads, T, T)


class TupePositions(nn.Module):
    """TUPE's untied position logits (Ke et al. 2021): (p_i U_Q)(p_j U_K)^T / sqrt(2d), [CLS] reset."""

    def __init__(self, config: LeanBertConfig):
        super().__init__()
        hidden = config.hidden_size
        self.num_heads, self.head_dim = config.num_attention_heads, config.head_dim
        self.table = nn.Embedding(config.max_position_embeddings + 1, hidden)  # row 0: virtual [CLS] position
        self.norm = nn.LayerNorm(hidden, eps=config.layer_norm_eps)
        self.query = nn.Linear(hidden, hidden)
        self.key = nn.Linear(hidden, hidden)
        self.attention_scale = 1.0 / math.sqrt(2 * config.head_dim)
        self.untie_cls = config.untie_cls
        self.learned_theta = config.untie_cls and config.cls_theta == "learned"
        if self.learned_theta:
            self.cls_to_others = nn.Parameter(torch.zeros(config.num_attention_heads))
            self.others_to_cls = nn.Parameter(torch.zeros(config.num_attention_heads))
        self.relative = relative_or_none(config)

    def input_term(self, length: int) -> None:
        return None

    def attention_bias(self, length: int) -> torch.Tensor:
        rows = self.norm(self.table.weight[: length + 1])  # (T+1, H)
        q = self.query(rows).view(length + 1, self.num_heads, self.head_dim).transpose(0, 1)  # (nh, T+1, d)
        k = self.key(rows).view(length + 1, self.num_heads, self.head_dim).transpose(0, 1)  # (nh, T+1, d)
        full = torch.matmul(q * self.attention_scale, k.transpose(-1, -2))  # (nh, T+1, T+1)
        term = full[:, 1:, 1:]  # (nh, T, T)
        if self.untie_cls:
            if self.learned_theta:
                cls_to_others, others_to_cls = self.cls_to_others, self.others_to_cls
            else:
                cls_to_others, others_to_cls = full[:, 0, 0], full[:, 1, 1]  # (nh,)
            index = torch.arange(length, device=term.device)
            first_row, first_column = (index == 0)[:, None], (index == 0)[None, :]
            term = torch.where(first_column, others_to_cls[:, None, None].to(term.dtype), term)
            term = torch.where(first_row, cls_to_others[:, None, None].to(term.dtype), term)
        if self.relative is not None:
            term = term + self.relative(length).to(term.dtype)
        return term.unsqueeze(0)  # (1, nh, T, T)


POSITIONS = {"absolute": AbsolutePositions, "tupe": TupePositions}


# ------------------------------------------------------------------------------------------------------------
# Encoder


class Embeddings(nn.Module):
    def __init__(self, config: LeanBertConfig):
        super().__init__()
        E = config.embedding_size
        self.word_embeddings = nn.Embedding(config.vocab_size, E, padding_idx=config.pad_token_id)
        self.position_embeddings = POSITIONS[config.position](config)
        types = config.type_vocab_size
        self.token_type_embeddings = nn.Embedding(types, E) if types else None
        self.norm = nn.LayerNorm(E, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.project = nn.Linear(E, config.hidden_size) if E != config.hidden_size else None

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None) -> torch.Tensor:
        x = self.word_embeddings(input_ids)  # (B, T, E)
        position_term = self.position_embeddings.input_term(input_ids.shape[1])
        if position_term is not None:
            x = x + position_term
        if self.token_type_embeddings is not None:
            x = x + (self.token_type_embeddings.weight[0] if token_type_ids is None
                     else self.token_type_embeddings(token_type_ids))
        x = self.dropout(self.norm(x))
        return self.project(x) if self.project is not None else x  # (B, T, H)


class SelfAttention(nn.Module):
    def __init__(self, config: LeanBertConfig):
        super().__init__()
        self.num_heads, self.head_dim = config.num_attention_heads, config.head_dim
        self.qkv = nn.Linear(config.hidden_size, 3 * config.hidden_size)  # rows [Q; K; V]
        self.out = nn.Linear(config.hidden_size, config.hidden_size)
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.attention_dropout = config.attention_probs_dropout_prob
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, x: torch.Tensor, bias: torch.Tensor | None, scale: float | None) -> torch.Tensor:
        B, T, H = x.shape
        qkv = self.qkv(x).view(B, T, 3, self.num_heads, self.head_dim)  # (B, T, 3, nh, d)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B, nh, T, d)
        context = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=scale,
                                                 dropout_p=self.attention_dropout if self.training else 0.0)
        context = context.transpose(1, 2).reshape(B, T, H)  # (B, T, H)
        return self.norm(x + self.dropout(self.out(context)))


class FeedForward(nn.Module):
    def __init__(self, config: LeanBertConfig):
        super().__init__()
        self.fc_in = nn.Linear(config.hidden_size, config.intermediate_size)
        self.fc_out = nn.Linear(config.intermediate_size, config.hidden_size)
        self.activation = ACTIVATIONS[config.hidden_act]
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x + self.dropout(self.fc_out(self.activation(self.fc_in(x)))))  # (B, T, H)


class Encoder(nn.Module):
    def __init__(self, config: LeanBertConfig):
        super().__init__()
        L, G = config.num_hidden_layers, config.num_groups
        num_attention = G if config.sharing in ("all", "attention") else L
        num_ffn = G if config.sharing in ("all", "ffn") else L
        self.embeddings = Embeddings(config)
        self.attention = nn.ModuleList(SelfAttention(config) for _ in range(num_attention))
        self.ffn = nn.ModuleList(FeedForward(config) for _ in range(num_ffn))
        self.attention_index = [i * num_attention // L for i in range(L)]  # layer -> shared block
        self.ffn_index = [i * num_ffn // L for i in range(L)]
        has_pooler = config.family != "electra"  # ELECTRA has none
        self.pooler = nn.Linear(config.hidden_size, config.hidden_size) if has_pooler else None

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, output_hidden_states=False):
        x = self.embeddings(input_ids, token_type_ids)  # (B, T, H)
        positions = self.embeddings.position_embeddings
        bias = positions.attention_bias(x.shape[1])  # (1, nh, T, T) or None
        bias = None if bias is None else bias.to(x.dtype)
        if attention_mask is not None:
            keep = attention_mask[:, None, None, :].to(x.dtype)  # (B, 1, 1, T)
            padding = (1.0 - keep) * torch.finfo(x.dtype).min  # (B, 1, 1, T)
            bias = padding if bias is None else bias + padding
        states = [x] if output_hidden_states else None
        for layer in range(len(self.attention_index)):
            x = self.attention[self.attention_index[layer]](x, bias, positions.attention_scale)
            x = self.ffn[self.ffn_index[layer]](x)
            if states is not None:
                states.append(x)
        pooled = torch.tanh(self.pooler(x[:, 0])) if self.pooler is not None else None  # (B, H)
        return x, pooled, tuple(states) if states is not None else None


# ------------------------------------------------------------------------------------------------------------
# transformers classes


class LeanBertPreTrainedModel(PreTrainedModel):
    config_class = LeanBertConfig
    base_model_prefix = "leanbert"

    def _init_weights(self, module: nn.Module) -> None:
        """BERT's initialisation (only for weights a checkpoint lacks)."""
        std = self.config.initializer_range
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=std)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, std=std)
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, MaskedLMHead):
            nn.init.zeros_(module.bias)


class LeanBertModel(LeanBertPreTrainedModel):
    def __init__(self, config: LeanBertConfig):
        super().__init__(config)
        self.encoder = Encoder(config)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.encoder.embeddings.word_embeddings

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, output_hidden_states=None,
                return_dict=None, **kwargs):
        x, pooled, states = self.encoder(input_ids, attention_mask, token_type_ids,
                                         bool(output_hidden_states))
        return BaseModelOutputWithPooling(last_hidden_state=x, pooler_output=pooled, hidden_states=states)


class SequenceClassifierHead(nn.Module):
    """On the pooled vector (BERT, ALBERT), else ELECTRA's dense + GELU on [CLS]."""

    def __init__(self, config: LeanBertConfig):
        super().__init__()
        self.uses_pooler = config.family != "electra"
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.dense = None if self.uses_pooler else nn.Linear(config.hidden_size, config.hidden_size)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)

    def forward(self, hidden: torch.Tensor, pooled: torch.Tensor | None) -> torch.Tensor:
        x = pooled if self.uses_pooler else F.gelu(self.dense(self.dropout(hidden[:, 0])))  # (B, H)
        return self.classifier(self.dropout(x))  # (B, C)


class LeanBertForSequenceClassification(LeanBertPreTrainedModel):
    def __init__(self, config: LeanBertConfig):
        super().__init__(config)
        self.leanbert = LeanBertModel(config)
        self.classifier = SequenceClassifierHead(config)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, labels=None,
                output_hidden_states=None, return_dict=None, **kwargs):
        base = self.leanbert(input_ids, attention_mask, token_type_ids, output_hidden_states)
        logits = self.classifier(base.last_hidden_state, base.pooler_output)  # (B, C)
        loss = None
        if labels is not None:
            if self.config.num_labels == 1:
                loss = F.mse_loss(logits.squeeze(-1), labels.float())
            else:
                loss = F.cross_entropy(logits, labels)
        return SequenceClassifierOutput(loss=loss, logits=logits, hidden_states=base.hidden_states)


class MaskedLMHead(nn.Module):
    """dense H -> E, activation, LayerNorm, then the tied word-embedding matrix + bias."""

    def __init__(self, config: LeanBertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.embedding_size)
        self.activation = ACTIVATIONS[config.hidden_act]
        self.norm = nn.LayerNorm(config.embedding_size, eps=config.layer_norm_eps)
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))

    def forward(self, hidden: torch.Tensor, word_embeddings: torch.Tensor) -> torch.Tensor:
        x = self.norm(self.activation(self.dense(hidden)))  # (B, T, E)
        return F.linear(x, word_embeddings, self.bias)  # (B, T, V)


class LeanBertForMaskedLM(LeanBertPreTrainedModel):
    def __init__(self, config: LeanBertConfig):
        super().__init__(config)
        self.leanbert = LeanBertModel(config)
        self.mlm = MaskedLMHead(config)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, labels=None,
                output_hidden_states=None, return_dict=None, **kwargs):
        base = self.leanbert(input_ids, attention_mask, token_type_ids, output_hidden_states)
        logits = self.mlm(base.last_hidden_state, self.leanbert.get_input_embeddings().weight)  # (B, T, V)
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits.view(-1, logits.shape[-1]), labels.view(-1), ignore_index=-100)
        return MaskedLMOutput(loss=loss, logits=logits, hidden_states=base.hidden_states)

