"""Model directories: ``config.json`` + ``model.safetensors`` (+ tokenizer files). Never pickle.

Writes are atomic: everything goes into a hidden temporary sibling directory that is renamed into place at the
end, so an interrupted save never leaves a directory that looks complete. Loading checks every file and
reports truncated, corrupted or mismatched files by name.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from leanbert.atomic import write_dir_atomically, write_json_atomically
from leanbert.config import ConfigError, from_dict, to_dict
from leanbert.data.tokenizer import fingerprint_file
from leanbert.errors import UserError
from leanbert.memory_check import check_parameters_fit
from leanbert.model.config import ModelConfig
from leanbert.model.model import LeanBertModel
from leanbert.paths import regular_file_inside
from leanbert.safe_io import read_json_object, read_safetensors

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
FORMAT = "leanbert-model"
ROLES_FILE = "roles.json"  # in RUN/model: {"kept": role, "path": its folder, "roles": [...]}
FORMAT_VERSION = 1
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt",
                   "spiece.model")



def check_model_fits(config: ModelConfig, training: bool, source: str = "the model config") -> int:
    """Refuse ``config`` before allocating it when the machine lacks the memory for it (weights, and for
    ``training`` gradients and optimizer moments too; ``memory_check``); returns the parameter count, counted on
    the meta device (no memory touched)."""
    with torch.device("meta"):
        params = sum(p.numel() for p in LeanBertModel(config).parameters())
    shape = (f"vocab_size={config.vocab_size}, hidden_size={config.hidden_size}, "
             f"num_layers={config.num_layers}, intermediate_size={config.intermediate_size}")
    check_parameters_fit(params, training, shape, source)
    return params

def copy_tokenizer_files(src: str | Path | None, dst: Path) -> list[str]:
    """Copy the tokenizer files that exist in ``src`` into ``dst``; returns their names. Only regular files
    inside ``src`` are copied: a symlink out of it (``tokenizer.json -> /etc/passwd``) is refused."""
    if src is None:
        return []
    copied = []
    for name in TOKENIZER_FILES:
        path = regular_file_inside(src, name)
        if path is not None:
            shutil.copyfile(path, dst / name)
            copied.append(name)
    return copied


def check_tokenizer_files(src: str | Path | None) -> None:
    """Refuse now what ``copy_tokenizer_files`` would refuse when the output is saved (a symlink out of ``src``,
    a special file): every job that ends by copying a tokenizer calls this before its first step, so a run is
    never refused after training."""
    if src is not None:
        for name in TOKENIZER_FILES:
            regular_file_inside(src, name)


def tokenizer_fingerprint(directory: str | Path) -> str | None:
    """Fingerprint of ``directory/tokenizer.json`` (as prepared datasets record it), None without one."""
    path = regular_file_inside(directory, "tokenizer.json")
    return None if path is None else fingerprint_file(path)


def tokenizer_vocab_size(directory: str | Path) -> int | None:
    """Token count of the tokenizer in ``directory`` (tokenizer.json, else vocab.txt), None when unknown."""
    path = regular_file_inside(directory, "tokenizer.json")
    if path is not None:
        from tokenizers import Tokenizer

        try:
            return Tokenizer.from_file(str(path)).get_vocab_size(with_added_tokens=True)
        except Exception as err:  # noqa: BLE001 - the Rust loader raises a bare Exception on bad JSON
            raise UserError(f"{path}: not a valid tokenizers JSON file ({err})") from None
    path = regular_file_inside(directory, "vocab.txt")
    if path is not None:
        with open(path, "rb") as f:
            return sum(1 for _ in f)
    return None


def check_tokenizer(model_dir: str | Path, config: ModelConfig, meta: dict[str, Any]) -> None:
    """Refuse tokenizer files that do not belong to the model: more tokens than its vocabulary (ids past the
    embedding table), or a tokenizer.json whose fingerprint differs from the one recorded when it was saved
    (a foreign tokenizer that fits the vocabulary would silently encode text as the wrong ids)."""
    size = tokenizer_vocab_size(model_dir)
    if size is not None and size > config.vocab_size:
        raise UserError(f"{model_dir}: the tokenizer has {size} tokens but the model's vocab_size is "
                        f"{config.vocab_size}; the tokenizer does not belong to this model")
    recorded = meta.get("tokenizer", {}).get("fingerprint") if isinstance(meta.get("tokenizer"), dict) else None
    if recorded is not None:
        found = tokenizer_fingerprint(model_dir)
        if found is not None and found != recorded:
            raise UserError(f"{Path(model_dir) / 'tokenizer.json'}: fingerprint {found[:12]} differs from the "
                            f"{recorded[:12]} the model was saved with; the tokenizer was replaced by a "
                            "foreign one (restore the model's own tokenizer files)")


def write_model_files(model: LeanBertModel, directory: Path, tokenizer_dir: str | Path | None = None,
                      extra: dict[str, Any] | None = None) -> None:
    """Config + weights (contiguous float tensors) + tokenizer files into an existing ``directory``."""
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(state, str(directory / WEIGHTS_NAME), metadata={"format": FORMAT})
    copy_tokenizer_files(tokenizer_dir, directory)
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "model": to_dict(model.config)}
    fingerprint = tokenizer_fingerprint(directory)
    if fingerprint is not None:  # load_model refuses a tokenizer.json swapped for a foreign one
        meta["tokenizer"] = {"fingerprint": fingerprint}
    if extra:
        meta.update(extra)
    write_json_atomically(directory / CONFIG_NAME, meta)


def save_model(model: LeanBertModel, out_dir: str | Path, tokenizer_dir: str | Path | None = None,
               extra: dict[str, Any] | None = None) -> Path:
    """Write ``model`` and its tokenizer files atomically (``write_model_files`` into a temp sibling)."""
    return write_dir_atomically(out_dir, lambda tmp: write_model_files(model, tmp, tokenizer_dir, extra))


def read_model_config(model_dir: str | Path) -> tuple[ModelConfig, dict[str, Any]]:
    """Parse ``config.json`` of a leanbert model directory; returns (ModelConfig, the whole JSON object)."""
    path = Path(model_dir) / CONFIG_NAME
    if not Path(model_dir).is_dir():
        raise UserError(f"{model_dir}: not a directory (expected a leanbert model directory)")
    if not path.exists() and not path.is_symlink():
        raise UserError(f"{path}: missing (a leanbert model directory holds {CONFIG_NAME} and "
                        f"{WEIGHTS_NAME})")
    meta = read_json_object(path, "a leanbert model config")
    if meta.get("format") != FORMAT:
        hint = " (it looks like a Hugging Face model: use `leanbert import`)" if "model_type" in meta else ""
        raise UserError(f"{path}: not a leanbert model config (expected \"format\": \"{FORMAT}\"){hint}")
    version = meta.get("format_version", 0)
    if not isinstance(version, int) or isinstance(version, bool) or version > FORMAT_VERSION:
        raise UserError(f"{path}: format_version {version!r} is not one this leanbert understands "
                        f"(<= {FORMAT_VERSION}); upgrade leanbert")
    try:
        config = from_dict(ModelConfig, meta.get("model", {}), prefix="model.")
    except ConfigError as err:
        raise UserError(f"{path}: {err}") from None
    return config, meta


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    """Load a safetensors file with an error naming the file when it is missing, truncated or corrupt."""
    if not path.exists() and not path.is_symlink():
        raise UserError(f"{path}: missing")
    return read_safetensors(path)


def load_state_strict(model: torch.nn.Module, state: dict[str, torch.Tensor], source: Path) -> None:
    """Copy ``state`` into ``model``, refusing missing/unexpected names or wrong shapes with a clear message."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} tensor(s), e.g. {missing[:3]}")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)} tensor(s), e.g. {unexpected[:3]}")
        raise UserError(f"{source}: weights do not match config.json: {'; '.join(parts)}")
    for name, tensor in state.items():
        if tensor.shape != expected[name].shape:
            raise UserError(f"{source}: tensor {name!r} has shape {tuple(tensor.shape)}, config.json implies "
                            f"{tuple(expected[name].shape)}")
        if tensor.dtype.is_floating_point != expected[name].dtype.is_floating_point:
            # load_state_dict would cast silently (int64 ids -> float weights or back): refuse instead
            raise UserError(f"{source}: tensor {name!r} has dtype {str(tensor.dtype).removeprefix('torch.')}, "
                            f"the model expects {str(expected[name].dtype).removeprefix('torch.')}")
    model.load_state_dict(state, strict=True)


def load_model(model_dir: str | Path, map_location: str | torch.device = "cpu") -> LeanBertModel:
    """Load a leanbert model directory (heads included) in eval mode."""
    config, meta = read_model_config(model_dir)
    check_tokenizer(model_dir, config, meta)
    check_model_fits(config, training=False, source=str(Path(model_dir) / CONFIG_NAME))
    model = LeanBertModel(config)
    path = Path(model_dir) / WEIGHTS_NAME
    load_state_strict(model, read_weights(path), path)
    return model.to(map_location).eval()
