"""Temporary siblings left by a killed process are removed by the next write into the same parent, and only
those: a live process's temp dir, another host's, and anything not named like ours are kept."""

from __future__ import annotations

import os
import subprocess
import sys

from leanbert.atomic import _host_tag, clean_stale_temp_dirs, make_temp_dir, write_dir_atomically


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_stale_temp_dirs_of_dead_processes_are_cleaned(tmp_path):
    host = _host_tag()
    dead = dead_pid()
    stale = [tmp_path / f".out.tmp-{dead}.{host}-ab12", tmp_path / f".out.old-{dead}.{host}-cd34",
             tmp_path / f".finetune.work-{dead}.{host}-ef56"]
    kept = [tmp_path / f".out.tmp-{os.getpid()}.{host}-live",  # this process: alive
            tmp_path / f".out.tmp-{dead}.{'0' * 8 if host != '0' * 8 else '1' * 8}-other",  # another host
            tmp_path / ".out.tmp-legacy123", tmp_path / "results"]  # not ours to judge
    for path in stale + kept:
        path.mkdir()
        (path / "partial.bin").write_bytes(b"x")
    write_dir_atomically(tmp_path / "out", lambda tmp: (tmp / "a.txt").write_text("done"))
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted([p.name for p in kept] + ["out"])


def test_make_temp_dir_names_are_recognized_and_kept_while_alive(tmp_path):
    mine = make_temp_dir(tmp_path, "data", "work")
    assert mine.name.startswith(f".data.work-{os.getpid()}.")
    assert clean_stale_temp_dirs(tmp_path) == [] and mine.is_dir()


def test_stale_temp_files_of_dead_writers_are_cleaned_and_live_ones_kept(tmp_path):
    from leanbert.atomic import temp_file_path, write_text_atomically

    dead = dead_pid()
    stale = tmp_path / f".preds.tsv.tmp-{dead}.{_host_tag()}-ab12"
    stale.write_text("half a file")
    live = temp_file_path(tmp_path / "other.tsv")  # this process's: kept
    assert live.name.startswith(f".other.tsv.tmp-{os.getpid()}.{_host_tag()}-")
    assert clean_stale_temp_dirs(tmp_path) == [stale] and live.exists() and not stale.exists()
    write_text_atomically(tmp_path / "done.txt", "ok")
    assert (tmp_path / "done.txt").read_text() == "ok"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, "done.txt"])
