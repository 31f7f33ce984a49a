"""ELECTRA replaced-token detection (Clark et al., ICLR 2020, sec. 2; google-research/electra).

A small generator (an MLM, same depth, a fraction of the width) fills the masked positions with tokens
sampled from softmax(logits / temperature), with no gradient through the sample; the discriminator labels
every non-pad token of the result "original" or "replaced". A sample equal to the original token is
"original". The samples are drawn by inverse CDF in the MLM loss's pass over the logits (``vocab_softmax``):
the same distribution as the reference code's Gumbel-max, with one random number per position instead of V.
Loss = mlm_weight * MLM_gen + rtd_weight * RTD (paper: 1 and 50).

The two networks share the token, position and token-type embeddings and the embedding LayerNorm: the same
``nn.Parameter`` objects, so both losses update them. When E != H each network keeps its own E -> H
projection (``untied_generator_embeddings=False`` in the reference code; Hugging Face's
``embeddings_project``). Each network is a complete ``LeanBertModel`` holding the shared tables, so
``models()`` can save and export either on its own (ElectraForPreTraining / ElectraForMaskedLM).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from leanbert.batch import Batch
from leanbert.config import ConfigError, check_number
from leanbert.flops import (
    TRAIN_FACTOR,
    encoder_forward_flops,
    masked_fraction,
    mlm_head_forward_flops,
    rtd_head_forward_flops,
)
from leanbert.model import POSITION_SCHEMES
from leanbert.model.config import ModelConfig
from leanbert.model.model import LeanBertModel
from leanbert.objectives.base import Objective, Output
from leanbert.objectives.config import ObjectiveConfig, check_weights
from leanbert.objectives.metrics import mean_over
from leanbert.objectives.mlm import flat_positions, masked_positions, mlm_loss
from leanbert.objectives.registry import NEEDS_MLM_TARGETS, DataNeeds, ObjectiveSpec, register_objective
from leanbert.train.precision import full_precision

# Embedding submodules the generator takes from the discriminator (its "project" stays its own).
SHARED_EMBEDDINGS = ("word_embeddings", "position_embeddings", "token_type_embeddings", "norm")


def shared_embedding_names(model_config: ModelConfig) -> tuple[str, ...]:
    """SHARED_EMBEDDINGS, less the position module when it holds per-head or hidden-width parts (TUPE's U_Q/U_K,
    relative bucket tables): those fit only the discriminator's width and heads, so each network keeps its own.
    The scheme's registry entry says which (``shareable_across_widths``)."""
    scheme = POSITION_SCHEMES[model_config.position]
    if scheme.shareable_across_widths(model_config.scheme_options):
        return SHARED_EMBEDDINGS
    return tuple(name for name in SHARED_EMBEDDINGS if name != "position_embeddings")


# 85% [MASK] / 15% unchanged (Clark et al. 2020, sec. 3.1) on single segments
ELECTRA_DATA = DataNeeds(implied={"pairs": "none", "masking": "electra"}, required=frozenset({"pairs"}),
                         refused=NEEDS_MLM_TARGETS)


@dataclass
class ElectraConfig(ObjectiveConfig):
    """mlm_weight:            weight of the generator's MLM loss.
    rtd_weight:            weight of the replaced-token-detection loss (paper: 50).
    temperature:           replacements are sampled from softmax(generator logits / temperature).
    generator_fraction:    generator hidden size = fraction * discriminator hidden size (paper: 1/4 for small,
                           1/3 for base), in (0, 1].
    generator_hidden_size: explicit generator hidden size; 0 = use generator_fraction.
    """

    name: str = "electra"
    mlm_weight: float = 1.0
    rtd_weight: float = 50.0
    temperature: float = 1.0
    generator_fraction: float = 0.25
    generator_hidden_size: int = 0

    def __post_init__(self) -> None:
        check_weights(self, "mlm_weight", "rtd_weight")
        check_number("objective.temperature", self.temperature, 0, low_open=True)
        check_number("objective.generator_fraction", self.generator_fraction, 0, low_open=True)
        if self.generator_fraction > 1:
            raise ConfigError(f"objective.generator_fraction={self.generator_fraction!r} must be in (0, 1]: "
                              f"the generator is a fraction of the discriminator (paper: 0.25 small, 1/3 base)")
        if isinstance(self.generator_hidden_size, bool) or not isinstance(self.generator_hidden_size, int) \
                or self.generator_hidden_size < 0:
            raise ConfigError(f"objective.generator_hidden_size={self.generator_hidden_size!r} must be an integer "
                              f">= 0 (0 = objective.generator_fraction * model.hidden_size)")


