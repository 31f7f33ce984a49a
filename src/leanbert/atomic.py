"""Atomic writes: a file or directory appears complete or not at all (temp sibling, then ``os.replace``).

Kept free of torch so the data commands can use it without importing torch.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any


def replace_dir(tmp: Path, out_dir: Path) -> None:
    """Move the finished directory ``tmp`` to ``out_dir``, replacing an existing one only at the very end."""
    if out_dir.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=out_dir.parent))
        os.replace(out_dir, old / "dir")
        os.replace(tmp, out_dir)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, out_dir)


def write_dir_atomically(out_dir: str | Path, fill: Callable[[Path], None]) -> Path:
    """Create ``out_dir`` by calling ``fill(tmp_dir)`` on a temporary sibling and renaming it into place.

    An existing ``out_dir`` is replaced only after ``fill`` succeeded; on failure nothing is left behind.
    """
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        fill(tmp)
        replace_dir(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


def write_text_atomically(path: str | Path, text: str) -> None:
    """Write UTF-8 ``text`` to a temporary sibling, then rename it over ``path``."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_json_atomically(path: str | Path, data: Any) -> None:
    write_text_atomically(path, json.dumps(data, indent=2, sort_keys=False) + "\n")
