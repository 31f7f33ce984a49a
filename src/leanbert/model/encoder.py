"""THE encoder: one class whose switches cover BERT, ALBERT and ELECTRA shapes.

- ``embedding_size != hidden_size``: ALBERT's factorized embedding (Lan et al. 2020, sec. 3.1): a V x E table,
  then a Linear E -> H (ELECTRA uses the same structure when E != H).
- ``sharing``: the four settings of ALBERT's ablation (Table 4): ``none``, ``attention`` (one attention block
  reused by every layer), ``ffn`` (one FFN block reused), ``all`` (both). With ``num_groups = G``, layer i uses
  block ``i * G // num_layers`` (Hugging Face's ``num_hidden_groups`` layout).
- ``position``: the position scheme (``model/positions/``), stored at ``embeddings.position_embeddings``:
  ``absolute`` = learned position embeddings added to the input (BERT). A scheme may also give a per-head
  attention bias (TUPE); the encoder asks for it once per forward and combines it with the padding bias once.
- Unpadding (``model/padding.py``) runs the position-wise work on real tokens only; ``set_unpadding`` turns it
  off for export/tracing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from leanbert.model.attention import AttentionBias, FeedForward, SelfAttention
from leanbert.model.config import ModelConfig
from leanbert.model.padding import Unpadding, padding_bias
from leanbert.model.positions.base import PositionScheme, build_position_scheme

# Called on the summed (B, T, E) input embeddings before the embedding LayerNorm (TNF mixes its notes in here).
EmbeddingHook = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class EncoderOutput:
    """last_hidden_state: (B, T, H). pooler_output: (B, H) or None (no pooler, e.g. ELECTRA).
    hidden_states: embedding output then every layer's output, each (B, T, H), when requested.
    attention_scores: every layer's PRE-softmax scores (B, heads, T, T) when requested; they include position
    biases but not the padding mask (consumers mask with attention_mask themselves)."""

    last_hidden_state: torch.Tensor
    pooler_output: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attention_scores: tuple[torch.Tensor, ...] | None = None


class Embeddings(nn.Module):
    """Word + position-scheme input term + token-type embeddings in E dims, the embedding hooks in order, LayerNorm,
    dropout, then E -> H when factorized."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        E = config.embedding_size
        self.word_embeddings = nn.Embedding(config.vocab_size, E, padding_idx=config.pad_token_id)
        self.position_embeddings = build_position_scheme(config)  # the scheme keeps BERT's parameter name
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, E) if config.type_vocab_size else None
        self.norm = nn.LayerNorm(E, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout)
        self.project = nn.Linear(E, config.hidden_size) if E != config.hidden_size else None

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None,
                embedding_hooks: Sequence[EmbeddingHook] = ()) -> torch.Tensor:
        T = input_ids.shape[1]
        x = self.word_embeddings(input_ids)  # (B, T, E)
        position_term = self.position_embeddings.input_term(T)  # (T, E) or None
        if position_term is not None:
            x = x + position_term
        if self.token_type_embeddings is not None:
            if token_type_ids is None:
                x = x + self.token_type_embeddings.weight[0]
            else:
                x = x + self.token_type_embeddings(token_type_ids)
        for hook in embedding_hooks:  # in order: each sees the previous one's output
            x = hook(x)  # (B, T, E)
        x = self.dropout(self.norm(x))
        return self.project(x) if self.project is not None else x  # (B, T, H)


