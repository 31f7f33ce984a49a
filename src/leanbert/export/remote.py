"""Hugging Face export with remote code, for encoders transformers' own BERT/ALBERT/ELECTRA classes cannot
represent. The directory gets ``modeling_leanbert.py`` (``remote_modeling.py`` copied verbatim: torch and
transformers only), ``modeling_leanbert_tasks.py`` (``remote_tasks.py``: the QA, token and multiple-choice
wrappers, its one import rewritten to the sibling) and an ``auto_map`` in config.json, so ``AutoModel`` /
``AutoModelForSequenceClassification`` / ``AutoModelForMaskedLM`` / ``AutoModelForQuestionAnswering`` / ...
``.from_pretrained(DIR, trust_remote_code=True)`` load it. The weights keep
leanbert's own names (under ``leanbert.``), so no name map is needed.

Heads: a task head exports as its task type's wrapper ``LeanBert<hf_suffix>`` (``LeanBertForSequenceClassification``,
``LeanBertForQuestionAnswering``), an MLM head as ``LeanBertForMaskedLM``, an encoder without those as
``LeanBertModel``. Pretraining-only heads (NSP/SOP, replaced-token detection) have
no remote class and are left out, with a note.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import torch

from leanbert.config import ModelConfig
from leanbert.model.model import LeanBertModel
from leanbert.tasks import TASK_TYPES, task_type_of

MODELING_FILE = "modeling_leanbert.py"
SOURCE = Path(__file__).with_name("remote_modeling.py")
TASKS_FILE = "modeling_leanbert_tasks.py"  # the wrappers of the other task heads, importing MODELING_FILE
TASKS_SOURCE = Path(__file__).with_name("remote_tasks.py")
SIBLING_IMPORT = ("from .remote_modeling import", "from .modeling_leanbert import")  # in-package -> shipped
AUTO_MAP = {
    "AutoConfig": "modeling_leanbert.LeanBertConfig",
    "AutoModel": "modeling_leanbert.LeanBertModel",
    "AutoModelForMaskedLM": "modeling_leanbert.LeanBertForMaskedLM",
}
# Each task type with a wrapper class adds "AutoModel<hf_suffix>": "<file>.LeanBert<hf_suffix>".
WRAPPER_PREFIX = "LeanBert"


def remote_modules() -> dict[str, Any]:
    """Shipped file stem -> the in-package module it is a copy of (imported here: they need transformers)."""
    from leanbert.export import remote_modeling, remote_tasks

    return {MODELING_FILE.removesuffix(".py"): remote_modeling, TASKS_FILE.removesuffix(".py"): remote_tasks}


def task_wrappers(modules: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """task head -> (shipped file stem, wrapper class name) for the task types with a wrapper in ``modules``."""
    out = {}
    for task_type in TASK_TYPES.values():
        name = f"{WRAPPER_PREFIX}{task_type.hf_suffix}"
        for stem, module in modules.items():
            if hasattr(module, name):
                out[task_type.head] = (stem, name)
    return out


def auto_map(modules: dict[str, Any]) -> dict[str, str]:
    """config.json's auto_map: the fixed classes plus one entry per task type with a wrapper."""
    tasks = {f"AutoModel{name.removeprefix(WRAPPER_PREFIX)}": f"{stem}.{name}"
             for stem, name in task_wrappers(modules).values()}
    return {**AUTO_MAP, **tasks}


def remote_code_reason(config: ModelConfig) -> str | None:
    """Why transformers' own classes cannot hold ``config`` (so remote code is needed), or None."""
    if config.position != "absolute":
        return f"position={config.position!r}"
    if config.relative_buckets:
        return f"relative_buckets={config.relative_buckets}"
    if config.sharing in ("attention", "ffn"):
        return f"sharing={config.sharing!r}"
    if config.sharing == "all" and config.family != "albert":
        return f"sharing='all' with family={config.family!r}"
    if config.family == "bert" and config.embedding_size != config.hidden_size:
        return "a factorized BERT embedding"
    return None