def generator_shape(disc_hidden: int, fraction: float, explicit_hidden: int = 0) -> tuple[int, int, int]:
    """ELECTRA generator (hidden, heads, intermediate) from the discriminator's hidden size.

    heads = max(1, hidden // 64) and FFN = 4 * hidden (Clark et al. 2020, appendix; google-research/electra
    ``get_generator_config``). A fractional size is rounded to a multiple of the head count so every head
    keeps an integer width; an explicit size is kept and the head count lowered until it divides it.
    """
    if explicit_hidden:
        hidden = explicit_hidden
        heads = max(1, hidden // 64)
        while hidden % heads:
            heads -= 1
    else:
        hidden = max(1, round(fraction * disc_hidden))
        heads = max(1, hidden // 64)
        hidden = heads * max(1, round(hidden / heads))
    return hidden, heads, 4 * hidden


def generator_config(model_config: ModelConfig, objective: ElectraConfig) -> ModelConfig:
    """The generator's ModelConfig: the discriminator's switches (depth, embedding size, sharing, activation,
    dropout, ...) with a smaller width, family electra (no pooler) and one MLM head. Vocabulary, positions,
    token types and embedding size stay equal because the embeddings are shared."""
    hidden, heads, ffn = generator_shape(model_config.hidden_size, objective.generator_fraction,
                                         objective.generator_hidden_size)
    try:
        return dataclasses.replace(model_config, hidden_size=hidden, num_heads=heads, intermediate_size=ffn,
                                   family="electra", heads=["mlm"])
    except ConfigError as err:
        raise ConfigError(f"ELECTRA generator (hidden {hidden}, {heads} heads): {err}") from None


def discriminator_config(model_config: ModelConfig) -> ModelConfig:
    return dataclasses.replace(model_config, heads=["rtd"])


@dataclass
class ElectraStep:
    """Everything one ELECTRA step computed (for tests and analysis); ``output`` is what ``forward`` returns.

    positions: (B, T) bool masked positions; targets: (N,) original tokens there; gen_logits: (N, V);
    sampled: (N,) generator samples; disc_input: (B, T) the discriminator's input; replaced: (B, T) bool RTD
    labels; rtd_logits: (B, T)."""

    positions: torch.Tensor
    targets: torch.Tensor
    gen_logits: torch.Tensor
    sampled: torch.Tensor
    disc_input: torch.Tensor
    replaced: torch.Tensor
    rtd_logits: torch.Tensor
    output: Output


class Electra(Objective):
    """``electra``. Metrics: mlm_loss, mlm_accuracy, mlm_count (generator, masked positions); rtd_loss,
    rtd_accuracy, rtd_count (discriminator, non-pad tokens); rtd_precision and rtd_recall on "replaced"
    (with their denominators rtd_predicted and rtd_replaced); rtd_replaced_fraction (replaced / non-pad)."""

    # mean metric -> the count it is a mean over, so interval and validation values are exact corpus-level
    # ratios (sum of true positives / sum of predicted positives), not means of per-batch ratios
    metric_weights: ClassVar[dict[str, str]] = {"rtd_precision": "rtd_predicted", "rtd_recall": "rtd_replaced"}

    def __init__(self, model_config: ModelConfig, objective_config: ElectraConfig | None = None):
        super().__init__()
        self.objective_config = objective_config or ElectraConfig()
        self.discriminator = LeanBertModel(discriminator_config(model_config))
        self.generator = LeanBertModel(generator_config(model_config, self.objective_config))
        disc_emb, gen_emb = self.discriminator.encoder.embeddings, self.generator.encoder.embeddings
        self.shared_embeddings = shared_embedding_names(model_config)
        for name in self.shared_embeddings:
            setattr(gen_emb, name, getattr(disc_emb, name))  # the same module, hence the same Parameters
        # The objective's own state_dict stores each shared tensor once (safetensors refuses aliased tensors);
        # loading copies the discriminator's entries back into the generator's names.
        self.register_state_dict_post_hook(_drop_generator_copies)
        self.register_load_state_dict_pre_hook(_restore_generator_copies)

    def step(self, batch: Batch) -> ElectraStep:
        cfg = self.objective_config
        positions = masked_positions(batch)  # (B, T)
        gen = self.generator(batch.input_ids, batch.attention_mask, batch.token_type_ids, mlm_positions=positions)
        index = flat_positions(positions, gen.mlm_logits.shape[0])  # (N,) row-major, as the head selected
        targets = batch.labels.reshape(-1)[index]  # (N,)
        uniforms = torch.rand(targets.shape, device=targets.device)  # (N,): one draw per replacement
        loss_mlm, metrics, sampled = mlm_loss(gen.mlm_logits, targets, uniforms=uniforms, temperature=cfg.temperature)
        disc_input = batch.input_ids.reshape(-1).index_copy(0, index, sampled).view_as(batch.input_ids)  # (B, T)
        original = torch.where(positions, batch.labels, batch.input_ids)  # (B, T)
        nonpad = batch.attention_mask.bool()  # (B, T)
        replaced = (disc_input != original) & nonpad  # (B, T): a sample equal to the original is "original"

        disc = self.discriminator(disc_input, batch.attention_mask, batch.token_type_ids)
        rtd_logits = disc.rtd_logits  # (B, T)
        logits = full_precision(rtd_logits)  # (B, T)
        weight = nonpad.to(logits.dtype)  # (B, T)
        count = weight.sum()  # 0-d, stays on the device
        per_token = F.binary_cross_entropy_with_logits(logits, replaced.to(logits.dtype), reduction="none")
        loss_rtd = mean_over(per_token * weight, count)
        loss = cfg.mlm_weight * loss_mlm + cfg.rtd_weight * loss_rtd

        with torch.no_grad():
            predicted = (rtd_logits > 0) & nonpad  # (B, T)
            true_pos = (predicted & replaced).float().sum()
            n_predicted, n_replaced = predicted.float().sum(), replaced.float().sum()
            metrics.update({
                "rtd_loss": loss_rtd.detach(),
                "rtd_accuracy": mean_over(((predicted == replaced) & nonpad).float(), count),
                "rtd_count": count,
                "rtd_precision": true_pos / n_predicted.clamp(min=1),
                "rtd_recall": true_pos / n_replaced.clamp(min=1),
                "rtd_predicted": n_predicted,
                "rtd_replaced": n_replaced,
                "rtd_replaced_fraction": n_replaced / count.clamp(min=1),
            })
        return ElectraStep(positions=positions, targets=targets, gen_logits=gen.mlm_logits, sampled=sampled,
                           disc_input=disc_input, replaced=replaced, rtd_logits=rtd_logits,
                           output=Output(loss=loss, metrics=metrics))

    def forward(self, batch: Batch) -> Output:
        return self.step(batch).output

    def networks(self) -> dict[str, nn.Module]:
        return {"discriminator": self.discriminator, "generator": self.generator}


def _shared_names(prefix: str, shared: tuple[str, ...]) -> list[tuple[str, str]]:
    """(generator key, discriminator key) prefixes of the shared embedding modules."""
    return [(f"{prefix}generator.encoder.embeddings.{n}.", f"{prefix}discriminator.encoder.embeddings.{n}.")
            for n in shared]


def _drop_generator_copies(module: nn.Module, state_dict: dict, prefix: str, local_metadata) -> None:
    for gen_prefix, _ in _shared_names(prefix, module.shared_embeddings):
        for key in [k for k in state_dict if k.startswith(gen_prefix)]:
            del state_dict[key]


def _restore_generator_copies(module: nn.Module, state_dict: dict, prefix: str, local_metadata, strict,
                              missing_keys, unexpected_keys, error_msgs) -> None:
    for gen_prefix, disc_prefix in _shared_names(prefix, module.shared_embeddings):
        for key in [k for k in state_dict if k.startswith(disc_prefix)]:
            state_dict.setdefault(gen_prefix + key[len(disc_prefix):], state_dict[key])


def all_original_accuracy(metrics: Mapping[str, float]) -> dict[str, float]:
    """The trivial discriminator that calls every token "original": the baseline rtd_accuracy must beat."""
    if "rtd_replaced_fraction" not in metrics:
        return {}
    return {"rtd_all_original_accuracy": 1.0 - metrics["rtd_replaced_fraction"]}


def electra_flops_per_token(model_config: ModelConfig, objective_config: ElectraConfig, data) -> float:
    """Generator (encoder + MLM head on the masked tokens) plus discriminator (encoder + RTD head on every
    token), training, per token. The shared embeddings are lookups, not counted."""
    generator = generator_config(model_config, objective_config)
    generator_forward = (encoder_forward_flops(generator, data.seq_len)
                         + mlm_head_forward_flops(generator, masked_fraction(data)))
    discriminator_forward = (encoder_forward_flops(discriminator_config(model_config), data.seq_len)
                             + rtd_head_forward_flops(model_config))
    forward = generator_forward + discriminator_forward
    return TRAIN_FACTOR * forward


register_objective(ObjectiveSpec(name="electra", objective_class=Electra, config_class=ElectraConfig,
                                 data=ELECTRA_DATA, flops_per_token=electra_flops_per_token,
                                 derived_metrics=all_original_accuracy, kept="discriminator"))
