"""Import/export between leanbert model directories and Hugging Face BERT / ALBERT / ELECTRA checkpoints.

All parameter-name maps live in this file. leanbert stores Q, K and V as one fused ``qkv`` matrix; Hugging
Face keeps three, so the maps split/concatenate them. Export builds the ``transformers`` model, loads the
mapped weights strictly and lets ``save_pretrained`` write the files, so what we write is exactly what
``from_pretrained`` expects.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from leanbert.errors import UserError
from leanbert.export.remote import fill_remote_dir, remote_code_reason
from leanbert.inference import hf_label_names
from leanbert.model import HEADS, POSITION_SCHEMES
from leanbert.model.config import ACTIVATIONS, ModelConfig
from leanbert.model.model import LeanBertModel
from leanbert.model_dir import (
    TOKENIZER_FILES,
    copy_tokenizer_files,
    load_model,
    load_state_strict,
    read_model_config,
    read_weights,
    write_model_files,
)
from leanbert.outdir import check_out_dir, publish_dir
from leanbert.safe_io import read_json_object
from leanbert.tasks import TASK_TYPES, task_type_of

BASE_PREFIX = {"bert": "bert", "albert": "albert", "electra": "electra"}
CLASS_PREFIX = {"bert": "Bert", "albert": "Albert", "electra": "Electra"}  # + a task type's hf_suffix

# (family, pretraining heads) -> transformers class name written to config.json's "architectures"; a model with
# one task head (leanbert.tasks) is f"{CLASS_PREFIX[family]}{task_type.hf_suffix}" instead.
HF_CLASSES = {
    ("bert", ()): "BertModel",
    ("bert", ("mlm",)): "BertForMaskedLM",
    ("bert", ("nsp",)): "BertForNextSentencePrediction",
    ("bert", ("mlm", "nsp")): "BertForPreTraining",
    ("albert", ()): "AlbertModel",
    ("albert", ("mlm",)): "AlbertForMaskedLM",
    ("albert", ("mlm", "sop")): "AlbertForPreTraining",
    ("electra", ()): "ElectraModel",
    ("electra", ("mlm",)): "ElectraForMaskedLM",
    ("electra", ("rtd",)): "ElectraForPreTraining",
}

# Per-layer names: leanbert block attribute -> HF suffix, for BERT/ELECTRA layers and ALBERT groups.
LAYER_NAMES = {
    "bert": {"attention.out": "attention.output.dense", "attention.norm": "attention.output.LayerNorm",
             "ffn.fc_in": "intermediate.dense", "ffn.fc_out": "output.dense", "ffn.norm": "output.LayerNorm",
             "qkv": ("attention.self.query", "attention.self.key", "attention.self.value")},
    "albert": {"attention.out": "attention.dense", "attention.norm": "attention.LayerNorm",
               "ffn.fc_in": "ffn", "ffn.fc_out": "ffn_output", "ffn.norm": "full_layer_layer_norm",
               "qkv": ("attention.query", "attention.key", "attention.value")},
}

# Tied copies Hugging Face also expects in its state dict: HF name -> leanbert name.
TIED_NAMES = {
    "bert": {"cls.predictions.decoder.weight": "encoder.embeddings.word_embeddings.weight",
             "cls.predictions.decoder.bias": "heads.mlm.bias"},
    "albert": {"predictions.decoder.weight": "encoder.embeddings.word_embeddings.weight",
               "predictions.decoder.bias": "heads.mlm.bias"},
    "electra": {"generator_lm_head.weight": "encoder.embeddings.word_embeddings.weight"},
}


def head_names(family: str) -> dict[str, str]:
    """leanbert head path (``<head>.<sub-module>``) -> transformers module name for every head of ``family``:
    the pretraining heads' own ``hf_names`` (model/heads) and the task types'."""
    names = {f"{head}.{sub}": hf for head, spec in HEADS.items() for sub, hf in spec.hf_names.get(family, {}).items()}
    for task_type in TASK_TYPES.values():
        names.update(task_type.hf_names.get(family, {}))
    return names


def hf_class_name(config: ModelConfig) -> str | None:
    """transformers' class for ``config``'s family and heads, or None when it has none."""
    task_type = task_type_of(config.heads)
    if task_type is not None:
        return f"{CLASS_PREFIX[config.family]}{task_type.hf_suffix}" if len(config.heads) == 1 else None
    return HF_CLASSES.get((config.family, tuple(sorted(config.heads))))


# ------------------------------------------------------------------------------------------------------------
# Configs


def check_exportable(config: ModelConfig) -> None:
    """Refuse shapes Hugging Face cannot represent, with the reason."""
    family = config.family
    position = POSITION_SCHEMES[config.position].hf_reason(config.scheme_options)
    if position is not None:
        raise UserError(f"cannot export {position}: transformers' {family} models only have absolute position "
                        f"embeddings")
    if config.sharing in ("attention", "ffn"):
        raise UserError(f"cannot export sharing={config.sharing!r}: transformers has no model that shares only "
                        f"the {config.sharing} blocks (ALBERT shares all or nothing)")
    if config.sharing == "all" and family != "albert":
        raise UserError(f"cannot export sharing='all' with family={family!r}: only ALBERT shares layers in "
                        f"transformers; set family=albert")
    if family == "bert" and config.embedding_size != config.hidden_size:
        raise UserError("cannot export a factorized embedding (embedding_size != hidden_size) as BERT; "
                        "use family=albert or family=electra")
    if family == "electra" and "mlm" in config.heads and config.hidden_act != "gelu":
        raise UserError(f"cannot export an ELECTRA generator with hidden_act={config.hidden_act!r}: transformers' "
                        f"ElectraForMaskedLM head always uses gelu")
    if config.type_vocab_size == 0:
        raise UserError("cannot export type_vocab_size=0: transformers' models always have token types")
    if hf_class_name(config) is None:
        tasks = [(t.head,) for t in TASK_TYPES.values()]
        raise UserError(f"cannot export heads {config.heads} for family {family!r}; transformers has classes for "
                        f"{sorted({h for f, hs in HF_CLASSES if f == family for h in [hs]} | set(tasks))}")


def hf_config_dict(config: ModelConfig) -> dict[str, Any]:
    family = config.family
    d: dict[str, Any] = {
        "model_type": family,
        "architectures": [hf_class_name(config)],
        "vocab_size": config.vocab_size,
        "hidden_size": config.hidden_size,
        "num_hidden_layers": config.num_layers,
        "num_attention_heads": config.num_heads,
        "intermediate_size": config.intermediate_size,
        "hidden_act": config.hidden_act,
        "hidden_dropout_prob": config.hidden_dropout,
        "attention_probs_dropout_prob": config.attention_dropout,
        "max_position_embeddings": config.max_positions,
        "type_vocab_size": config.type_vocab_size,
        "layer_norm_eps": config.layer_norm_eps,
        "initializer_range": config.initializer_range,
        "pad_token_id": config.pad_token_id,
        "position_embedding_type": "absolute",
    }
    if family in ("albert", "electra"):
        d["embedding_size"] = config.embedding_size
    if family == "albert":
        d["num_hidden_groups"] = config.num_groups if config.sharing == "all" else config.num_layers
        d["inner_group_num"] = 1
        d["classifier_dropout_prob"] = config.hidden_dropout
    task_type = task_type_of(config.heads)
    if task_type is not None:
        d.update(task_type.hf_config(config))
    return d


def model_config_from_hf(hf: dict[str, Any], source: Path) -> ModelConfig:
    family = hf.get("model_type")
    if family not in BASE_PREFIX:
        raise UserError(f"{source}: model_type {family!r} is not supported; leanbert imports bert, albert, electra")
    act = hf.get("hidden_act", "gelu")
    if act not in ACTIVATIONS:
        raise UserError(f"{source}: hidden_act {act!r} is not supported; leanbert has {', '.join(ACTIVATIONS)}")
    if hf.get("position_embedding_type", "absolute") != "absolute":
        raise UserError(f"{source}: position_embedding_type {hf['position_embedding_type']!r} is not supported")
    sharing, groups = "none", 1
    if family == "albert":
        if hf.get("inner_group_num", 1) != 1:
            raise UserError(f"{source}: inner_group_num={hf['inner_group_num']} is not supported (only 1)")
        sharing, groups = "all", hf.get("num_hidden_groups", 1)
    try:
        hidden = hf["hidden_size"]
        return ModelConfig(
            vocab_size=hf["vocab_size"], embedding_size=hf.get("embedding_size", hidden), hidden_size=hidden,
            num_layers=hf["num_hidden_layers"], num_heads=hf["num_attention_heads"],
            intermediate_size=hf["intermediate_size"], hidden_act=act,
            hidden_dropout=hf.get("hidden_dropout_prob", 0.1),
            attention_dropout=hf.get("attention_probs_dropout_prob", 0.1),
            max_positions=hf.get("max_position_embeddings", 512), type_vocab_size=hf.get("type_vocab_size", 2),
            layer_norm_eps=hf.get("layer_norm_eps", 1e-12), initializer_range=hf.get("initializer_range", 0.02),
            sharing=sharing, num_groups=groups, family=family, pad_token_id=hf.get("pad_token_id") or 0)
    except KeyError as err:
        raise UserError(f"{source}: missing field {err.args[0]!r}") from None


# ------------------------------------------------------------------------------------------------------------
# Weights


def _name_pairs(config: ModelConfig) -> list[tuple[str, str]]:
    """(leanbert module path, HF module path) for every Linear/LayerNorm/Embedding except fused QKV."""
    family, base = config.family, BASE_PREFIX[config.family]
    pairs = [(f"encoder.embeddings.{n}", f"{base}.embeddings.{n}")
             for n in ("word_embeddings", "position_embeddings", "token_type_embeddings")]
    pairs.append(("encoder.embeddings.norm", f"{base}.embeddings.LayerNorm"))
    if config.embedding_size != config.hidden_size:
        pairs.append(("encoder.embeddings.project", {"albert": "albert.encoder.embedding_hidden_mapping_in",
                                                     "electra": "electra.embeddings_project"}[family]))
    if config.has_pooler:
        pairs.append(("encoder.pooler", {"bert": "bert.pooler.dense", "albert": "albert.pooler"}[family]))
    layer_names = LAYER_NAMES["albert" if family == "albert" else "bert"]
    for i in range(len(_blocks(config))):
        hf_layer = (f"albert.encoder.albert_layer_groups.{i}.albert_layers.0" if family == "albert"
                    else f"{base}.encoder.layer.{i}")
        for ours, theirs in layer_names.items():
            if ours != "qkv":
                kind, sub = ours.split(".")
                pairs.append((f"encoder.{kind}.{i}.{sub}", f"{hf_layer}.{theirs}"))
    for ours, theirs in head_names(family).items():
        if ours.split(".")[0] in config.heads:
            pairs.append((f"heads.{ours}", theirs))
    return pairs


def _blocks(config: ModelConfig) -> range:
    return range(config.num_groups if config.sharing == "all" else config.num_layers)


def _qkv_names(config: ModelConfig, i: int) -> tuple[str, tuple[str, str, str]]:
    family = config.family
    prefix = (f"albert.encoder.albert_layer_groups.{i}.albert_layers.0" if family == "albert"
              else f"{BASE_PREFIX[family]}.encoder.layer.{i}")
    qkv = LAYER_NAMES["albert" if family == "albert" else "bert"]["qkv"]
    return f"encoder.attention.{i}.qkv", tuple(f"{prefix}.{n}" for n in qkv)


def to_hf_state(model: LeanBertModel) -> dict[str, torch.Tensor]:
    config = model.config
    ours = model.state_dict()
    out: dict[str, torch.Tensor] = {}
    for mine, theirs in _name_pairs(config):
        if mine in ours:  # a Parameter itself (the MLM bias)
            out[theirs] = ours[mine]
            continue
        for suffix in ("weight", "bias"):
            if f"{mine}.{suffix}" in ours:
                out[f"{theirs}.{suffix}"] = ours[f"{mine}.{suffix}"]
    for i in _blocks(config):
        mine, theirs = _qkv_names(config, i)
        for suffix in ("weight", "bias"):
            for name, part in zip(theirs, ours[f"{mine}.{suffix}"].chunk(3, dim=0)):
                out[f"{name}.{suffix}"] = part.clone()
    for theirs, mine in TIED_NAMES[config.family].items():
        if "mlm" in config.heads:
            out[theirs] = ours[mine]
    return out


def from_hf_state(hf_state: dict[str, torch.Tensor], config: ModelConfig) -> dict[str, torch.Tensor]:
    """Map an HF state dict (with or without the base-model prefix) onto leanbert names."""
    base = BASE_PREFIX[config.family]
    state = dict(hf_state)
    if not any(k.startswith(base + ".") for k in state):  # saved from BertModel etc.: no prefix
        state = {f"{base}.{k}": v for k, v in state.items()}
    out: dict[str, torch.Tensor] = {}
    for mine, theirs in _name_pairs(config):
        if theirs in state:
            out[mine] = state[theirs]
        for suffix in ("weight", "bias"):
            if f"{theirs}.{suffix}" in state:
                out[f"{mine}.{suffix}"] = state[f"{theirs}.{suffix}"]
    for i in _blocks(config):
        mine, theirs = _qkv_names(config, i)
        for suffix in ("weight", "bias"):
            try:
                out[f"{mine}.{suffix}"] = torch.cat([state[f"{n}.{suffix}"] for n in theirs], dim=0)
            except KeyError as err:
                raise UserError(f"Hugging Face weights lack {err.args[0]!r}") from None
    return out


def detect_heads(hf_state: dict[str, torch.Tensor], family: str, architecture: str | None = None
                 ) -> tuple[list[str], int]:
    """Which heads an HF checkpoint carries (from its weight names), and the task head's label count. Task heads
    that share weight names (``classifier`` in *ForSequenceClassification, *ForTokenClassification and
    *ForMultipleChoice) are told apart by the config's ``architecture`` (its class-name suffix)."""
    heads, num_labels = [], 2
    names = head_names(family)
    for ours, theirs in names.items():
        head = ours.split(".")[0]
        if head not in heads and any(k == theirs or k.startswith(theirs + ".") for k in hf_state):
            heads.append(head)
    task_heads = {t.head: t for t in TASK_TYPES.values() if t.head in heads}
    named = [h for h, t in task_heads.items() if architecture and architecture.endswith(t.hf_suffix)]
    if len(task_heads) > 1 and named:
        heads = [h for h in heads if h not in task_heads or h == named[0]]
    task_type = task_type_of(heads)
    if task_type is not None:
        key = names[task_type.output_layer] + ".weight"
        num_labels = hf_state[key].shape[0]
    return heads, num_labels


