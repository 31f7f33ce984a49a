"""Prediction heads on top of the encoder, chosen by name (``model.heads``) from ``HEADS``
(``model/registries.py``): ``pretraining.py`` (mlm, nsp, sop, rtd) and ``task.py`` (classifier, span, token,
choice). Each registration says what the head consumes, which ``ModelOutput`` name its result gets and what
transformers calls its weights, so ``LeanBertModel`` and the Hugging Face import/export run any head without
knowing it: a new head (e.g. MC-BERT's multi-choice head, fed candidate ids from the batch) is one class plus one
``register_head`` call, wherever the class lives.
"""

from leanbert.model.heads.pretraining import MaskedLMHead, ReplacedTokenHead, SentencePairHead
from leanbert.model.heads.task import (
           MultipleChoiceHead,
           SequenceClassifierHead,
           SpanHead,
           TokenClassifierHead,
)
from leanbert.model.registries import HEADS, HeadSpec, register_head

__all__ = ["HEADS", "HeadSpec", "MaskedLMHead", "MultipleChoiceHead", "ReplacedTokenHead", "SentencePairHead",
           "SequenceClassifierHead", "SpanHead", "TokenClassifierHead", "register_head"]
