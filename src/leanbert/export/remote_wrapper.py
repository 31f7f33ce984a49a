"""The transformers face of a remote-code export: a ``PretrainedConfig`` that stores leanbert's own model dict,
and ``PreTrainedModel`` classes that build leanbert's own ``LeanBertModel`` from it.

``leanbert export`` ships this module as ``modeling_leanbert.py``, next to the model package's modules, with
every leanbert import rewritten to a flat sibling import (``export/remote_bundle.py``), so
``AutoModel... .from_pretrained(DIR, trust_remote_code=True)`` runs the very code leanbert trains, with no
leanbert installed. Weight names are leanbert's under ``leanbert.`` (``leanbert.encoder.*``,
``leanbert.heads.<head>.*``), so no name map exists.

A task type adds one row to ``TASK_CLASSES`` (its transformers class suffix, the leanbert head it runs and how
its outputs become transformers' output class); the class ``LeanBert<suffix>`` and the config's
``auto_map["AutoModel<suffix>"]`` follow from that row.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch.nn.functional as F
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import (
    BaseModelOutputWithPooling,
    MaskedLMOutput,
    MultipleChoiceModelOutput,
    QuestionAnsweringModelOutput,
    SequenceClassifierOutput,
    TokenClassifierOutput,
)

from leanbert.config import from_dict
from leanbert.model.config import ModelConfig
from leanbert.model.model import LeanBertModel as LeanBertNetwork
from leanbert.model.model import ModelOutput


class LeanBertConfig(PretrainedConfig):
    """``leanbert_model``: leanbert's ``ModelConfig`` as a dict (heads excepted: each class picks its own)."""

    model_type = "leanbert"

    def __init__(self, leanbert_model: dict[str, Any] | None = None, **kwargs):
        self.leanbert_model = dict(leanbert_model or {})
        super().__init__(**kwargs)

    def network_config(self, heads: list[str]) -> ModelConfig:
        fields = {**self.leanbert_model, "heads": heads, "num_labels": self.num_labels}
        return from_dict(ModelConfig, fields, prefix="model.")


class LeanBertPreTrainedModel(PreTrainedModel):
    """Holds leanbert's network under ``leanbert`` with the class's one head (none for the bare encoder)."""

    config_class = LeanBertConfig
    base_model_prefix = "leanbert"
    head: str | None = None

    def __init__(self, config: LeanBertConfig):
        super().__init__(config)
        self.leanbert = LeanBertNetwork(config.network_config([self.head] if self.head else []))
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        """transformers calls this for modules a checkpoint did not fill: unsaved buffers are derived again
        (``reset_derived_buffers``), missing weights get leanbert's own BERT initialisation."""
        if hasattr(module, "reset_derived_buffers"):
            module.reset_derived_buffers()
        self.leanbert.encoder._init_weights(module)

    def get_input_embeddings(self) -> nn.Embedding:
        return self.leanbert.encoder.embeddings.word_embeddings

    def run(self, input_ids, attention_mask=None, token_type_ids=None, output_hidden_states=None) -> ModelOutput:
        return self.leanbert(input_ids, attention_mask, token_type_ids,
                             output_hidden_states=bool(output_hidden_states))


class LeanBertModel(LeanBertPreTrainedModel):
    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, output_hidden_states=None,
                return_dict=None, **kwargs):
        out = self.run(input_ids, attention_mask, token_type_ids, output_hidden_states)
        return BaseModelOutputWithPooling(last_hidden_state=out.last_hidden_state, pooler_output=out.pooler_output,
                                          hidden_states=out.hidden_states)


def per_token_loss(logits, labels):
    """Cross-entropy over every (B, T) position whose label is not -100 (transformers' ignore index), as its
    masked-LM and token-classification models compute it; None without labels."""
    if labels is None:
        return None
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100)


def sequence_outputs(config: LeanBertConfig, out: ModelOutput, labels, **_) -> SequenceClassifierOutput:
    loss = None
    if labels is not None:
        if config.num_labels == 1:
            loss = F.mse_loss(out.logits.squeeze(-1), labels.float())
        else:
            loss = F.cross_entropy(out.logits, labels)
    return SequenceClassifierOutput(loss=loss, logits=out.logits, hidden_states=out.hidden_states)


