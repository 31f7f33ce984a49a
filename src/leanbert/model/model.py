"""``LeanBertModel``: the encoder plus the heads named in ``config.heads``.

Outputs use Hugging Face's familiar names so users coming from ``transformers`` find their way:
``last_hidden_state``, ``pooler_output``, ``logits`` (classifier if present, else the replaced-token
discriminator, else MLM over all positions), ``mlm_logits``, ``seq_relationship_logits`` (NSP) and
``sop_logits`` (SOP). Heads are run from their registrations in ``model/heads/`` (what each consumes, which
output it fills); an output name ModelOutput has no field for lands in ``ModelOutput.extra``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import nn

from leanbert.config import ConfigError
from leanbert.model.config import ModelConfig
from leanbert.model.encoder import EmbeddingHook, Encoder
from leanbert.model.heads import HEADS

# Without a classifier, ``logits`` is the first of these outputs that a head filled.
LOGITS_FALLBACK = ("rtd_logits", "mlm_logits")


@dataclass
class ModelOutput:
    """Encoder outputs plus one entry per head. ``extra`` holds the outputs of heads whose output name is not
    a field here (registered elsewhere); they read as attributes and items like the fields."""

    last_hidden_state: torch.Tensor
    pooler_output: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    mlm_logits: torch.Tensor | None = None
    rtd_logits: torch.Tensor | None = None
    seq_relationship_logits: torch.Tensor | None = None
    sop_logits: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attention_scores: tuple[torch.Tensor, ...] | None = None
    extra: dict[str, torch.Tensor] = field(default_factory=dict)

    def __getitem__(self, key: str):
        return getattr(self, key)

    def __getattr__(self, key: str):  # only reached when no field has this name
        extra = self.__dict__.get("extra", {})
        if key in extra:
            return extra[key]
        raise AttributeError(f"ModelOutput has no output {key!r}")

    def set_output(self, name: str, value: torch.Tensor) -> None:
        if name in FIELD_NAMES:
            setattr(self, name, value)
        else:
            self.extra[name] = value


FIELD_NAMES = frozenset(f.name for f in dataclasses.fields(ModelOutput))


class LeanBertModel(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.encoder = Encoder(config)
        self.head_specs = {name: HEADS[name] for name in config.heads}  # what each head consumes and fills
        outputs = [spec.output for spec in self.head_specs.values()]
        if len(set(outputs)) < len(outputs):
            raise ConfigError(f"model.heads={config.heads}: two heads would fill the same output ({outputs})")
        self.heads = nn.ModuleDict({name: spec.head_class(config) for name, spec in self.head_specs.items()})
        self.heads.apply(self.encoder._init_weights)
        self.attached_embedding_hooks: list[EmbeddingHook] = []  # run before the ones a call passes

    @contextmanager
    def attached_embedding_hook(self, hook: EmbeddingHook) -> Iterator[None]:
        """Run ``hook`` on the summed input embeddings of every forward inside the block, after the hooks
        attached before it (hooks compose: add-ons attach theirs in config order and none replaces another)."""
        self.attached_embedding_hooks.append(hook)
        try:
            yield
        finally:
            self.attached_embedding_hooks.remove(hook)

    @property
    def word_embeddings(self) -> torch.Tensor:
        return self.encoder.embeddings.word_embeddings.weight  # (V, E)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None, mlm_positions: torch.Tensor | None = None,
                output_hidden_states: bool = False, output_attention_scores: bool = False,
                embedding_hooks: Sequence[EmbeddingHook] = (), head_inputs: dict[str, torch.Tensor] | None = None,
                **encoder_kwargs) -> ModelOutput:
        """input_ids, attention_mask, token_type_ids: (B, T). mlm_positions: optional (B, T) bool; when given,
        ``mlm_logits`` is (N, V) for just those positions (sparse prediction). embedding_hooks: applied in order
        to the summed (B, T, E) input embeddings before the embedding LayerNorm, after the attached ones (see
        ``Encoder.forward``).
        head_inputs: extra named tensors that registered heads consume (e.g. candidate ids)."""
        hooks = (*self.attached_embedding_hooks, *embedding_hooks)
        enc = self.encoder(input_ids, attention_mask, token_type_ids, embedding_hooks=hooks,
                           output_hidden_states=output_hidden_states,
                           output_attention_scores=output_attention_scores, **encoder_kwargs)
        out = ModelOutput(last_hidden_state=enc.last_hidden_state, pooler_output=enc.pooler_output,
                          hidden_states=enc.hidden_states, attention_scores=enc.attention_scores)
        available = {"hidden": enc.last_hidden_state, "pooled": enc.pooler_output,
                     "word_embeddings": self.word_embeddings, "input_ids": input_ids,
                     "attention_mask": attention_mask, "token_type_ids": token_type_ids,
                     "mlm_positions": mlm_positions, **(head_inputs or {})}
        for name, head in self.heads.items():
            spec = self.head_specs[name]
            missing = [key for key in spec.inputs if key not in available]
            if missing:
                raise ValueError(f"head {name!r} needs {missing}; pass them in head_inputs")
            out.set_output(spec.output, head(*(available[key] for key in spec.inputs)))
        if out.logits is None:
            out.logits = next((out[key] for key in LOGITS_FALLBACK if out[key] is not None), None)
        return out

    def num_parameters(self) -> dict[str, int]:
        """Parameter counts: total, embedding (the embedding module incl. its projection), non-embedding."""
        total = sum(p.numel() for p in self.parameters())
        embedding = sum(p.numel() for p in self.encoder.embeddings.parameters())
        return {"total": total, "embedding": embedding, "non_embedding": total - embedding}


def config_with_heads(config: ModelConfig, heads: Sequence[str], dropout: float | None = None,
                      **changes) -> ModelConfig:
    """``config`` with only ``heads`` and the given field ``changes`` (e.g. ``num_labels``); ``dropout`` (if
    given) replaces the hidden and attention dropout."""
    if dropout is not None:
        changes.update(hidden_dropout=dropout, attention_dropout=dropout)
    return dataclasses.replace(config, heads=list(heads), **changes)


def with_heads(source: LeanBertModel, heads: Sequence[str], seed: int, dropout: float | None = None,
               **changes) -> LeanBertModel:
    """``source``'s encoder under new, freshly initialised ``heads`` (seeded by ``seed``; ``config_with_heads``):
    how fine-tuning and task distillation start from a pretrained or distilled encoder."""
    torch.manual_seed(seed)
    model = LeanBertModel(config_with_heads(source.config, heads, dropout, **changes))
    encoder = {k: v for k, v in source.state_dict().items() if k.startswith("encoder.")}
    result = model.load_state_dict(encoder, strict=False)
    missing = [k for k in result.missing_keys if not k.startswith("heads.")]
    if missing or result.unexpected_keys:  # both come from one config, so this is a bug, not bad input
        raise RuntimeError(f"encoder transfer failed: missing {missing}, unexpected {result.unexpected_keys}")
    return model
