"""Layer-wise learning-rate decay for fine-tuning (Clark et al. 2020, ELECTRA, appendix A).

Each parameter's learning rate is ``lr * decay ** (L + 2 - depth)``, with the depths of the reference code
(google-research/electra ``model/optimization.py``, ``_get_layer_lrs``):

* embeddings (and the E -> H projection): depth 0, so ``lr * decay ** (L + 2)``;
* encoder layer ``i`` (0-based): depth ``i + 1``, so the top layer gets ``lr * decay ** 2``;
* the task head: depth ``L + 2``, the full ``lr``.

Two cases the reference does not have, decided here:

* the pooler (BERT/ALBERT; ELECTRA has none) sits between the top layer and the head: depth ``L + 1``;
* a block shared by several layers (ALBERT's cross-layer sharing) gets the mean depth of the layers that
  use it: one tensor gets one learning rate, and the mean keeps a fully shared encoder between the
  embeddings and the head, as an unshared one is on average. With sharing, depths may be fractional.

``decay = 1`` gives every parameter the same rate (no decay).
"""

from __future__ import annotations

from leanbert.model.model import LeanBertModel


def parameter_depths(model: LeanBertModel) -> dict[str, float]:
    """Depth of every parameter name of ``model`` (see the module docstring)."""
    config = model.config
    L = config.num_layers
    encoder = model.encoder
    block_depth: dict[str, float] = {}
    for kind, index in (("attention", encoder.attention_index), ("ffn", encoder.ffn_index)):
        users: dict[int, list[int]] = {}
        for layer, block in enumerate(index):
            users.setdefault(block, []).append(layer + 1)
        for block, layers in users.items():
            block_depth[f"encoder.{kind}.{block}."] = sum(layers) / len(layers)
    depths: dict[str, float] = {}
    for name, _ in model.named_parameters():
        if name.startswith("encoder.embeddings."):
            depths[name] = 0.0
        elif name.startswith("encoder.pooler."):
            depths[name] = L + 1.0
        elif name.startswith(("encoder.attention.", "encoder.ffn.")):
            prefix = ".".join(name.split(".")[:3]) + "."
            depths[name] = block_depth[prefix]
        else:  # heads.*: task-specific
            depths[name] = L + 2.0
    return depths


def layer_lr_scales(model: LeanBertModel, decay: float, prefix: str = "") -> dict[str, float]:
    """Parameter name (with ``prefix``, e.g. ``"model."`` inside an objective) -> learning-rate factor."""
    if not 0 < decay <= 1:
        raise ValueError(f"layer decay must be in (0, 1], got {decay}")
    top = model.config.num_layers + 2
    return {prefix + name: decay ** (top - depth) for name, depth in parameter_depths(model).items()}
