"""MC-BERT: multi-choice pretraining with a meta-controller (Xu et al. 2020, arXiv 2006.05744; reference code
MC-BERT/MC-BERT: fairseq/models/mcbert/model.py, criterions/mcbert.py).

A small MLM, the meta-controller, reads the input with 15% of the tokens replaced by [MASK] (all of them:
``data.masking: mask``). From its softmax (float32, no gradient) K candidates per position are drawn with
replacement; at the masked positions the first one becomes the main model's input token. The main model then
picks, at every non-pad position, one of K options: slot 0 "neither" (the input token is the original) or,
where the input was replaced, slot 1 holding the original (``multi_choice_targets`` states the rules).
Loss = MLM_controller (mean over masked tokens) + choice_weight * K-way CE (mean over non-pad tokens): the
reference's sum_MLM + 50 * sum_choice * n_masked / n_nonpad divided by its sample size n_masked.

Sharing, as the reference: the controller's token embedding is the main model's table through a
down-projection (``ProjectedEmbedding``: Linear(E -> controller width), the reference's ``embed_linear``); its
MLM output weights are that projected table, its output bias is the main head's per-token bias. Positions,
token types and the embedding LayerNorm are the controller's own (in its width). The samples are drawn in the
controller MLM loss's pass over the logits (``vocab_softmax`` with K uniforms per row), and in one more
no-grad pass for the unmasked positions (the reference samples everywhere).

``networks()`` are the live main model (role ``discriminator``, the kept one) and controller; ``saved_models()``
gives plain copies: the main model as an encoder without heads (saved as ``model/discriminator``, the role the
registry entry keeps; exports as ElectraModel/BertModel) and the controller as an ordinary MLM whose input table
is the projected one (exports as ElectraForMaskedLM).
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
from leanbert.config import ConfigError, check_integer
from leanbert.flops import TRAIN_FACTOR, encoder_forward_flops, masked_fraction
from leanbert.model.attention import ACTIVATION_FUNCTIONS
from leanbert.model.config import ModelConfig
from leanbert.model.heads import HEADS, register_head
from leanbert.model.model import LeanBertModel
from leanbert.objectives.base import Objective, Output
from leanbert.objectives.config import ObjectiveConfig, check_weights
from leanbert.objectives.metrics import mean_over
from leanbert.objectives.mlm import flat_positions, masked_positions, mlm_loss
from leanbert.objectives.registry import DataNeeds, ObjectiveSpec, register_objective
from leanbert.objectives.vocab_softmax import vocab_softmax
from leanbert.train.precision import full_precision

NEITHER = -1  # candidate id of slot 0, "neither: the input token is the original" (the reference's <neither>)
CHOICE_HEAD = "multi_choice"
# 15% chosen, every one -> [MASK] in the controller's input (the reference's masked_tokens = input == <mask>)
MCBERT_DATA = DataNeeds(implied={"pairs": "none", "masking": "mask"}, required=frozenset({"pairs"}))


@dataclass
class MCBertConfig(ObjectiveConfig):
    """controller_divider: the controller's width, FFN size and head count are the main model's divided by this
                        (reference ``mc_size_divider``: 2 small, 3 base, 4 large).
    num_candidates:     K, options per position: slot 0 "neither" plus K - 1 controller samples (reference 10).
    choice_weight:      weight of the multi-choice loss (reference ``loss_lamda`` 50).
    mlm_weight:         weight of the controller's MLM loss.
    """

    name: str = "mcbert"
    controller_divider: int = 3
    num_candidates: int = 10
    choice_weight: float = 50.0
    mlm_weight: float = 1.0

    def __post_init__(self) -> None:
        check_weights(self, "mlm_weight", "choice_weight")
        check_integer("objective.controller_divider", self.controller_divider, 1)
        check_integer("objective.num_candidates", self.num_candidates, 2)  # "neither" + at least the original


def multi_choice_targets(samples: torch.Tensor, original: torch.Tensor, chosen: torch.Tensor,
                         ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """MC-BERT's corrupted input, candidates and labels (reference McbertModel.forward), a pure function.

    samples: (B, T, K) controller samples per position (K >= 2, drawn with replacement); original: (B, T) the
    uncorrupted tokens; chosen: (B, T) bool, the masked positions. Returns
    * corrupted (B, T): ``samples[..., 0]`` at chosen positions, the original elsewhere;
    * candidates (B, T, K): the samples, then slot 1 := the original where corrupted != original ("replaced"),
      then slot 0 := NEITHER everywhere. A chosen position whose sample equals the original is not replaced.
      Duplicates stay as drawn: the original may also sit in slots 2.. (and, unreplaced, in slots 1..);
    * labels (B, T) long: 1 (slot 1, the original) where replaced, else 0 (NEITHER).
    """
    corrupted = torch.where(chosen, samples[..., 0], original)  # (B, T)
    replaced = corrupted != original  # (B, T)
    candidates = samples.clone()  # (B, T, K)
    candidates[..., 1] = torch.where(replaced, original, samples[..., 1])
    candidates[..., 0] = NEITHER
    return corrupted, candidates, replaced.long()


class MultiChoiceHead(nn.Module):
    """The main model's K-way head: dense H -> E, activation, LayerNorm(E), then per candidate c the logit
    h . E[c] + bias[c] over the tied input table; NEITHER uses a learned vector and bias of its own (the
    reference's extra <neither> dictionary row, kept out of the vocabulary so the encoder exports plainly)."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.embedding_size)
        self.activation = ACTIVATION_FUNCTIONS[config.hidden_act]
        self.norm = nn.LayerNorm(config.embedding_size, eps=config.layer_norm_eps)
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))  # shared with the controller's MLM head
        self.neither = nn.Parameter(torch.randn(config.embedding_size) * config.initializer_range)
        self.neither_bias = nn.Parameter(torch.zeros(()))

    def forward(self, hidden: torch.Tensor, word_embeddings: torch.Tensor, candidates: torch.Tensor,
                ) -> torch.Tensor:
        """hidden: (B, T, H); word_embeddings: (V, E); candidates: (B, T, K) ids or NEITHER -> (B, T, K)."""
        x = self.norm(self.activation(self.dense(hidden)))  # (B, T, E)
        is_neither = candidates == NEITHER  # (B, T, K)
        ids = candidates.clamp(min=0)  # (B, T, K)
        table = torch.where(is_neither[..., None], self.neither, F.embedding(ids, word_embeddings))  # (B, T, K, E)
        bias = torch.where(is_neither, self.neither_bias, self.bias[ids])  # (B, T, K)
        return torch.einsum("bte,btke->btk", x, table) + bias  # (B, T, K)