def remote_config_dict(config: ModelConfig) -> dict[str, Any]:
    """``LeanBertConfig`` keyword arguments (transformers' field names where they exist)."""
    return {"vocab_size": config.vocab_size, "embedding_size": config.embedding_size,
            "hidden_size": config.hidden_size, "num_hidden_layers": config.num_layers,
            "num_attention_heads": config.num_heads, "intermediate_size": config.intermediate_size,
            "hidden_act": config.hidden_act, "hidden_dropout_prob": config.hidden_dropout,
            "attention_probs_dropout_prob": config.attention_dropout,
            "max_position_embeddings": config.max_positions, "type_vocab_size": config.type_vocab_size,
            "layer_norm_eps": config.layer_norm_eps, "initializer_range": config.initializer_range,
            "sharing": config.sharing, "num_groups": config.num_groups, "position": config.position,
            "relative_buckets": config.relative_buckets,
            "relative_max_distance": config.relative_max_distance,
            "untie_cls": config.untie_cls, "cls_theta": config.cls_theta, "family": config.family,
            "pad_token_id": config.pad_token_id, "num_labels": config.num_labels}


def remote_class_name(config: ModelConfig, wrappers: dict[str, tuple[str, str]]) -> str:
    """The wrapper of the model's task head (``wrappers``: ``task_wrappers``), else MaskedLM, else the bare
    model."""
    task_type = task_type_of(config.heads)
    if task_type is not None and task_type.head in wrappers:
        return wrappers[task_type.head][1]
    if "mlm" in config.heads:
        return "LeanBertForMaskedLM"
    return "LeanBertModel"


def exported_head(config: ModelConfig, class_name: str) -> str | None:
    """The one head the remote class ``class_name`` carries (None for the bare model)."""
    if class_name == "LeanBertModel":
        return None
    if class_name == "LeanBertForMaskedLM":
        return "mlm"
    return task_type_of(config.heads).head


def remote_state(model: LeanBertModel, class_name: str) -> dict[str, torch.Tensor]:
    """leanbert's state dict under the remote class's names: ``leanbert.encoder.*``, ``<head>.*`` for the
    exported head (``classifier``, ``span``, ``mlm``; the bare ``LeanBertModel`` has no prefix)."""
    prefix = "" if class_name == "LeanBertModel" else "leanbert."
    head = exported_head(model.config, class_name)
    out = {}
    for name, tensor in model.state_dict().items():
        if name.startswith("encoder."):
            out[prefix + name] = tensor
        elif head is not None and name.startswith(f"heads.{head}."):
            out[name.removeprefix("heads.")] = tensor
    return out


def build_remote_model(model: LeanBertModel, labels: list[str] | None = None):
    """The remote-code transformers model equal to ``model`` (float32, eval mode)."""
    modules = remote_modules()
    remote_modeling = modules[MODELING_FILE.removesuffix(".py")]
    config = model.config
    class_name = remote_class_name(config, task_wrappers(modules))
    kwargs = remote_config_dict(config)
    if labels and len(labels) == config.num_labels and task_type_of(config.heads) is not None:
        kwargs["id2label"] = dict(enumerate(map(str, labels)))
        kwargs["label2id"] = {str(label): i for i, label in enumerate(labels)}
    remote_config = remote_modeling.LeanBertConfig(**kwargs)
    remote_config.auto_map = auto_map(modules)
    remote_config.architectures = [class_name]
    home = next(module for module in modules.values() if hasattr(module, class_name))
    remote = getattr(home, class_name)(remote_config)
    state = remote_state(model, class_name)
    result = remote.load_state_dict(state, strict=False)
    if result.missing_keys or result.unexpected_keys:  # same code on both sides: a bug, not bad input
        raise RuntimeError(f"remote export: missing {result.missing_keys}, "
                           f"unexpected {result.unexpected_keys}")
    return remote.eval()


def fill_remote_dir(model: LeanBertModel, model_dir: Path, tmp: Path, labels: list[str] | None,
                    log=print) -> None:
    """Write the remote-code export of ``model`` into the (temporary) directory ``tmp``."""
    from leanbert.model_dir import copy_tokenizer_files

    remote = build_remote_model(model, labels)
    kept = exported_head(model.config, type(remote).__name__)
    dropped = [h for h in model.config.heads if h != kept]
    if dropped:
        log(f"note: the remote-code export leaves out the head(s) {', '.join(dropped)} (no transformers Auto "
            "class for them)")
    remote.save_pretrained(str(tmp), safe_serialization=True)
    shutil.copyfile(SOURCE, tmp / MODELING_FILE)
    tasks = TASKS_SOURCE.read_text(encoding="utf-8")
    if SIBLING_IMPORT[0] not in tasks:  # the rewrite below must find its line
        raise RuntimeError(f"{TASKS_SOURCE} no longer imports {SIBLING_IMPORT[0]!r}")
    (tmp / TASKS_FILE).write_text(tasks.replace(*SIBLING_IMPORT), encoding="utf-8")
    copy_tokenizer_files(model_dir, tmp)
