"""TUPE: untied positional encoding (Ke, He, Liu, "Rethinking Positional Encoding in Language Pre-training",
ICLR 2021), as the reference computes it (guolinke/TUPE, fairseq/modules/transformer_sentence_encoder.py).

Nothing is added to the word embeddings. Instead every layer's attention logits get a position term computed
ONCE per forward from a separate table and projections shared by all layers (sec. 3.1):

    alpha_ij = (x_i W_Q)(x_j W_K)^T / sqrt(2d) + (p_i U_Q)(p_j U_K)^T / sqrt(2d)

with d the per-head dimension; the encoder scales the word term by ``attention_scale`` = 1/sqrt(2d), this
module returns the position term. p = LayerNorm(table), the table has max_positions + 1 rows: row 0 is a
virtual position for [CLS], token t uses row t + 1.

Untied [CLS] (sec. 3.2): the [CLS] row and column of the position term are reset to per-head values,
theta_1 for "[CLS] to others" (row 0, written last so it also covers [CLS] to itself) and theta_2 for
"others to [CLS]" (column 0). ``model.position_options.cls_theta`` chooses where they come from:

- ``derived`` (default): as the reference, theta_1 = (p_0 U_Q)(p_0 U_K)^T / sqrt(2d) and
  theta_2 = (p_1 U_Q)(p_1 U_K)^T / sqrt(2d). Default because the paper's reported results were trained by
  that code.
- ``learned``: the paper's description, free per-head scalars (initialised to 0: [CLS] starts with no
  positional preference).

TUPE-R adds T5 relative buckets (``relative.py``) AFTER the reset, as the reference does (the paper
writes the reset around the sum; guolinke/TUPE issue #12 leaves it open).

ELECTRA: U_Q, U_K and the table live in the encoder's hidden width and the term has one row per head, both
of which differ between generator and discriminator, so with TUPE each network keeps its own position module
(objectives/electra.py shares ``position_embeddings`` only for plain absolute positions).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from leanbert.config import check_choice
from leanbert.model.config import ModelConfig
from leanbert.model.positions.base import PositionScheme
from leanbert.model.positions.relative import PREFIX, RelativeOptions, relative_bias_or_none
from leanbert.model.registries import PositionSchemeSpec, register_position_scheme

CLS_THETAS = ("derived", "learned")


@dataclass
class TupeOptions(RelativeOptions):
    """``tupe``'s options: the relative buckets of TUPE-R, plus where the untied [CLS] thetas come from
    (``cls_theta``: derived, the reference code | learned, the paper's text)."""

    cls_theta: str = "derived"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choice(f"{PREFIX}cls_theta", self.cls_theta, CLS_THETAS)


class TupePositions(PositionScheme):
    """The ``tupe`` position scheme (see ``base.py`` for the protocol): no input term, and a per-head
    attention bias (1, heads, T, T) = untied absolute term (+ relative buckets)."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        options = config.scheme_options
        hidden = config.hidden_size
        self.num_heads, self.head_dim = config.num_heads, config.head_dim
        self.max_positions = config.max_positions
        self.table = nn.Embedding(config.max_positions + 1, hidden)  # row 0: the virtual [CLS] position
        self.norm = nn.LayerNorm(hidden, eps=config.layer_norm_eps)
        self.query = nn.Linear(hidden, hidden)  # U_Q
        self.key = nn.Linear(hidden, hidden)  # U_K
        # Both terms share one scale, so the word term's 1/sqrt(d) becomes 1/sqrt(2d) too.
        self.attention_scale = 1.0 / math.sqrt(2 * config.head_dim)
        self.untie_cls = options.untie_cls
        self.learned_theta = options.untie_cls and options.cls_theta == "learned"
        if self.learned_theta:
            self.cls_to_others = nn.Parameter(torch.zeros(config.num_heads))  # theta_1
            self.others_to_cls = nn.Parameter(torch.zeros(config.num_heads))  # theta_2
        self.relative = relative_bias_or_none(config, options)

    def input_term(self, length: int) -> None:
        return None  # positions never enter the residual stream (sec. 3.1)

    def attention_bias(self, length: int) -> torch.Tensor:
        """The position logits (1, heads, T, T); call once per forward, every layer adds the same term."""
        if length > self.max_positions:
            raise ValueError(f"sequence length {length} exceeds model.max_positions={self.max_positions}")
        rows = self.norm(self.table.weight[: length + 1])  # (T+1, H)
        q = self.query(rows).view(length + 1, self.num_heads, self.head_dim).transpose(0, 1)  # (nh, T+1, d)
        k = self.key(rows).view(length + 1, self.num_heads, self.head_dim).transpose(0, 1)  # (nh, T+1, d)
        full = torch.matmul(q * self.attention_scale, k.transpose(-1, -2))  # (nh, T+1, T+1)
        term = full[:, 1:, 1:]  # (nh, T, T): token t at row t + 1
        if self.untie_cls:
            if self.learned_theta:
                cls_to_others, others_to_cls = self.cls_to_others, self.others_to_cls  # (nh,)
            else:
                cls_to_others, others_to_cls = full[:, 0, 0], full[:, 1, 1]  # (nh,)
            index = torch.arange(length, device=term.device)
            first_row, first_column = (index == 0)[:, None], (index == 0)[None, :]  # (T, 1), (1, T)
            term = torch.where(first_column, others_to_cls[:, None, None].to(term.dtype), term)
            term = torch.where(first_row, cls_to_others[:, None, None].to(term.dtype), term)  # (nh, T, T)
        if self.relative is not None:
            term = term + self.relative(length).to(term.dtype)
        return term.unsqueeze(0)  # (1, nh, T, T)


register_position_scheme(PositionSchemeSpec(
    "tupe", TupePositions, TupeOptions, hf_reason=lambda options: "position='tupe' (untied position logits)",
    shareable_across_widths=lambda options: False))  # U_Q/U_K and the table live in the hidden width