if CHOICE_HEAD not in HEADS:
    register_head(CHOICE_HEAD, MultiChoiceHead, ("hidden", "word_embeddings", "candidates"), "choice_logits")


class ProjectedEmbedding(nn.Module):
    """The controller's token embedding: the main model's (V, E) table through Linear(E -> H_c) (the
    reference's ``embed_linear``). ``weight`` is the whole projected (V, H_c) table, which the controller's MLM
    head uses as its output weights (``LeanBertModel.word_embeddings`` reads it)."""

    def __init__(self, table: nn.Embedding, width: int):
        super().__init__()
        self.table = table  # the main model's module: one set of Parameters, trained by both networks
        self.project = nn.Linear(table.embedding_dim, width)

    @property
    def weight(self) -> torch.Tensor:
        return self.project(self.table.weight)  # (V, H_c)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.project(self.table(input_ids))  # (B, T, H_c)


def controller_config(model_config: ModelConfig, divider: int) -> ModelConfig:
    """The meta-controller: the main model's switches (depth, sharing, positions, activation, dropout) with
    hidden size, FFN size and heads divided by ``divider`` (the reference's int(x / mc_size_divider)), no
    factorization (its input table is projected to its width), family electra (no pooler), one MLM head."""
    hidden = model_config.hidden_size // divider
    heads = model_config.num_heads // divider
    ffn = model_config.intermediate_size // divider
    if min(hidden, heads, ffn) < 1 or hidden % heads:
        raise ConfigError(f"objective.controller_divider={divider}: the controller would have hidden {hidden}, "
                          f"{heads} heads, FFN {ffn}; it needs >= 1 of each and hidden divisible by heads")
    try:
        return dataclasses.replace(model_config, hidden_size=hidden, num_heads=heads, intermediate_size=ffn,
                                   embedding_size=hidden, family="electra", heads=["mlm"])
    except ConfigError as err:
        raise ConfigError(f"MC-BERT controller (hidden {hidden}, {heads} heads): {err}") from None


def main_config(model_config: ModelConfig) -> ModelConfig:
    return dataclasses.replace(model_config, heads=[CHOICE_HEAD])


@dataclass
class MCBertStep:
    """Everything one step computed (tests, analysis). positions (B, T) bool masked; samples (B, T, K);
    corrupted (B, T) the main model's input; candidates (B, T, K); labels (B, T); choice_logits (B, T, K);
    ctrl_logits (N, V) at the masked positions; output: what ``forward`` returns."""

    positions: torch.Tensor
    samples: torch.Tensor
    corrupted: torch.Tensor
    candidates: torch.Tensor
    labels: torch.Tensor
    choice_logits: torch.Tensor
    ctrl_logits: torch.Tensor
    output: Output