def block_indices(num_layers: int, num_blocks: int) -> list[int]:
    """Which stored block each layer uses: contiguous runs, as ALBERT's groups (layer i -> i * G // L)."""
    return [i * num_blocks // num_layers for i in range(num_layers)]


class Encoder(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.embeddings = Embeddings(config)
        L, G = config.num_layers, config.num_groups
        num_attention = G if config.sharing in ("all", "attention") else L
        num_ffn = G if config.sharing in ("all", "ffn") else L
        self.attention = nn.ModuleList(SelfAttention(config) for _ in range(num_attention))
        self.ffn = nn.ModuleList(FeedForward(config) for _ in range(num_ffn))
        self.attention_index = block_indices(L, num_attention)
        self.ffn_index = block_indices(L, num_ffn)
        self.unpadding = Unpadding()
        if config.has_pooler:
            self.pooler = nn.Linear(config.hidden_size, config.hidden_size)
        else:
            self.pooler = None
        self.apply(self._init_weights)

    def _init_weights(self, module: nn.Module) -> None:
        """BERT's initialisation: N(0, initializer_range) weights, zero biases, unit LayerNorm."""
        std = self.config.initializer_range
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=std)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, std=std)
            if module.padding_idx is not None:
                with torch.no_grad():
                    module.weight[module.padding_idx].zero_()
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)

    @property
    def position_scheme(self) -> PositionScheme:
        """The position scheme, stored as ``embeddings.position_embeddings`` (ELECTRA may share it)."""
        return self.embeddings.position_embeddings

    def attention_bias(self, attention_mask: torch.Tensor | None, length: int,
                       dtype: torch.dtype) -> AttentionBias:
        """The padding bias (when ``attention_mask`` is given) and the position scheme's bias, combined once
        for every layer of this forward: combined (B|1, 1|heads, 1|T, T) in ``dtype``."""
        position = self.position_scheme.attention_bias(length)  # (1|B, heads, T, T) or None
        if position is not None:
            position = position.to(dtype)
        if attention_mask is None:
            return AttentionBias(combined=position, position=position)
        padding = padding_bias(attention_mask, dtype)  # (B, 1, 1, T)
        return AttentionBias(combined=padding if position is None else padding + position, position=position)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None, *, inputs_embeds: torch.Tensor | None = None,
                embedding_hooks: Sequence[EmbeddingHook] = (), output_hidden_states: bool = False,
                output_attention_scores: bool = False, attention_scale: float | None = None) -> EncoderOutput:
        """input_ids: (B, T). attention_mask: (B, T) 1 = token, 0 = padding (None: no padding).
        inputs_embeds: optional (B, T, H) replacement for the whole embedding output (after LayerNorm and
        projection). embedding_hooks: functions applied in order to the summed (B, T, E) input embeddings
        before the embedding LayerNorm (e.g. TNF's notes); each must return the same shape.
        attention_scale: the logits' scale (default 1 / sqrt(head_dim)).
        """
        if inputs_embeds is None:
            x = self.embeddings(input_ids, token_type_ids, embedding_hooks)  # (B, T, H)
        else:
            x = inputs_embeds  # (B, T, H)
        plan = self.unpadding.plan(attention_mask)
        bias = self.attention_bias(attention_mask if plan.mask_keys else None, x.shape[1], x.dtype)
        layout = plan.layout
        if attention_scale is None:
            attention_scale = self.position_scheme.attention_scale  # TUPE: 1/sqrt(2d); else None = 1/sqrt(d)
        if layout is not None:
            x = layout.unpad(x)  # (N, H): projections and FFN skip the padding
        padded = layout.pad if layout is not None else (lambda t: t)
        hidden_states = [padded(x)] if output_hidden_states else None
        scores_out = [] if output_attention_scores else None
        for layer in range(self.config.num_layers):
            x, scores = self.attention[self.attention_index[layer]](
                x, bias, scale=attention_scale, return_scores=output_attention_scores, layout=layout)
            x = self.ffn[self.ffn_index[layer]](x)
            if hidden_states is not None:
                hidden_states.append(padded(x))
            if scores_out is not None:
                scores_out.append(scores)
        x = padded(x)  # (B, T, H); zeros at padded positions when unpadded
        pooled = torch.tanh(self.pooler(x[:, 0])) if self.pooler is not None else None  # (B, H)
        return EncoderOutput(
            last_hidden_state=x,
            pooler_output=pooled,
            hidden_states=tuple(hidden_states) if hidden_states is not None else None,
            attention_scores=tuple(scores_out) if scores_out is not None else None,
        )
