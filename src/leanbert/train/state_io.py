"""Save nested training state (optimizer state dicts, RNG states, data positions) without pickle.

A tree of dicts, lists, tuples, tensors, numpy arrays and JSON scalars becomes two files: ``NAME.safetensors``
with every tensor/array, and ``NAME.json`` with the structure, where each tensor is replaced by a reference.
Tuples, dicts with non-string keys (an optimizer's ``state`` is keyed by int) and numpy arrays are tagged so
they come back as the same types. Loading never executes code: safetensors + ``json.loads`` only.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save_file

from leanbert.errors import UserError
from leanbert.safe_io import read_safetensors

_TENSOR, _NUMPY, _TUPLE, _ITEMS, _FLOAT = "__tensor__", "__numpy__", "__tuple__", "__items__", "__float__"


def _encode(value: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(value, torch.Tensor):
        key = f"t{len(tensors)}"
        tensors[key] = value.detach().cpu().contiguous()
        return {_TENSOR: key}
    if isinstance(value, np.ndarray):
        key = f"t{len(tensors)}"
        # unsigned ints (numpy's MT19937 key is uint32) are widened: torch/safetensors lack most of them
        stored = value.astype(np.int64) if value.dtype.kind == "u" else value
        tensors[key] = torch.from_numpy(np.ascontiguousarray(stored).copy())
        return {_NUMPY: [key, value.dtype.str]}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return {_FLOAT: repr(value)}  # JSON has no inf/nan
    if isinstance(value, tuple):
        return {_TUPLE: [_encode(v, tensors) for v in value]}
    if isinstance(value, list):
        return [_encode(v, tensors) for v in value]
    if isinstance(value, dict):
        if all(isinstance(k, str) for k in value) and not any(k.startswith("__") for k in value):
            return {k: _encode(v, tensors) for k, v in value.items()}
        return {_ITEMS: [[_encode(k, tensors), _encode(v, tensors)] for k, v in value.items()]}
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise TypeError(f"cannot save a {type(value).__name__} in training state (only tensors, arrays, "
                    f"dicts, lists, tuples and JSON scalars)")


def _decode(value: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(value, list):
        return [_decode(v, tensors) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        (tag, inner), = value.items()
        if tag == _TENSOR:
            return tensors[inner]
        if tag == _NUMPY:
            return tensors[inner[0]].numpy().astype(np.dtype(inner[1]))
        if tag == _TUPLE:
            return tuple(_decode(v, tensors) for v in inner)
        if tag == _ITEMS:
            return {_hashable(_decode(k, tensors)): _decode(v, tensors) for k, v in inner}
        if tag == _FLOAT:
            return float(inner)
    return {k: _decode(v, tensors) for k, v in value.items()}


def _hashable(key: Any) -> Any:
    return tuple(key) if isinstance(key, list) else key


def save_state(directory: Path, name: str, tree: Any) -> list[str]:
    """Write ``name.json`` (+ ``name.safetensors`` when there are tensors) into ``directory``; returns the files."""
    tensors: dict[str, torch.Tensor] = {}
    structure = _encode(tree, tensors)
    files = [f"{name}.json"]
    if tensors:
        save_file(tensors, str(directory / f"{name}.safetensors"))
        files.append(f"{name}.safetensors")
    (directory / f"{name}.json").write_text(json.dumps(structure) + "\n", encoding="utf-8")
    return files


def load_state(directory: Path, name: str) -> Any:
    """Inverse of ``save_state``; errors name the file."""
    path = directory / f"{name}.json"
    try:
        structure = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise UserError(f"{path}: cannot read training state ({err})") from None
    tensors: dict[str, torch.Tensor] = {}
    weights = directory / f"{name}.safetensors"
    if weights.exists() or weights.is_symlink():
        tensors = read_safetensors(weights)
    try:
        return _decode(structure, tensors)
    except KeyError as err:
        raise UserError(f"{path}: refers to tensor {err} missing from {weights.name}") from None