class MCBert(Objective):
    """``mcbert``. Metrics: mlm_loss, mlm_accuracy, mlm_count (controller, masked positions); choice_loss,
    choice_accuracy, choice_count (main model, non-pad tokens); choice_replaced_accuracy over choice_replaced
    positions (the main model finds the original), choice_original_accuracy over choice_original positions
    (it says "neither"); choice_replaced_fraction."""

    metric_weights: ClassVar[dict[str, str]] = {"choice_replaced_accuracy": "choice_replaced",
                                                "choice_original_accuracy": "choice_original"}

    def __init__(self, model_config: ModelConfig, objective_config: MCBertConfig | None = None):
        super().__init__()
        self.objective_config = objective_config or MCBertConfig()
        self.main = LeanBertModel(main_config(model_config))
        self.controller = LeanBertModel(controller_config(model_config, self.objective_config.controller_divider))
        embeddings = self.controller.encoder.embeddings
        embeddings.word_embeddings = ProjectedEmbedding(self.main.encoder.embeddings.word_embeddings,
                                                        self.controller.config.hidden_size)
        self.controller.encoder._init_weights(embeddings.word_embeddings.project)
        self.controller.heads["mlm"].bias = self.main.heads[CHOICE_HEAD].bias  # the same Parameter
        # safetensors refuses aliased tensors: the objective's state_dict keeps each shared one under main.*
        self.register_state_dict_post_hook(_drop_controller_copies)
        self.register_load_state_dict_pre_hook(_restore_controller_copies)

    def sample_candidates(self, batch: Batch, positions: torch.Tensor, original: torch.Tensor):
        """Controller forward: MLM loss and metrics at the masked positions, and (B, T, K) samples from its
        float32 softmax at every non-pad position (no gradient). Pad positions keep their token."""
        k = self.objective_config.num_candidates
        ctrl = self.controller(batch.input_ids, batch.attention_mask, batch.token_type_ids, mlm_positions=positions)
        index = flat_positions(positions, ctrl.mlm_logits.shape[0])  # (N,)
        targets = original.reshape(-1)[index]  # (N,)
        uniforms = torch.rand(targets.shape[0], k, device=targets.device)  # (N, K)
        loss, metrics, masked_samples = mlm_loss(ctrl.mlm_logits, targets, uniforms=uniforms)
        with torch.no_grad():
            rest = batch.attention_mask.bool() & ~positions  # (B, T) unmasked real tokens
            rest_logits = self.controller.heads["mlm"](ctrl.last_hidden_state, self.controller.word_embeddings,
                                                       rest)  # (M, V)
            rest_index = flat_positions(rest, rest_logits.shape[0])  # (M,)
            rest_uniforms = torch.rand(rest_index.shape[0], k, device=targets.device)  # (M, K)
            _, _, rest_samples = vocab_softmax(rest_logits, original.reshape(-1)[rest_index], rest_uniforms)
            samples = original.reshape(-1, 1).repeat(1, k)  # (B*T, K)
            samples.index_copy_(0, index, masked_samples).index_copy_(0, rest_index, rest_samples)
        return loss, metrics, samples.view(*original.shape, k), ctrl.mlm_logits

    def step(self, batch: Batch) -> MCBertStep:
        cfg = self.objective_config
        positions = masked_positions(batch)  # (B, T)
        original = torch.where(positions, batch.labels, batch.input_ids)  # (B, T)
        loss_mlm, metrics, samples, ctrl_logits = self.sample_candidates(batch, positions, original)
        corrupted, candidates, labels = multi_choice_targets(samples, original, positions)

        out = self.main(corrupted, batch.attention_mask, batch.token_type_ids, head_inputs={"candidates": candidates})
        logits = full_precision(out.choice_logits)  # (B, T, K)
        nonpad = batch.attention_mask.bool()  # (B, T)
        count = nonpad.sum().float()  # 0-d, stays on the device
        per_token = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), reduction="none")  # (B*T,)
        loss_choice = mean_over(per_token * nonpad.flatten(), count)
        loss = cfg.mlm_weight * loss_mlm + cfg.choice_weight * loss_choice

        with torch.no_grad():
            right = (logits.argmax(-1) == labels) & nonpad  # (B, T)
            replaced = labels.bool() & nonpad  # (B, T)
            kept = ~labels.bool() & nonpad  # (B, T)
            n_replaced, n_kept = replaced.float().sum(), kept.float().sum()
            metrics.update({
                "choice_loss": loss_choice.detach(),
                "choice_accuracy": mean_over(right.float(), count),
                "choice_count": count,
                "choice_replaced_accuracy": (right & replaced).float().sum() / n_replaced.clamp(min=1),
                "choice_original_accuracy": (right & kept).float().sum() / n_kept.clamp(min=1),
                "choice_replaced": n_replaced,
                "choice_original": n_kept,
                "choice_replaced_fraction": n_replaced / count.clamp(min=1),
            })
        return MCBertStep(positions=positions, samples=samples, corrupted=corrupted, candidates=candidates,
                          labels=labels, choice_logits=out.choice_logits, ctrl_logits=ctrl_logits,
                          output=Output(loss=loss, metrics=metrics))

    def forward(self, batch: Batch) -> Output:
        return self.step(batch).output

    def networks(self) -> dict[str, nn.Module]:
        """The live networks: the main model (kept, saved as ``discriminator``) and the meta-controller."""
        return {"discriminator": self.main, "controller": self.controller}

    def saved_models(self) -> dict[str, nn.Module]:
        """Plain copies for saving/export: the main model without its pretraining head, and the controller as
        an ordinary MLM whose (V, H_c) input table is the projected main table."""
        main = LeanBertModel(dataclasses.replace(self.main.config, heads=[]))
        main.load_state_dict({k: v for k, v in self.main.state_dict().items() if not k.startswith("heads.")})
        controller = LeanBertModel(self.controller.config)
        state = {k: v for k, v in self.controller.state_dict().items()
                 if not k.startswith("encoder.embeddings.word_embeddings.")}
        with torch.no_grad():
            state["encoder.embeddings.word_embeddings.weight"] = self.controller.word_embeddings.detach()
        controller.load_state_dict(state)
        device = next(self.parameters()).device
        return {"discriminator": main.to(device), "controller": controller.to(device)}


