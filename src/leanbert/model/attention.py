"""Multi-head self-attention with one additive bias, and the position-wise feed-forward block.

Both are post-LayerNorm residual blocks as in BERT: ``x = LN(x + dropout(sublayer(x)))``.

Every layer of one forward receives the same ``AttentionBias``: the padding bias and the position scheme's
per-head bias (TUPE) are combined ONCE by the encoder, not re-added in each layer. The default path is
``F.scaled_dot_product_attention`` with that combined tensor as ``attn_mask``; only when the caller asks for the
PRE-softmax scores (TinyBERT distils them) does it materialise the (B, heads, T, T) matrix.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from leanbert.model.config import ModelConfig
from leanbert.model.padding import TokenLayout

ACTIVATION_FUNCTIONS = {
    "gelu": F.gelu,  # exact erf form (BERT, ELECTRA)
    "gelu_new": lambda x: F.gelu(x, approximate="tanh"),  # tanh approximation (ALBERT)
    "relu": F.relu,
    "silu": F.silu,
}


@dataclass(frozen=True)
class AttentionBias:
    """The additive attention-logit terms of one forward, built once by the encoder for all its layers.

    combined: padding + position bias, broadcastable to (B, heads, T, T) (e.g. (B, 1, 1, T) for padding
    alone), or None when nothing is added; the logits get exactly this.
    position: the position part alone, or None; the pre-softmax scores returned on request include it but
    not the padding mask (see ``EncoderOutput.attention_scores``)."""

    combined: torch.Tensor | None = None
    position: torch.Tensor | None = None


class SelfAttention(nn.Module):
    """One attention block: fused QKV projection, attention, output projection, residual + LayerNorm."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        hidden = config.hidden_size
        self.num_heads = config.num_heads
        self.head_dim = config.head_dim
        self.qkv = nn.Linear(hidden, 3 * hidden)  # one matmul for Q, K and V; rows ordered [Q; K; V]
        self.out = nn.Linear(hidden, hidden)
        self.norm = nn.LayerNorm(hidden, eps=config.layer_norm_eps)
        self.attention_dropout = config.attention_dropout
        self.dropout = nn.Dropout(config.hidden_dropout)

    def forward(self, x: torch.Tensor, bias: AttentionBias | None = None, scale: float | None = None,
                return_scores: bool = False, layout: TokenLayout | None = None,
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """x: (B, T, H), or (N, H) real tokens only when ``layout`` is given (unpadded);
        bias: the forward's combined padding + position bias (None: nothing to add).

        Returns the block output (B, T, H) and, if ``return_scores``, the pre-softmax scores
        (B, heads, T, T) = QK^T * scale + position bias (without the padding mask).
        """
        if bias is None:
            bias = AttentionBias()
        qkv = self.qkv(x)  # (B, T, 3H) or (N, 3H)
        if layout is not None:
            qkv = layout.pad(qkv)  # (B, T, 3H)
        B, T, H3 = qkv.shape
        H = H3 // 3
        qkv = qkv.view(B, T, 3, self.num_heads, self.head_dim)  # (B, T, 3, nh, d)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B, nh, T, d)
        dropout_p = self.attention_dropout if self.training else 0.0
        scores = None
        if return_scores:
            scale = 1.0 / math.sqrt(self.head_dim) if scale is None else scale
            raw = torch.matmul(q, k.transpose(-1, -2)) * scale  # (B, nh, T, T)
            scores = raw if bias.position is None else raw + bias.position
            logits = raw if bias.combined is None else raw + bias.combined  # (B, nh, T, T)
            probs = F.dropout(logits.softmax(dim=-1), p=dropout_p, training=self.training)
            context = torch.matmul(probs, v)  # (B, nh, T, d)
        else:
            context = F.scaled_dot_product_attention(q, k, v, attn_mask=bias.combined, dropout_p=dropout_p,
                                                     scale=scale)  # (B, nh, T, d)
        context = context.transpose(1, 2).reshape(B, T, H)  # (B, T, H)
        if layout is not None:
            context = layout.unpad(context)  # (N, H)
        return self.norm(x + self.dropout(self.out(context))), scores


class FeedForward(nn.Module):
    """Position-wise FFN block: H -> intermediate -> H with the configured activation, residual + LayerNorm."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.fc_in = nn.Linear(config.hidden_size, config.intermediate_size)
        self.fc_out = nn.Linear(config.intermediate_size, config.hidden_size)
        self.activation = ACTIVATION_FUNCTIONS[config.hidden_act]
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x + self.dropout(self.fc_out(self.activation(self.fc_in(x)))))  # (B, T, H)
