"""Model directories: ``config.json`` + ``model.safetensors`` (+ tokenizer files). Never pickle.

Writes are atomic: everything goes into a hidden temporary sibling directory that is renamed into place at the
end, so an interrupted save never leaves a directory that looks complete. Loading checks every file and
reports truncated, corrupted or mismatched files by name.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from leanbert.atomic import write_dir_atomically, write_json_atomically
from leanbert.config import ConfigError, ModelConfig, from_dict, to_dict
from leanbert.errors import UserError
from leanbert.model.model import LeanBertModel

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
FORMAT = "leanbert-model"
FORMAT_VERSION = 1
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt",
                   "spiece.model")


def copy_tokenizer_files(src: str | Path | None, dst: Path) -> list[str]:
    """Copy the tokenizer files that exist in ``src`` into ``dst``; returns their names."""
    if src is None:
        return []
    copied = []
    for name in TOKENIZER_FILES:
        if (Path(src) / name).is_file():
            shutil.copyfile(Path(src) / name, dst / name)
            copied.append(name)
    return copied


def save_model(model: LeanBertModel, out_dir: str | Path, tokenizer_dir: str | Path | None = None,
               extra: dict[str, Any] | None = None) -> Path:
    """Write ``model`` (config + weights, contiguous float tensors) and tokenizer files atomically."""

    def fill(tmp: Path) -> None:
        state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
        save_file(state, str(tmp / WEIGHTS_NAME), metadata={"format": FORMAT})
        copy_tokenizer_files(tokenizer_dir, tmp)
        meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "model": to_dict(model.config)}
        if extra:
            meta.update(extra)
        write_json_atomically(tmp / CONFIG_NAME, meta)

    return write_dir_atomically(out_dir, fill)


def read_model_config(model_dir: str | Path) -> tuple[ModelConfig, dict[str, Any]]:
    """Parse ``config.json`` of a leanbert model directory; returns (ModelConfig, the whole JSON object)."""
    path = Path(model_dir) / CONFIG_NAME
    if not Path(model_dir).is_dir():
        raise UserError(f"{model_dir}: not a directory (expected a leanbert model directory)")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path}: missing (a leanbert model directory holds {CONFIG_NAME} and "
                        f"{WEIGHTS_NAME})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: not valid JSON ({err}); the file is truncated or corrupted") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        hint = " (it looks like a Hugging Face model: use `leanbert import`)" if isinstance(meta, dict) and \
            "model_type" in meta else ""
        raise UserError(f"{path}: not a leanbert model config (expected \"format\": \"{FORMAT}\"){hint}")
    if meta.get("format_version", 0) > FORMAT_VERSION:
        raise UserError(f"{path}: format_version {meta['format_version']} is newer than this leanbert "
                        f"understands ({FORMAT_VERSION}); upgrade leanbert")
    try:
        config = from_dict(ModelConfig, meta.get("model", {}), prefix="model.")
    except ConfigError as err:
        raise UserError(f"{path}: {err}") from None
    return config, meta


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    """Load a safetensors file with an error naming the file when it is missing, truncated or corrupt."""
    if not path.is_file():
        raise UserError(f"{path}: missing")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise UserError(f"{path}: cannot read safetensors weights ({err}); the file is truncated or "
                        f"corrupted") from None


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
    model.load_state_dict(state, strict=True)


def load_model(model_dir: str | Path, map_location: str | torch.device = "cpu") -> LeanBertModel:
    """Load a leanbert model directory (heads included) in eval mode."""
    config, _ = read_model_config(model_dir)
    model = LeanBertModel(config)
    path = Path(model_dir) / WEIGHTS_NAME
    load_state_strict(model, read_weights(path), path)
    return model.to(map_location).eval()
