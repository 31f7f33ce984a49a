"""THE encoder: one class whose switches cover BERT, ALBERT and ELECTRA shapes.

- ``embedding_size != hidden_size``: ALBERT's factorized embedding (Lan et al. 2020, sec. 3.1): a V x E table,
  then a Linear E -> H (ELECTRA uses the same structure when E != H).
- ``sharing``: the four settings of ALBERT's ablation (Table 4): ``none``, ``attention`` (one attention block
  reused by every layer), ``ffn`` (one FFN block reused), ``all`` (both). With ``num_groups = G``, layer i uses
  block ``i * G // num_layers`` (Hugging Face's ``num_hidden_groups`` layout).
- ``position``: ``absolute`` = learned position embeddings added to the input (BERT). Position schemes that
  add a per-head bias to the attention logits (TUPE) plug in through ``position_bias`` below.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from leanbert.config import ModelConfig
from leanbert.model.attention import FeedForward, SelfAttention
from leanbert.model.padding import TokenLayout, should_unpad


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
    """Word + position + token-type embeddings in E dims, LayerNorm, dropout, then E -> H when factorized."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        E = config.embedding_size
        self.word_embeddings = nn.Embedding(config.vocab_size, E, padding_idx=config.pad_token_id)
        self.position_embeddings = nn.Embedding(config.max_positions, E)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, E) if config.type_vocab_size else None
        self.norm = nn.LayerNorm(E, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout)
        self.project = nn.Linear(E, config.hidden_size) if E != config.hidden_size else None
        self.register_buffer("position_ids", torch.arange(config.max_positions), persistent=False)

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        T = input_ids.shape[1]
        x = self.word_embeddings(input_ids)  # (B, T, E)
        x = x + self.position_embeddings(self.position_ids[:T])
        if self.token_type_embeddings is not None:
            if token_type_ids is None:
                x = x + self.token_type_embeddings.weight[0]
            else:
                x = x + self.token_type_embeddings(token_type_ids)
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

    def padding_bias(self, attention_mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """(B, T) 1/0 mask -> (B, 1, 1, T) additive bias: 0 for keys to attend to, dtype-min for padding."""
        return (1.0 - attention_mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None, position_bias: torch.Tensor | None = None,
                inputs_embeds: torch.Tensor | None = None, output_hidden_states: bool = False,
                output_attention_scores: bool = False, attention_scale: float | None = None) -> EncoderOutput:
        """input_ids: (B, T). attention_mask: (B, T) 1 = token, 0 = padding (None: no padding).
        position_bias: optional (1|B, heads, T, T) additive logits term shared by all layers (TUPE).
        inputs_embeds: optional (B, T, H) replacement for the embedding output (e.g. TNF's noted inputs).
        """
        x = self.embeddings(input_ids, token_type_ids) if inputs_embeds is None else inputs_embeds  # (B, T, H)
        padding_bias, layout = None, None
        fill = float(attention_mask.float().mean()) if attention_mask is not None else 1.0  # one host sync
        if fill < 1.0:
            padding_bias = self.padding_bias(attention_mask, x.dtype)  # (B, 1, 1, T)
            if should_unpad(fill):
                layout = TokenLayout.from_mask(attention_mask)
                x = layout.unpad(x)  # (N, H): projections and FFN skip the padding
        if position_bias is not None:
            position_bias = position_bias.to(x.dtype)
        padded = layout.pad if layout is not None else (lambda t: t)
        hidden_states = [padded(x)] if output_hidden_states else None
        scores_out = [] if output_attention_scores else None
        for layer in range(self.config.num_layers):
            x, scores = self.attention[self.attention_index[layer]](
                x, padding_bias, position_bias, scale=attention_scale, return_scores=output_attention_scores,
                layout=layout)
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
