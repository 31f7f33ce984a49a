"""Atomic writes: a file or directory appears complete or not at all (temp sibling, then ``os.replace``).

Temporary siblings are named ``.NAME.tmp-PID.HOST-XXXX`` (``old`` / ``work`` for the other kinds) so a later
run into the same parent can delete the ones a killed process left behind, and only those: the owner's pid
must be dead on this host. What is published gets the permissions a plain ``mkdir`` would give under the
current umask (``mkdtemp`` makes directories 0700).

Kept free of torch so the data commands can use it without importing torch.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import socket
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

TEMP_KINDS = ("tmp", "old", "work")
_TEMP_NAME = re.compile(
    r"^\.(?P<label>.+)\.(?P<kind>tmp|old|work)-(?P<pid>\d+)\.(?P<host>[0-9a-f]{8})-[^/]+$")


def _host_tag() -> str:
    """8 hex digits naming this machine: a pid is only meaningful on the host that issued it."""
    return hashlib.sha256(socket.gethostname().encode("utf-8")).hexdigest()[:8]


def current_umask() -> int:
    """The process umask (there is no read-only call: set it and put it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def pid_alive(pid: int) -> bool:
    """True when a process with this pid exists on this host (signal 0 checks without sending anything)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by another user
    return True


def make_temp_dir(parent: str | Path | None, label: str, kind: str = "tmp") -> Path:
    """A new private directory ``parent/.LABEL.KIND-PID.HOST-XXXX`` (the system's temp dir when ``parent``
    is None), after removing the ones that dead processes left in ``parent`` (``clean_stale_temp_dirs``)."""
    if kind not in TEMP_KINDS:
        raise ValueError(f"temp dir kind {kind!r} is not one of {TEMP_KINDS}")
    parent = Path(parent if parent is not None else tempfile.gettempdir())
    clean_stale_temp_dirs(parent)
    return Path(tempfile.mkdtemp(prefix=f".{label}.{kind}-{os.getpid()}.{_host_tag()}-", dir=parent))


def temp_file_path(path: str | Path) -> Path:
    """A new, unused name ``.NAME.tmp-PID.HOST-XXXX`` next to ``path`` for a file written then renamed over
    it: the same pattern as ``make_temp_dir``, so ``clean_stale_temp_dirs`` removes it when its writer was
    killed."""
    path = Path(path)
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.tmp-{os.getpid()}.{_host_tag()}-", dir=path.parent)
    os.close(handle)
    return Path(name)


def clean_stale_temp_dirs(parent: str | Path) -> list[Path]:
    """Delete the temporary siblings in ``parent`` (directories from ``make_temp_dir``, files from
    ``temp_file_path``) whose creating process is dead; returns what was removed.

    Only names made by those two count, and only those from this host: another machine's pids (a shared file
    system), live processes and symlinks are left alone.
    """
    parent = Path(parent)
    removed = []
    host = _host_tag()
    try:
        entries = list(parent.iterdir())
    except OSError:
        return removed
    for entry in entries:
        match = _TEMP_NAME.match(entry.name)
        if not match or match["host"] != host or pid_alive(int(match["pid"])):
            continue
        if entry.is_symlink():
            continue
        if entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
        elif entry.is_file():
            entry.unlink(missing_ok=True)
            removed.append(entry)
    return removed


def publish_permissions(directory: Path) -> None:
    """Give ``directory`` and everything in it the modes a plain ``mkdir`` / ``open`` would have under the
    umask: ``mkdtemp`` makes 0700 and some writers (safetensors) 0600. Symlinks are neither followed nor
    changed; an executable file keeps its execute bits."""
    mask = current_umask()
    os.chmod(directory, 0o777 & ~mask)
    for root, dirs, files in os.walk(directory):
        for name in dirs + files:
            path = os.path.join(root, name)
            mode = os.lstat(path).st_mode
            if stat.S_ISDIR(mode):
                os.chmod(path, 0o777 & ~mask)
            elif stat.S_ISREG(mode):
                executable = mode & stat.S_IXUSR
                os.chmod(path, (0o777 if executable else 0o666) & ~mask)


def replace_dir(tmp: Path, out_dir: Path) -> None:
    """Move the finished directory ``tmp`` to ``out_dir``, replacing an existing one only at the very end."""
    if out_dir.exists():
        old = make_temp_dir(out_dir.parent, out_dir.name, "old")
        os.replace(out_dir, old / "dir")
        os.replace(tmp, out_dir)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, out_dir)


def write_dir_atomically(out_dir: str | Path, fill: Callable[[Path], None]) -> Path:
    """Create ``out_dir`` by calling ``fill(tmp_dir)`` on a temporary sibling and renaming it into place.

    An existing ``out_dir`` is replaced only after ``fill`` succeeded; on failure nothing is left behind.
    Callers decide beforehand whether replacing is allowed (``leanbert.outdir.check_out_dir``).
    """
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = make_temp_dir(out_dir.parent, out_dir.name)
    try:
        fill(tmp)
        publish_permissions(tmp)
        replace_dir(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


def write_text_atomically(path: str | Path, text: str) -> None:
    """Write UTF-8 ``text`` to a temporary sibling, then rename it over ``path``."""
    path = Path(path)
    tmp = temp_file_path(path)
    try:
        tmp.write_text(text, encoding="utf-8")
        os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp makes 0600; a plain open() would not
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_json_atomically(path: str | Path, data: Any) -> None:
    write_text_atomically(path, json.dumps(data, indent=2, sort_keys=False) + "\n")
