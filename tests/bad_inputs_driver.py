"""Run many ``leanbert`` command lines in ONE process (imports cost seconds each) and record, per case, the exit
status, stdout/stderr, whether an exception escaped, and every file that appeared, vanished or changed anywhere
under the watched root. ``sys.exit(main())`` is all ``leanbert`` adds around ``main``, so this is the CLI.

usage: python bad_inputs_driver.py CASES.json RESULTS.json   (CASES: [{"name", "argv", "cwd", "root"}])
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import stat
import sys
import traceback


def snapshot(root: str) -> dict[str, str]:
    """path -> content hash (regular files) or kind (directories, FIFOs, links: never opened)."""
    found = {}
    for parent, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(parent, name)
            mode = os.lstat(path).st_mode
            if stat.S_ISREG(mode):
                try:
                    with open(path, "rb") as f:
                        found[path] = hashlib.sha256(f.read()).hexdigest()
                except OSError:
                    found[path] = "unreadable"
            else:
                found[path] = "dir" if stat.S_ISDIR(mode) else "link" if stat.S_ISLNK(mode) else "special"
    return found


def run_case(case: dict) -> dict:
    from leanbert.cli import main

    before = snapshot(case["root"])
    out, err = io.StringIO(), io.StringIO()
    escaped = False
    old_cwd = os.getcwd()
    os.chdir(case["cwd"])
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                rc = int(main(case["argv"]) or 0)
            except SystemExit as exit_:
                rc = exit_.code if isinstance(exit_.code, int) else 1
            except BaseException:  # noqa: BLE001 - exactly what the test looks for
                escaped = True
                traceback.print_exc()
                rc = 1
    finally:
        os.chdir(old_cwd)
    after = snapshot(case["root"])
    changed = sorted(p for p in set(before) | set(after) if before.get(p) != after.get(p))
    return {"name": case["name"], "rc": rc, "stdout": out.getvalue(), "stderr": err.getvalue(),
            "escaped": escaped, "changed": changed}


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8") as f:
        cases = json.load(f)
    results = [run_case(case) for case in cases]
    with open(sys.argv[2], "w", encoding="utf-8") as f:
        json.dump(results, f)