# ------------------------------------------------------------------------------------------------------------
# Directories


def build_hf_model(model: LeanBertModel):
    """The ``transformers`` model equivalent to ``model``, with its weights (float32, eval mode)."""
    import transformers

    check_exportable(model.config)
    hf_dict = hf_config_dict(model.config)
    config_cls = transformers.AutoConfig.for_model(hf_dict["model_type"]).__class__
    hf_config = config_cls(**{k: v for k, v in hf_dict.items() if k != "model_type"})
    hf_model = getattr(transformers, hf_dict["architectures"][0])(hf_config)
    state = to_hf_state(model)
    prefix = hf_model.base_model_prefix + "."
    if not hasattr(hf_model, hf_model.base_model_prefix):  # a bare BertModel etc. has no prefix in its names
        state = {k.removeprefix(prefix): v for k, v in state.items()}
    if not hasattr(getattr(hf_model, hf_model.base_model_prefix, hf_model), "pooler") or \
            getattr(getattr(hf_model, hf_model.base_model_prefix, hf_model), "pooler", None) is None:
        # *ForMaskedLM classes have no pooler (MLM never trains it); transformers would call it unexpected.
        state = {k: v for k, v in state.items() if ".pooler." not in f".{k}"}
    result = hf_model.load_state_dict(state, strict=False)
    # Only non-persistent buffers (position_ids, token_type_ids) may be missing; nothing may be unexpected.
    missing = [k for k in result.missing_keys if not k.endswith(("position_ids", "token_type_ids"))]
    if missing or result.unexpected_keys:
        raise RuntimeError(f"internal name-map error: missing {missing}, unexpected {result.unexpected_keys}")
    return hf_model.eval()