def masked_lm_outputs(config: LeanBertConfig, out: ModelOutput, labels, **_) -> MaskedLMOutput:
    logits = out.mlm_logits  # (B, T, V)
    return MaskedLMOutput(loss=per_token_loss(logits, labels), logits=logits, hidden_states=out.hidden_states)


def span_outputs(config: LeanBertConfig, out: ModelOutput, labels, start_positions=None, end_positions=None,
                 **_) -> QuestionAnsweringModelOutput:
    start_logits, end_logits = out.span_logits.unbind(dim=-1)  # (B, T) each
    loss = None
    if start_positions is not None and end_positions is not None:
        ignored = start_logits.shape[1]  # positions outside the window are clamped and ignored, as transformers
        start = F.cross_entropy(start_logits, start_positions.clamp(0, ignored), ignore_index=ignored)
        end = F.cross_entropy(end_logits, end_positions.clamp(0, ignored), ignore_index=ignored)
        loss = (start + end) / 2
    return QuestionAnsweringModelOutput(loss=loss, start_logits=start_logits, end_logits=end_logits,
                                        hidden_states=out.hidden_states)


def token_outputs(config: LeanBertConfig, out: ModelOutput, labels, **_) -> TokenClassifierOutput:
    logits = out.logits  # (B, T, L)
    return TokenClassifierOutput(loss=per_token_loss(logits, labels), logits=logits, hidden_states=out.hidden_states)


def choice_outputs(config: LeanBertConfig, out: ModelOutput, labels, options: int = 1,
                   **_) -> MultipleChoiceModelOutput:
    logits = out.logits.view(-1, options)  # (B * C,) -> (B, C)
    loss = F.cross_entropy(logits, labels) if labels is not None else None
    return MultipleChoiceModelOutput(loss=loss, logits=logits, hidden_states=out.hidden_states)


@dataclass(frozen=True)
class TaskClass:
    """head: the leanbert head the class runs; outputs(config, leanbert output, labels, **extra) -> transformers'
    output. choices: inputs come as (B, C, T), one row per option (transformers' multiple-choice interface)."""

    head: str
    outputs: Callable[..., Any]
    choices: bool = False


# transformers class suffix -> what it runs. THE table a new task type adds its row to.
TASK_CLASSES: dict[str, TaskClass] = {
    "ForSequenceClassification": TaskClass("classifier", sequence_outputs),
    "ForMaskedLM": TaskClass("mlm", masked_lm_outputs),
    "ForQuestionAnswering": TaskClass("span", span_outputs),
    "ForTokenClassification": TaskClass("token", token_outputs),
    "ForMultipleChoice": TaskClass("choice", choice_outputs, choices=True),
}


def _task_class(suffix: str, task: TaskClass) -> type[LeanBertPreTrainedModel]:
    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, labels=None,
                output_hidden_states=None, return_dict=None, **kwargs):
        if task.choices:  # (B, C, T) -> (B * C, T): every option is one row
            kwargs["options"] = input_ids.shape[1]
            input_ids, attention_mask, token_type_ids = (
                None if x is None else x.reshape(-1, x.shape[-1]) for x in (input_ids, attention_mask, token_type_ids))
        out = self.run(input_ids, attention_mask, token_type_ids, output_hidden_states)
        return task.outputs(self.config, out, labels, **kwargs)

    return type(f"LeanBert{suffix}", (LeanBertPreTrainedModel,),
                {"head": task.head, "forward": forward, "__module__": __name__})


for _suffix, _task in TASK_CLASSES.items():
    globals()[f"LeanBert{_suffix}"] = _task_class(_suffix, _task)  # transformers finds classes by name


def class_name_for(heads: list[str]) -> str:
    """The class an export with ``heads`` is written as: the first task class whose head it has, else the
    bare encoder."""
    for suffix, task in TASK_CLASSES.items():
        if task.head in heads:
            return f"LeanBert{suffix}"
    return "LeanBertModel"


def auto_map(module: str) -> dict[str, str]:
    """config.json's ``auto_map``: every class of this module (shipped as ``module``.py) by its Auto class."""
    classes = {"AutoConfig": "LeanBertConfig", "AutoModel": "LeanBertModel"}
    classes.update({f"AutoModel{suffix}": f"LeanBert{suffix}" for suffix in TASK_CLASSES})
    return {auto: f"{module}.{name}" for auto, name in classes.items()}
