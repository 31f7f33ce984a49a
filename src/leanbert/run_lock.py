"""One process per run directory: an OS file lock (``fcntl.flock``) held for the whole run.

The lock file records who holds it (pid, host, command, start time), so a second process on the same
``--out`` fails at once with a one-line error naming the holder. The operating system releases the lock when
the holder exits or is killed, so a crash never leaves a run locked. The file is removed on a clean release;
a lock file left by a killed process is simply taken over (the lock, not the file, is what counts).

Pretraining locks ``RUN_DIR/.leanbert-lock``; a command whose output appears only at the end (renamed into
place) locks ``PARENT/.NAME.lock`` next to it instead (``lock_output``).
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

from leanbert.errors import UserError

LOCK_NAME = ".leanbert-lock"


def _holder_text(path: Path) -> str:
    """'pid 123 on host, `leanbert pretrain`, started 2026-01-01 12:00:00' from a lock file, if readable."""
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
        return (f"pid {info['pid']} on {info['host']} (`{info['command']}`, started {info['started']})")
    except (OSError, ValueError, KeyError, TypeError):
        return "another process (it has not written its details yet)"


class RunLock:
    """An exclusive lock on ``path``; use as a context manager or call ``release()``."""

    def __init__(self, path: str | Path, command: str, what: str):
        self.path = Path(path)
        self.command = command
        self.what = what  # the locked thing, for the error message
        self.fd: int | None = None
        self.created_dir = False

    def acquire(self) -> RunLock:
        self.created_dir = not self.path.parent.exists()  # a run that fails early leaves no empty directory
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise UserError(f"{self.what} is in use by {_holder_text(self.path)}; wait for it to finish or "
                                f"choose another directory") from None
            # the previous holder may have removed the file between our open and our lock: lock the live one
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        self.fd = fd
        self._write_holder()
        return self

    def _write_holder(self) -> None:
        info: dict[str, Any] = {"pid": os.getpid(), "host": socket.gethostname(), "command": self.command,
                                "started": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
        data = (json.dumps(info) + "\n").encode("utf-8")
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, data, 0)

    def release(self) -> None:
        if self.fd is None:
            return
        try:
            os.unlink(self.path)  # while still holding the lock, so nobody locks a file about to vanish
        except OSError:
            pass
        if self.created_dir:
            try:
                self.path.parent.rmdir()  # only succeeds when the run wrote nothing into it
            except OSError:
                pass
        os.close(self.fd)  # closing releases the flock
        self.fd = None

    def __enter__(self) -> RunLock:
        return self if self.fd is not None else self.acquire()  # lock_run_dir hands it over held

    def __exit__(self, *exc) -> None:
        self.release()


def _command_line() -> str:
    return " ".join(["leanbert", *sys.argv[1:]])[:200] if sys.argv else "leanbert"


def lock_run_dir(run_dir: str | Path, command: str | None = None) -> RunLock:
    """Lock ``RUN_DIR/.leanbert-lock`` (creating RUN_DIR); raises ``UserError`` naming the holder if taken."""
    run_dir = Path(run_dir)
    return RunLock(run_dir / LOCK_NAME, command or _command_line(), f"run directory {run_dir}").acquire()


def lock_output(out_dir: str | Path, command: str | None = None) -> RunLock:
    """Lock ``PARENT/.NAME.lock`` for an output directory that only appears (by rename) when complete."""
    out_dir = Path(out_dir)
    return RunLock(out_dir.parent / f".{out_dir.name}.lock", command or _command_line(),
                   f"output directory {out_dir}").acquire()
