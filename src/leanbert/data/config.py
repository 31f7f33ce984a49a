"""``DataConfig``: the ``data.*`` keys of a pretraining config (what instances the loader builds).

Settings here change results (they are part of the experiment), unlike loader speed knobs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from leanbert.config import ConfigError, check_choice, check_integer, check_probability
from leanbert.data.features import check_feature_names, upgrade_feature_flags

MASKING_MODES = ("bert", "electra", "mask", "none")
PAIR_MODES = ("none", "sop", "nsp")


@dataclass
class DataConfig:
    """How pretraining instances are built from a prepared dataset (``leanbert prepare``).

    path:            prepared dataset directory (holds manifest.json); required when a loader is built.
    tokenizer:       tokenizer directory; "" = the copy saved inside the dataset by ``leanbert prepare``.
                     Either way its fingerprint must match the one the dataset was prepared with.
    seq_len:         tokens per instance, [CLS]/[SEP] included.
    mask_prob:       fraction of maskable tokens chosen as MLM targets (BERT: 0.15).
    masking:         "bert" (80% [MASK] / 10% random / 10% unchanged), "electra" (85% [MASK] / 15% unchanged),
                     "mask" (100% [MASK], MC-BERT's controller input),
                     or "none": plain sequences without MLM targets (``Batch.labels`` is None), e.g. for
                     distillation on raw text; ``mask_prob``, ``whole_word``, ``ngram`` and ``max_predictions``
                     are then unused.
    whole_word:      choose whole words (all pieces of a word together) instead of single pieces.
    ngram:           ALBERT n-gram masking: spans of 1..ngram whole words, p(n) proportional to 1/n; 1 = off.
    max_predictions: cap on MLM targets per instance (BERT: 20 at seq_len 128); 0 = no cap.
    pairs:           "none" = MLM only, sequences packed across sentences and documents (RoBERTa FULL-SENTENCES);
                     "sop" = ALBERT sentence-order pairs; "nsp" = BERT next-sentence pairs.
    short_seq_prob:  with pairs, probability that an instance uses a shorter random target length (BERT: 0.1).
    valid_split:     split of ``path`` used for validation ("valid"), or "" for none.
    valid_path:      another prepared dataset whose ``valid_split`` is used instead of this one's; "" = ``path``.
    features:        extra batch features (``Batch.extras``) by name, from the producers registered in
                     data/features.py; an objective or add-on adds the ones it needs. ``<name>: true`` is an
                     older spelling of listing it here.
    """

    path: str = ""
    tokenizer: str = ""
    seq_len: int = 128
    mask_prob: float = 0.15
    masking: str = "bert"
    whole_word: bool = False
    ngram: int = 1
    max_predictions: int = 0
    pairs: str = "none"
    short_seq_prob: float = 0.1
    valid_split: str = "valid"
    valid_path: str = ""
    features: list[str] = field(default_factory=list)

    @classmethod
    def upgrade_legacy(cls, data: dict[str, Any]) -> dict[str, Any]:
        """Older configs and run directories switch a feature on by its own key (``from_dict`` calls this)."""
        return upgrade_feature_flags(data)

    def __post_init__(self) -> None:
        check_integer("data.seq_len", self.seq_len, 8)
        check_probability("data.mask_prob", self.mask_prob)
        if self.mask_prob <= 0:
            raise ConfigError(f"data.mask_prob={self.mask_prob!r} must be > 0 (MLM needs targets)")
        check_choice("data.masking", self.masking, MASKING_MODES)
        if not isinstance(self.whole_word, bool):
            raise ConfigError(f"data.whole_word={self.whole_word!r} must be true or false")
        if isinstance(self.ngram, bool) or not isinstance(self.ngram, int) or not 1 <= self.ngram <= 10:
            raise ConfigError(f"data.ngram={self.ngram!r} must be an integer in 1..10 (1 = off, ALBERT: 3)")
        if isinstance(self.max_predictions, bool) or not isinstance(self.max_predictions, int) \
                or self.max_predictions < 0:
            raise ConfigError(f"data.max_predictions={self.max_predictions!r} must be an integer >= 0 (0 = no cap)")
        check_feature_names(self.features)
        self.features = list(self.features)  # a tuple would not write to config.yaml
        check_choice("data.pairs", self.pairs, PAIR_MODES)
        check_probability("data.short_seq_prob", self.short_seq_prob)
        for name in ("path", "tokenizer", "valid_split", "valid_path"):
            if not isinstance(getattr(self, name), str):
                raise ConfigError(f"data.{name}={getattr(self, name)!r} must be a string")
        if self.valid_split and self.valid_split not in ("train", "valid"):
            raise ConfigError(f"data.valid_split={self.valid_split!r} must be 'valid', 'train' or '' (none)")
