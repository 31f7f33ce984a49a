"""Hugging Face export with remote code, for encoders transformers' own BERT/ALBERT/ELECTRA classes cannot
represent. The directory gets leanbert's own model modules and a small transformers wrapper
(``modeling_leanbert.py``; see ``remote_bundle.py``) and an ``auto_map`` in config.json, so ``AutoModel`` /
``AutoModelForSequenceClassification`` / ``AutoModelForMaskedLM`` ``.from_pretrained(DIR,
trust_remote_code=True)`` load it with no leanbert installed. The weights keep leanbert's own names (under
``leanbert.``), so no name map is needed.

Heads: the wrapper's task classes (``remote_wrapper.TASK_CLASSES``: a classifier exports as
``LeanBertForSequenceClassification``, an MLM head as ``LeanBertForMaskedLM``), an encoder without those as
``LeanBertModel``. Pretraining-only heads (NSP/SOP, replaced-token detection) have no remote class and are left
out, with a note.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from leanbert.config import to_dict
from leanbert.export import remote_wrapper
from leanbert.export.remote_bundle import MODEL_PACKAGE, MODELING_FILE, write_bundle
from leanbert.model import HEADS, POSITION_SCHEMES
from leanbert.model.config import ModelConfig
from leanbert.model.model import LeanBertModel
from leanbert.model_dir import copy_tokenizer_files

__all__ = ["MODELING_FILE", "build_remote_model", "fill_remote_dir", "remote_code_reason"]


def remote_code_reason(config: ModelConfig) -> str | None:
    """Why transformers' own classes cannot hold ``config`` (so remote code is needed), or None."""
    position = POSITION_SCHEMES[config.position].hf_reason(config.scheme_options)
    if position is not None:
        return position
    if config.sharing in ("attention", "ffn"):
        return f"sharing={config.sharing!r}"
    if config.sharing == "all" and config.family != "albert":
        return f"sharing='all' with family={config.family!r}"
    if config.family == "bert" and config.embedding_size != config.hidden_size:
        return "a factorized BERT embedding"
    return None


def component_modules(config: ModelConfig, head: str | None) -> list[str]:
    """Modules outside the model package that hold a component the export runs (a position scheme or head
    registered from its own file): they ship too."""
    classes = [POSITION_SCHEMES[config.position].scheme_class] + ([HEADS[head].head_class] if head else [])
    modules = dict.fromkeys(c.__module__ for c in classes)
    return [m for m in modules if m != MODEL_PACKAGE and not m.startswith(MODEL_PACKAGE + ".")]


def remote_state(model: LeanBertModel, head: str | None) -> dict[str, torch.Tensor]:
    """leanbert's state dict under the remote class's names: ``leanbert.`` + leanbert's own name, for the
    encoder and the class's one head."""
    keep = ("encoder.",) + ((f"heads.{head}.",) if head else ())
    return {f"leanbert.{name}": tensor for name, tensor in model.state_dict().items() if name.startswith(keep)}


def build_remote_model(model: LeanBertModel, labels: list[str] | None = None):
    """The remote-code transformers model equal to ``model`` (float32, eval mode)."""
    config = model.config
    class_name = remote_wrapper.class_name_for(config.heads)
    cls = getattr(remote_wrapper, class_name)
    network = {k: v for k, v in to_dict(dataclasses.replace(config, heads=[])).items() if k != "heads"}
    kwargs = {"leanbert_model": network, "num_labels": config.num_labels, "pad_token_id": config.pad_token_id}
    if labels and len(labels) == config.num_labels:  # class or tag names (pipelines read id2label)
        kwargs["id2label"] = dict(enumerate(map(str, labels)))
        kwargs["label2id"] = {str(label): i for i, label in enumerate(labels)}
    remote_config = remote_wrapper.LeanBertConfig(**kwargs)
    remote_config.auto_map = remote_wrapper.auto_map(MODELING_FILE.removesuffix(".py"))
    remote_config.architectures = [class_name]
    remote = cls(remote_config)
    result = remote.load_state_dict(remote_state(model, cls.head), strict=False)
    if result.missing_keys or result.unexpected_keys:  # same code on both sides: a bug, not bad input
        raise RuntimeError(f"remote export: missing {result.missing_keys}, "
                           f"unexpected {result.unexpected_keys}")
    return remote.eval()


def fill_remote_dir(model: LeanBertModel, model_dir: Path, tmp: Path, labels: list[str] | None,
                    log=print) -> None:
    """Write the remote-code export of ``model`` into the (temporary) directory ``tmp``."""
    kept = getattr(remote_wrapper, remote_wrapper.class_name_for(model.config.heads)).head
    dropped = [h for h in model.config.heads if h != kept]
    if dropped:
        log(f"note: the remote-code export leaves out the head(s) {', '.join(dropped)} (no transformers Auto "
            "class for them)")
    remote = build_remote_model(model, labels)
    remote.save_pretrained(str(tmp), safe_serialization=True)
    write_bundle(tmp, component_modules(model.config, kept))
    copy_tokenizer_files(model_dir, tmp)