def export_to_hf(model_dir: str | Path, out_dir: str | Path, overwrite: bool = False) -> Path:
    """leanbert model directory -> Hugging Face directory (config.json, model.safetensors, tokenizer files).

    ``out_dir`` follows the output-directory policy (``leanbert.outdir``): never the model directory, its run
    directory or anything else that is not an earlier export."""
    check_out_dir(out_dir, "export", [model_dir], overwrite, flag="OUT_DIR")
    model = load_model(model_dir)
    labels = read_model_config(model_dir)[1].get("task", {}).get("labels")
    if remote_code_reason(model.config) is not None:  # no transformers class: self-contained modeling file
        return publish_dir(out_dir, "export", lambda tmp: fill_remote_dir(model, Path(model_dir), tmp, labels),
                           inputs=[model_dir], overwrite=overwrite, flag="OUT_DIR")
    hf_model = build_hf_model(model)
    # a task head's label names (written by `leanbert finetune`: classes, NER tags), so pipelines report them
    if task_type_of(model.config.heads) is not None and labels and len(labels) == model.config.num_labels:
        hf_model.config.id2label = dict(enumerate(map(str, labels)))
        hf_model.config.label2id = {str(label): i for i, label in enumerate(labels)}

    def fill(tmp: Path) -> None:
        hf_model.save_pretrained(str(tmp), safe_serialization=True)
        copy_tokenizer_files(model_dir, tmp)

    return publish_dir(out_dir, "export", fill, inputs=[model_dir], overwrite=overwrite, flag="OUT_DIR")


