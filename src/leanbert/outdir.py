"""The one output policy of every command that writes a directory (never lose a user's work), and of those
that write a single file (``check_out_file``).

* ``--out`` may be new or an empty directory. An existing non-empty one is refused unless ``--overwrite``,
  and ``--overwrite`` only replaces a directory that the same command wrote before: each output carries a
  marker file (``MARKER``) naming the command that wrote it.
* Never replaced, with or without ``--overwrite``: a file, an input, a parent or child of an input, the
  current directory or one of its parents.
* The output is built in a temporary sibling and renamed into place (``atomic.write_dir_atomically``), with
  the marker written inside, so it appears complete with its marker or not at all.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path

from leanbert.atomic import clean_stale_temp_dirs, write_dir_atomically
from leanbert.errors import UserError
from leanbert.run_lock import LOCK_NAME, RunLock, lock_run_dir

MARKER = ".leanbert-output.json"

# kind (the command) -> what its output is called in messages
KINDS = {
    "tokenizer": "a tokenizer directory",
    "prepare": "a prepared dataset",
    "pretrain": "a pretraining run",
    "finetune": "a fine-tuning output",
    "distill": "a distillation output (a general-stage run or a task-stage OUT_DIR)",
    "export": "a Hugging Face export",
    "import": "an imported model directory",
    "demo": "a demo output",
    "compare": "a method comparison",
}


def read_marker(directory: str | Path) -> str | None:
    """The kind recorded in ``directory``'s marker, or None when there is no readable marker."""
    try:
        data = json.loads((Path(directory) / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    kind = data.get("kind") if isinstance(data, dict) else None
    return kind if kind in KINDS else None


def write_marker(directory: str | Path, kind: str) -> None:
    """Record in ``directory`` that the ``kind`` command wrote it (deterministic bytes: no time, no host)."""
    _check_kind(kind)
    text = json.dumps({"written_by": f"leanbert {kind}", "kind": kind}) + "\n"
    (Path(directory) / MARKER).write_text(text, encoding="utf-8")


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown output kind {kind!r}; add it to leanbert.outdir.KINDS")


def _is_within(path: Path, ancestor: Path) -> bool:
    return path == ancestor or ancestor in path.parents


def _existing_inputs(inputs: Iterable[str | Path]) -> list[Path]:
    """Inputs that name something on disk, resolved (globs and missing paths are the readers' business)."""
    found = []
    for item in inputs:
        if item is None or str(item) == "":  # an unset path setting, not the current directory
            continue
        path = Path(item)
        if path.exists():
            found.append(path.resolve())
    return found


def check_out_dir(out_dir: str | Path, kind: str, inputs: Iterable[str | Path] = (),
                  overwrite: bool = False, flag: str = "--out") -> Path:
    """Refuse an ``out_dir`` that the ``kind`` command may not write (see the module docstring).

    ``inputs``: every file or directory the command reads. Returns ``out_dir`` as a Path. Raises
    ``UserError`` naming ``out_dir`` and what to do.
    """
    _check_kind(kind)
    out_dir = _check_location(Path(out_dir), inputs, flag)
    if not out_dir.exists() or not any(out_dir.iterdir()):
        return out_dir
    if not overwrite:
        raise UserError(f"{flag} {out_dir} already exists and is not empty; choose another directory or pass "
                        f"--overwrite to replace an earlier `leanbert {kind}` output")
    _check_same_kind(out_dir, kind, flag, "replace it with --overwrite")
    return out_dir


def open_run_dir(run_dir: str | Path, kind: str, inputs: Iterable[str | Path] = (), resume: bool = False,
                 lock: bool = True, flag: str = "--out") -> RunLock | None:
    """Check and lock a run directory that is filled in place and continued with ``--resume`` (pretraining).

    Allowed: a new or empty directory, or with ``resume`` one that the same command started (its marker; a
    run from before markers, with no marker at all, is accepted too). Never a file, an input, its parent or
    child, or the current directory. The lock (``run_lock``, taken when ``lock``) comes before the content
    checks, so a second process on a run being started is told who holds it. Returns the held lock.
    """
    _check_kind(kind)
    run_dir = _check_location(Path(run_dir), inputs, flag)
    held = lock_run_dir(run_dir) if lock else None
    try:
        if run_dir.exists() and any(p.name != LOCK_NAME for p in run_dir.iterdir()):
            if not resume:
                raise UserError(f"{flag} {run_dir} already exists and is not empty; choose a new directory")
            if (run_dir / MARKER).exists():
                _check_same_kind(run_dir, kind, flag, "continue it with --resume")
    except BaseException:
        if held is not None:
            held.release()
        raise
    return held


def _check_same_kind(out_dir: Path, kind: str, flag: str, action: str) -> None:
    found = read_marker(out_dir)
    if found != kind:
        what = f"it is {KINDS[found]} written by `leanbert {found}`" if found else f"no {MARKER} marker"
        raise UserError(f"{flag} {out_dir} is not {KINDS[kind]} written by `leanbert {kind}` ({what}); "
                        f"refusing to {action}")


def _check_location(out_dir: Path, inputs: Iterable[str | Path], flag: str) -> Path:
    """Refusals that no flag lifts: a file, the current directory or a parent, an input or its parent/child."""
    if out_dir.is_symlink() or (out_dir.exists() and not out_dir.is_dir()):
        raise UserError(f"{flag} {out_dir} exists and is not a directory; choose a new directory")
    target = out_dir.resolve()
    cwd = Path.cwd().resolve()
    if _is_within(cwd, target):
        raise UserError(f"{flag} {out_dir} is the current directory or one of its parents; choose a new "
                        f"directory")
    for source in _existing_inputs(inputs):
        if _is_within(target, source):
            raise UserError(f"{flag} {out_dir} is the input {source} or inside it; choose a directory "
                            f"outside the inputs")
        if _is_within(source, target):
            raise UserError(f"{flag} {out_dir} contains the input {source}; choose a directory outside the "
                            f"inputs")
    return out_dir


def marked_output(path: str | Path) -> tuple[Path, str | None] | None:
    """The nearest directory at or above ``path`` (resolved) that carries a ``MARKER``, with the kind it
    records (None for an unreadable marker); None when no directory up to the root has one."""
    for directory in (Path(path).resolve(), *Path(path).resolve().parents):
        if (directory / MARKER).is_file():
            return directory, read_marker(directory)
    return None


def check_out_file(out: str | Path, inputs: Iterable[str | Path] = (), overwrite: bool = False,
                   flag: str = "--out", part_of: str | None = None) -> Path:
    """The one policy of every command that writes a single file (``predict --out``, ``augment --out``,
    ``rare-words``' table), lifted by no flag except the last point:

    * a directory (or a link to one) is refused: a file name is expected;
    * never an input of the command or a file inside an input directory, compared as resolved paths (a symlink
      or ``..`` does not get around it);
    * never inside another command's output directory (the nearest parent with a ``MARKER``): that output would
      change under its owner, and its own ``--overwrite`` would delete the file. ``part_of`` names the kind
      whose output the file belongs in by design (``rare-words`` writes into its prepared dataset);
    * an existing file is replaced only with ``overwrite``.

    Temporary files that a killed writer left next to ``out`` are removed here (``clean_stale_temp_dirs``).
    Returns ``out`` as a Path; raises ``UserError`` naming ``out`` and what to do.
    """
    out = Path(out)
    if out.is_dir():
        raise UserError(f"{flag} {out}: is a directory; expected a file name")
    if part_of is not None:
        _check_kind(part_of)
    location = out.parent.resolve() / out.name  # the link itself when ``out`` is one: what gets replaced
    for source in _existing_inputs(inputs):
        for path in (location, out.resolve()):  # a link to an input is refused too: surely a mistake
            if _is_within(path, source):
                what = "is the input" if path == source else "lies inside the input"
                raise UserError(f"{flag} {out}: {what} {source}; write the output elsewhere")
    marked = marked_output(location.parent)
    if marked is not None and (part_of is None or marked[1] != part_of):
        directory, kind = marked
        owner = f"{KINDS[kind]} written by `leanbert {kind}`" if kind else f"an output with a {MARKER}"
        raise UserError(f"{flag} {out}: lies inside {directory}, {owner}; a file there would be lost or "
                        f"would damage it, so choose a path outside it")
    if (out.exists() or out.is_symlink()) and not overwrite:
        raise UserError(f"{flag} {out}: exists; pass --overwrite to replace it")
    if out.parent.is_dir():
        clean_stale_temp_dirs(out.parent)
    return out


def publish_dir(out_dir: str | Path, kind: str, fill: Callable[[Path], None],
                inputs: Iterable[str | Path] = (), overwrite: bool = False, flag: str = "--out") -> Path:
    """Check the policy, then write ``out_dir`` atomically with ``fill(tmp)`` plus the ``kind`` marker."""
    out_dir = check_out_dir(out_dir, kind, inputs, overwrite, flag)

    def fill_and_mark(tmp: Path) -> None:
        fill(tmp)
        write_marker(tmp, kind)

    return write_dir_atomically(out_dir, fill_and_mark)



def fresh_out_dir(out_dir: str | Path, kind: str, overwrite: bool = False) -> Path:
    """Check ``out_dir`` under the policy, empty an earlier output of the same ``kind`` (``--overwrite``), then
    create it with its marker: for jobs that write into their output as they go (the demo)."""
    out = check_out_dir(out_dir, kind, overwrite=overwrite)
    if out.exists() and any(out.iterdir()):
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    write_marker(out, kind)
    return out