# (controller key, main key) of the tensors the controller holds by reference
_SHARED = (("controller.encoder.embeddings.word_embeddings.table.", "main.encoder.embeddings.word_embeddings."),
           ("controller.heads.mlm.bias", f"main.heads.{CHOICE_HEAD}.bias"))


def _drop_controller_copies(module: nn.Module, state_dict: dict, prefix: str, local_metadata) -> None:
    for controller_key, _ in _SHARED:
        for key in [k for k in state_dict if k.startswith(prefix + controller_key)]:
            del state_dict[key]


def _restore_controller_copies(module: nn.Module, state_dict: dict, prefix: str, local_metadata, strict,
                               missing_keys, unexpected_keys, error_msgs) -> None:
    for controller_key, main_key in _SHARED:
        for key in [k for k in state_dict if k.startswith(prefix + main_key)]:
            state_dict.setdefault(prefix + controller_key + key[len(prefix + main_key):], state_dict[key])


def all_neither_accuracy(metrics: Mapping[str, float]) -> dict[str, float]:
    """The trivial main model that always answers "neither": the baseline choice_accuracy must beat."""
    if "choice_replaced_fraction" not in metrics:
        return {}
    return {"choice_all_neither_accuracy": 1.0 - metrics["choice_replaced_fraction"]}


def mcbert_flops_per_token(model_config: ModelConfig, objective_config: MCBertConfig, data) -> float:
    """Training FLOPs per token: main encoder + K-way head (dense H -> E, K dot products of E) on every token;
    controller encoder (+ its E -> H_c input projection) and MLM head (dense H_c -> H_c, H_c -> V) on every
    token, trained on the masked fraction, forward only (sampling) on the rest. The per-step projection of the
    whole table (2 V E H_c per step, not per token) is not counted: < 0.1% at the reference's batch."""
    main = main_config(model_config)
    e, k = model_config.embedding_size, objective_config.num_candidates
    main_forward = encoder_forward_flops(main, data.seq_len) + 2 * (model_config.hidden_size * e + k * e)
    ctrl = controller_config(model_config, objective_config.controller_divider)
    h_c = ctrl.hidden_size
    ctrl_forward = encoder_forward_flops(ctrl, data.seq_len) + 2 * e * h_c
    ctrl_head = 2 * (h_c * h_c + h_c * model_config.vocab_size)
    f = masked_fraction(data)
    return TRAIN_FACTOR * (main_forward + ctrl_forward) + ctrl_head * (TRAIN_FACTOR * f + (1 - f))


register_objective(ObjectiveSpec(name="mcbert", objective_class=MCBert, config_class=MCBertConfig,
                                 data=MCBERT_DATA, flops_per_token=mcbert_flops_per_token,
                                 derived_metrics=all_neither_accuracy, kept="discriminator"))