def read_hf_dir(hf_dir: str | Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """config.json and weights of a local HF directory (safetensors, else a .bin read with weights_only)."""
    hf_dir = Path(hf_dir)
    config_path = hf_dir / "config.json"
    if not config_path.exists() and not config_path.is_symlink():
        raise UserError(f"{config_path}: missing (expected a Hugging Face model directory)")
    hf_config = read_json_object(config_path, "a Hugging Face model config")
    if (hf_dir / "model.safetensors").exists() or (hf_dir / "model.safetensors").is_symlink():
        return hf_config, read_weights(hf_dir / "model.safetensors")
    bin_path = hf_dir / "pytorch_model.bin"
    if bin_path.is_file():
        try:  # weights_only refuses arbitrary pickled objects: only tensors and plain containers load
            return hf_config, torch.load(bin_path, map_location="cpu", weights_only=True)
        except Exception as err:  # noqa: BLE001 - report any unpickling refusal as a user error
            raise UserError(f"{bin_path}: cannot read with weights_only=True ({err})") from None
    raise UserError(f"{hf_dir}: no model.safetensors or pytorch_model.bin (sharded checkpoints are not "
                    f"supported)")


def import_from_hf(hf_dir: str | Path, out_dir: str | Path, overwrite: bool = False) -> Path:
    """Local HF BERT/ALBERT/ELECTRA directory -> leanbert model directory (heads detected from the weights).

    ``out_dir`` follows the output-directory policy (``leanbert.outdir``)."""
    hf_dir = Path(hf_dir)
    check_out_dir(out_dir, "import", [hf_dir], overwrite, flag="OUT_DIR")
    hf_config, hf_state = read_hf_dir(hf_dir)
    config = model_config_from_hf(hf_config, hf_dir / "config.json")
    architectures = hf_config.get("architectures")
    architecture = str(architectures[0]) if isinstance(architectures, list) and architectures else None
    heads, num_labels = detect_heads(hf_state, config.family, architecture)
    config = ModelConfig(**{**config.__dict__, "heads": heads, "num_labels": num_labels})
    model = LeanBertModel(config)
    state = from_hf_state(hf_state, config)
    for name, fresh in model.state_dict().items():
        # *ForMaskedLM checkpoints carry no pooler; keep a freshly initialised one, as transformers would.
        if name.startswith("encoder.pooler.") and name not in state:
            state[name] = fresh
    load_state_strict(model, state, hf_dir)
    tokenizer_dir = hf_dir if any((hf_dir / n).is_file() for n in TOKENIZER_FILES) else None
    labels = hf_label_names(hf_config, num_labels)  # class or tag names; None for defaults
    extra = {"task": {"labels": labels}} if labels else None

    def fill(tmp: Path) -> None:
        write_model_files(model, tmp, tokenizer_dir=tokenizer_dir, extra=extra)

    return publish_dir(out_dir, "import", fill, inputs=[hf_dir], overwrite=overwrite, flag="OUT_DIR")
