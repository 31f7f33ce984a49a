"""Path safety and plain-words descriptions of what is wrong with a path.

Names read from files we did not write ourselves (a dataset manifest, a config.json, a checkpoint index) must
stay inside their directory: ``contained_file`` accepts only a plain file name and checks the resolved path.
``describe_os_error`` is the one place an ``OSError`` becomes a sentence naming the path and the errno's
meaning; ``why_not_regular`` says why a path that is not a readable regular file cannot be read (missing,
a directory, a FIFO, a device, a symlink loop) instead of calling all of them "no such file".
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from leanbert.errors import UserError


def describe_os_error(err: OSError) -> str:
    """``PATH: meaning of errno`` (e.g. ``out: device or resource busy``); the path part when there is one."""
    if err.errno is not None and err.errno in errno.errorcode:
        meaning = os.strerror(err.errno)
    else:
        meaning = err.strerror or str(err) or type(err).__name__
    meaning = meaning[:1].lower() + meaning[1:]
    names = [str(n) for n in (err.filename, err.filename2) if n is not None]
    return f"{' -> '.join(names)}: {meaning}" if names else meaning


def why_not_regular(path: str | Path) -> str | None:
    """None when ``path`` is a regular file (after symlinks); otherwise a short reason in plain words."""
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except OSError as err:
        if err.errno == errno.ELOOP:
            return "a symlink loop"
        if err.errno == errno.ENOENT:
            return "a broken symlink" if path.is_symlink() else "no such file or directory"
        return describe_os_error(err).rpartition(": ")[2]
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a directory, not a file"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe), not a regular file"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device, not a regular file"
    if stat.S_ISSOCK(mode):
        return "a socket, not a regular file"
    return "not a regular file"


def check_regular_file(path: str | Path, expected: str = "") -> Path:
    """``path`` if it is a regular file; otherwise a UserError naming it, the reason and ``expected``."""
    reason = why_not_regular(path)
    if reason is not None:
        raise UserError(f"{path}: {reason}" + (f" (expected {expected})" if expected else ""))
    return Path(path)


def is_plain_name(name: object) -> bool:
    """A single path component: no separators, not empty, not ``.``/``..``, no NUL byte."""
    return (isinstance(name, str) and name not in ("", ".", "..") and "/" not in name and "\\" not in name
            and "\x00" not in name and os.sep not in name and (os.altsep is None or os.altsep not in name))


def _resolved_inside(path: Path, directory: str | Path) -> bool:
    # realpath, not Path.resolve: it never raises on a symlink loop (that is reported by why_not_regular)
    return Path(os.path.realpath(path)).is_relative_to(os.path.realpath(directory))


def contained_file(directory: str | Path, name: object, source: str | Path) -> Path:
    """``directory / name`` for a ``name`` read from ``source`` (a manifest or index), refusing anything but a
    plain file name whose resolved path stays inside ``directory`` (no ``..``, no absolute path, no symlink
    out of it)."""
    if not is_plain_name(name):
        raise UserError(f"{source}: the file name {name!r} is not a plain file name inside {directory}; "
                        "the file was altered or is corrupt")
    path = Path(directory) / str(name)
    if not _resolved_inside(path, directory):
        raise UserError(f"{source}: {path} points outside {directory}; refusing to read it")
    return path


def hf_cache_blobs(directory: str | Path) -> Path:
    """The ``blobs`` folder a Hugging Face cache snapshot (``models--X/snapshots/REV``) links its files into, or
    ``directory`` itself when it is not such a snapshot: the cache's own content-addressed store is not "outside"
    the model the user named."""
    real = Path(os.path.realpath(directory))
    if real.parent.name == "snapshots" and real.parent.parent.name.startswith("models--"):
        return real.parent.parent / "blobs"
    return Path(directory)


def regular_file_inside(directory: str | Path, name: str) -> Path | None:
    """``directory / name`` when it is a regular file whose resolved path lies inside ``directory``; None when
    absent. A symlink out of the directory, or a special file, is refused: copying it would publish a file the
    user never meant to share (``tokenizer.json -> /etc/passwd``)."""
    path = Path(directory) / name
    if not os.path.lexists(path):
        return None
    if not (_resolved_inside(path, directory) or _resolved_inside(path, hf_cache_blobs(directory))):
        raise UserError(f"{path}: a symlink to {os.path.realpath(path)}, outside {directory}; "
                        "refusing to copy it")
    check_regular_file(path, "a regular file")
    return path
