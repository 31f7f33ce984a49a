"""Run-directory locks between real processes: the second fails at once naming the holder; a killed holder
releases the lock (the OS drops it), and a clean release leaves no lock file behind."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from leanbert.errors import UserError
from leanbert.run_lock import LOCK_NAME, lock_output, lock_run_dir

HOLDER = textwrap.dedent("""
    import sys
    from leanbert.run_lock import lock_run_dir
    lock = lock_run_dir(sys.argv[1], command="leanbert pretrain --out test")
    print("locked", flush=True)
    sys.stdin.read()  # hold until the parent closes our stdin (or kills us)
    lock.release()
""")


def start_holder(run_dir: Path) -> subprocess.Popen:
    child = subprocess.Popen([sys.executable, "-c", HOLDER, str(run_dir)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "locked"
    return child


def test_second_process_fails_at_once_naming_the_holder(tmp_path):
    run = tmp_path / "run"
    child = start_holder(run)
    try:
        with pytest.raises(UserError) as err:
            lock_run_dir(run)
        message = str(err.value)
        assert "\n" not in message and str(run) in message and f"pid {child.pid}" in message
        assert socket.gethostname() in message and "`leanbert pretrain --out test`" in message
    finally:
        child.stdin.close()
        assert child.wait(timeout=30) == 0
    assert not (run / LOCK_NAME).exists()  # a clean release removes the file
    with lock_run_dir(run, command="again"):
        pass


def test_a_killed_holder_releases_the_lock(tmp_path):
    run = tmp_path / "run"
    child = start_holder(run)
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=30)
    assert (run / LOCK_NAME).exists()  # the file stays, the lock does not
    lock = lock_run_dir(run, command="after the crash")
    try:
        assert "after the crash" in (run / LOCK_NAME).read_text()
    finally:
        lock.release()


def test_output_lock_sits_next_to_the_output(tmp_path):
    out = tmp_path / "ft"
    with lock_output(out, command="finetune"):
        assert (tmp_path / ".ft.lock").is_file() and not out.exists()
        with pytest.raises(UserError, match=f"output directory {out} is in use by pid {os.getpid()}"):
            lock_output(out)
    assert list(tmp_path.iterdir()) == []
