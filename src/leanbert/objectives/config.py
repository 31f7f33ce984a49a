"""``ObjectiveConfig``: the ``objective.*`` keys of a pretraining config, and what each objective implies.

An objective decides the model heads (set from the encoder config by the objective itself), the ELECTRA
generator's shape, the loss weights, and the kind of instances the data pipeline must build
(``data.pairs``, ``data.masking``): ``data_defaults`` / ``apply_data_defaults`` / ``check_data`` let the
trainer default and validate the ``data.*`` keys from the objective.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from leanbert.config import ConfigError, ModelConfig, check_choice, check_number

OBJECTIVES = ("mlm", "mlm+nsp", "mlm+sop", "electra")

# What each objective needs from the data pipeline. pairs: segment pairs with sentence labels (NSP/SOP) or
# none. masking: BERT's 80/10/10 or ELECTRA's 85% [MASK] / 15% unchanged (Clark et al. 2020, sec. 3.1).
DATA_DEFAULTS: dict[str, dict[str, str]] = {
    "mlm": {"pairs": "none", "masking": "bert"},
    "mlm+nsp": {"pairs": "nsp", "masking": "bert"},
    "mlm+sop": {"pairs": "sop", "masking": "bert"},
    "electra": {"pairs": "none", "masking": "electra"},
}


@dataclass
class ObjectiveConfig:
    """name:                  mlm | mlm+nsp | mlm+sop | electra.
    mlm_weight:            weight of the (generator's) MLM loss.
    sentence_weight:       weight of the NSP/SOP cross-entropy (mlm+nsp, mlm+sop).
    rtd_weight:            weight of ELECTRA's replaced-token-detection loss (paper: 50).
    temperature:           ELECTRA: replacements are sampled from softmax(generator logits / temperature).
    generator_fraction:    ELECTRA: generator hidden size = fraction * discriminator hidden size
                           (paper: 1/4 for small, 1/3 for base), in (0, 1].
    generator_hidden_size: ELECTRA: explicit generator hidden size; 0 = use generator_fraction.
    """

    name: str = "mlm"
    mlm_weight: float = 1.0
    sentence_weight: float = 1.0
    rtd_weight: float = 50.0
    temperature: float = 1.0
    generator_fraction: float = 0.25
    generator_hidden_size: int = 0

    def __post_init__(self) -> None:
        check_choice("objective.name", self.name, OBJECTIVES)
        for name in ("mlm_weight", "sentence_weight", "rtd_weight"):
            check_number(f"objective.{name}", getattr(self, name), 0)
        check_number("objective.temperature", self.temperature, 0, low_open=True)
        check_number("objective.generator_fraction", self.generator_fraction, 0, low_open=True)
        if self.generator_fraction > 1:
            raise ConfigError(f"objective.generator_fraction={self.generator_fraction!r} must be in (0, 1]: "
                              f"the generator is a fraction of the discriminator (paper: 0.25 small, 1/3 base)")
        if isinstance(self.generator_hidden_size, bool) or not isinstance(self.generator_hidden_size, int) \
                or self.generator_hidden_size < 0:
            raise ConfigError(f"objective.generator_hidden_size={self.generator_hidden_size!r} must be an integer "
                              f">= 0 (0 = objective.generator_fraction * model.hidden_size)")

    # -- what the objective implies for the data pipeline ------------------------------------------------

    def data_defaults(self) -> dict[str, str]:
        """The ``data.*`` settings this objective implies: {"pairs": ..., "masking": ...}."""
        return dict(DATA_DEFAULTS[self.name])

    def apply_data_defaults(self, data: dict[str, Any]) -> dict[str, Any]:
        """Fill ``pairs`` and ``masking`` into a raw ``data`` dict where the user did not set them (in place)."""
        for key, value in self.data_defaults().items():
            data.setdefault(key, value)
        return data

    def check_data(self, data: Any) -> None:
        """Refuse data settings the objective cannot train on. ``data`` is a DataConfig or a dict.

        ``pairs`` must match exactly (NSP/SOP need sentence labels; MLM-only and ELECTRA would silently waste
        half-length segments). ``masking`` may differ on purpose (e.g. ELECTRA with BERT's 80/10/10 is an
        ablation in the paper), so it is not checked.
        """
        pairs = data.get("pairs") if isinstance(data, dict) else getattr(data, "pairs", None)
        want = self.data_defaults()["pairs"]
        if pairs is not None and pairs != want:
            raise ConfigError(f"data.pairs={pairs!r} does not fit objective.name={self.name!r}, which needs "
                              f"data.pairs={want!r}")


# -- model configs the objectives build ---------------------------------------------------------------------


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


def generator_config(model_config: ModelConfig, objective: ObjectiveConfig) -> ModelConfig:
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
