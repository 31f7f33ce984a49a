"""The one reader for the JSON objects and safetensors files leanbert loads (model directories, checkpoints,
training state, Hugging Face directories). Nothing here executes file content: ``json.loads`` and safetensors.

Every failure is a one-line ``UserError`` naming the file and telling apart what the user can fix: a missing
file, a directory or FIFO where a file belongs, a permission problem, or content that is truncated/corrupted.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from leanbert.errors import UserError
from leanbert.paths import check_regular_file, describe_os_error


def read_json_object(path: str | Path, expected: str) -> dict[str, Any]:
    """The JSON object (dict) in ``path``; ``expected`` says what the file should be, for the messages."""
    path = check_regular_file(path, expected)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise UserError(f"cannot read {describe_os_error(err)}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: not valid JSON ({err}); the file is truncated or corrupted") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: holds a JSON {type(data).__name__}, expected an object ({expected})")
    return data


def json_object_line(path: str | Path, number: int, text: str) -> dict[str, Any]:
    """Line ``number`` of the JSON-lines file ``path`` as a JSON object; one UserError naming FILE:LINE
    otherwise. The one JSONL record parser (finetune, distill tables, NER and multiple-choice files)."""
    try:
        record = json.loads(text)
    except json.JSONDecodeError as err:
        raise UserError(f"{path}:{number}: invalid JSON ({err.msg} at column {err.colno}); "
                        "expected one JSON object per line") from None
    if not isinstance(record, dict):
        raise UserError(f"{path}:{number}: expected a JSON object, found {type(record).__name__}")
    return record


def read_safetensors(path: str | Path) -> dict[str, torch.Tensor]:
    """Every tensor of a safetensors file, on the CPU."""
    path = check_regular_file(path, "a safetensors weights file")
    try:
        with open(path, "rb"):  # a permission problem is the user's to fix, not a corrupt file
            pass
        return load_file(str(path))
    except OSError as err:
        raise UserError(f"cannot read {describe_os_error(err)}") from None
    except (SafetensorError, ValueError) as err:
        raise UserError(f"{path}: cannot read safetensors weights ({err}); the file is truncated or "
                        f"corrupted") from None
