"""Atomic training checkpoints: ``RUN_DIR/checkpoints/step-N/``.

A checkpoint holds everything a resumed run needs to continue exactly as if never stopped:

    objective.safetensors   every network of the objective (tied tensors stored once, aliases in manifest)
                            except its frozen modules (a teacher): the manifest names each one's source and
                            sha256 instead, and resume refuses a different one (train/frozen.py)
    optimizer.{json,safetensors}  optimizer state (moments as tensors; structure and scalars as JSON)
    trainer.{json,safetensors}    step, tokens, elapsed time, schedule position, and per rank: RNG states
                                  (torch CPU/CUDA as uint8 tensors, Python ``random``, numpy) and data position
    manifest.json           written last: format, step and the size of every file

Everything is written into a hidden temporary directory that is renamed to ``step-N`` at the end, so a process
killed mid-write leaves only a ``.step-N.tmp-*`` directory, which is ignored and cleaned up. ``latest`` also
checks the manifest's file sizes, so a directory that merely looks like a checkpoint is skipped. No pickle:
safetensors + JSON only.
"""

from __future__ import annotations

import json
import random
import re
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save_file

from leanbert.atomic import write_dir_atomically
from leanbert.errors import UserError
from leanbert.paths import is_plain_name
from leanbert.safe_io import read_json_object, read_safetensors
from leanbert.train.frozen import FrozenIdentity
from leanbert.train.state_io import load_state, save_state

FORMAT = "leanbert-checkpoint"
FORMAT_VERSION = 1
CHECKPOINTS = "checkpoints"
_NAME = re.compile(r"^step-(\d+)$")


def checkpoints_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / CHECKPOINTS


# ---------------------------------------------------------------------------------------------------------
# RNG states


def rng_state() -> dict[str, Any]:
    """This process's random states: torch CPU and CUDA generators, Python ``random``, numpy's global one."""
    return {
        "torch": torch.get_rng_state(),  # (N,) uint8
        "cuda": [s for s in torch.cuda.get_rng_state_all()] if torch.cuda.is_available() else [],
        "python": random.getstate(),
        "numpy": np.random.get_state(),
    }


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    np.random.set_state(state["numpy"])


# ---------------------------------------------------------------------------------------------------------
# Model weights with tied tensors


def _storage_key(t: torch.Tensor) -> tuple:
    return (t.device, t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape), tuple(t.stride()))


def split_tied(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(unique tensors, alias name -> stored name): safetensors refuses tensors that share memory."""
    unique: dict[str, torch.Tensor] = {}
    aliases: dict[str, str] = {}
    seen: dict[tuple, str] = {}
    for name, tensor in state.items():
        key = _storage_key(tensor)
        if key in seen:
            aliases[name] = seen[key]
        else:
            seen[key] = name
            unique[name] = tensor.detach().cpu().contiguous()
    return unique, aliases


# ---------------------------------------------------------------------------------------------------------
# Save / find / load


@dataclass
class Checkpoint:
    path: Path
    step: int


def _without_frozen(state: dict[str, torch.Tensor], frozen: Sequence[FrozenIdentity]) -> dict[str, torch.Tensor]:
    prefixes = tuple(f.prefix for f in frozen)
    return {k: v for k, v in state.items() if not (prefixes and k.startswith(prefixes))}


def save_checkpoint(run_dir: str | Path, step: int, objective: torch.nn.Module,
                    optimizer: torch.optim.Optimizer, trainer_state: dict[str, Any], keep: int,
                    frozen: Sequence[FrozenIdentity] = ()) -> Path:
    """Write ``checkpoints/step-{step}`` atomically, then delete all but the newest ``keep`` checkpoints.

    ``trainer_state`` is any tree ``state_io`` can store (step, tokens, schedule, per-rank RNG and data).
    ``frozen`` (from ``frozen.freeze``): modules whose tensors are left out; their identities are recorded.
    Call on rank 0 only.
    """
    target = checkpoints_dir(run_dir) / f"step-{step}"
    unique, aliases = split_tied(_without_frozen(objective.state_dict(), frozen))

    def fill(tmp: Path) -> None:
        save_file(unique, str(tmp / "objective.safetensors"), metadata={"format": FORMAT})
        files = ["objective.safetensors"]
        files += save_state(tmp, "optimizer", optimizer.state_dict())
        files += save_state(tmp, "trainer", trainer_state)
        manifest = {"format": FORMAT, "format_version": FORMAT_VERSION, "step": step, "aliases": aliases,
                    "files": {name: (tmp / name).stat().st_size for name in files},
                    "frozen": {f.name: {"prefix": f.prefix, "source": f.source, "fingerprint": f.fingerprint}
                               for f in frozen}}
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")

    write_dir_atomically(target, fill)
    rotate(run_dir, keep)
    return target


def _is_complete(path: Path, step: int) -> bool:
    try:
        manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
        if manifest.get("format") != FORMAT or manifest.get("step") != step:
            return False
        # the names come from a file on disk: only plain names inside this checkpoint count
        return all(is_plain_name(name) and (path / name).stat().st_size == size
                   for name, size in manifest["files"].items())
    except (OSError, ValueError, KeyError, AttributeError):
        return False


def list_checkpoints(run_dir: str | Path, complete_only: bool = True) -> list[Checkpoint]:
    """Checkpoints in ``run_dir`` sorted by step (oldest first); incomplete ones left out by default."""
    root = checkpoints_dir(run_dir)
    if not root.is_dir():
        return []
    found = []
    for path in root.iterdir():
        match = _NAME.match(path.name)
        if match and path.is_dir() and (not complete_only or _is_complete(path, int(match.group(1)))):
            found.append(Checkpoint(path, int(match.group(1))))
    return sorted(found, key=lambda c: c.step)


def latest_checkpoint(run_dir: str | Path) -> Checkpoint | None:
    found = list_checkpoints(run_dir)
    return found[-1] if found else None


def _remove_dir(path: Path) -> None:
    """Rename first, so a kill during the deletion never leaves a half-deleted ``step-N``."""
    trash = Path(tempfile.mkdtemp(prefix=".trash-", dir=path.parent))
    path.rename(trash / path.name)
    shutil.rmtree(trash, ignore_errors=True)


def rotate(run_dir: str | Path, keep: int) -> None:
    """Keep the newest ``keep`` complete checkpoints; remove the older ones."""
    complete = list_checkpoints(run_dir)
    for ckpt in complete[:-keep] if keep > 0 else []:
        _remove_dir(ckpt.path)


def clean_stale(run_dir: str | Path) -> list[str]:
    """Remove leftovers of killed writes (``.step-*.tmp-*``, ``.trash-*``) and incomplete ``step-N`` dirs.
    Call on rank 0 before training starts; returns what was removed."""
    root = checkpoints_dir(run_dir)
    if not root.is_dir():
        return []
    removed = []
    complete = {c.path.name for c in list_checkpoints(run_dir)}
    for path in root.iterdir():
        stale_tmp = path.name.startswith((".step-", ".trash-"))
        broken = _NAME.match(path.name) is not None and path.name not in complete
        if path.is_dir() and (stale_tmp or broken):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path.name)
    return removed


def _check_same_frozen(path: Path, saved: Any, frozen: Sequence[FrozenIdentity]) -> None:
    """Refuse a checkpoint written with other frozen modules (another teacher): its weights were trained
    against that one, so continuing with this one would silently change the run."""
    saved = saved if isinstance(saved, dict) else {}
    if sorted(saved) != sorted(f.name for f in frozen):
        raise UserError(f"{path}: written with frozen modules {sorted(saved)} but this run has "
                        f"{sorted(f.name for f in frozen)}; resume with the same objective")
    for f in frozen:
        then = saved[f.name]
        if not isinstance(then, dict) or then.get("fingerprint") != f.fingerprint:
            before = (f"{then.get('source')} (sha256 {str(then.get('fingerprint'))[:16]})" if isinstance(then, dict)
                      else repr(then))
            raise UserError(f"{path} was written with {f.name} {before} but this run's {f.name} is "
                            f"{f.describe()}; resume with the same {f.name} or start a new run")


def load_checkpoint(path: str | Path, objective: torch.nn.Module, optimizer: torch.optim.Optimizer | None,
                    frozen: Sequence[FrozenIdentity] = ()) -> dict[str, Any]:
    """Restore weights (and optimizer state) from ``path``; returns the trainer state tree. ``frozen`` are the
    run's frozen modules (``frozen.freeze``): they must be the ones the checkpoint was written with, and keep
    their own weights."""
    path = Path(path)
    try:
        manifest = read_json_object(path / "manifest.json", "a checkpoint manifest")
    except UserError as err:
        raise UserError(f"{path}: not a complete checkpoint ({err})") from None
    if manifest.get("format_version", 0) > FORMAT_VERSION:
        raise UserError(f"{path}: checkpoint format_version {manifest['format_version']} is newer than this "
                        f"leanbert understands ({FORMAT_VERSION})")
    _check_same_frozen(path, manifest.get("frozen", {}), frozen)
    weights = path / "objective.safetensors"
    state = read_safetensors(weights)
    for alias, target in manifest.get("aliases", {}).items():
        if target not in state:
            raise UserError(f"{path / 'manifest.json'}: alias {alias!r} names {target!r}, which "
                            f"{weights.name} does not hold; the checkpoint is corrupt")
        state[alias] = state[target]
    expected = _without_frozen(objective.state_dict(), frozen)
    missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if missing or unexpected:
        raise UserError(f"{weights}: does not match this run's model/objective (missing {missing[:3]}, "
                        f"unexpected {unexpected[:3]}); was the config changed?")
    for name, tensor in state.items():
        if tensor.shape != expected[name].shape:
            raise UserError(f"{weights}: {name} has shape {tuple(tensor.shape)}, this run expects "
                            f"{tuple(expected[name].shape)}; was the config changed?")
    # strict above (every non-frozen tensor present, nothing unexpected); the frozen ones keep their weights
    objective.load_state_dict(state, strict=not frozen)
    if optimizer is not None:
        try:
            optimizer.load_state_dict(load_state(path, "optimizer"))
        except (ValueError, KeyError) as err:
            raise UserError(f"{path}: optimizer state does not match this run ({err}); was train.optimizer "
                            f"changed?") from None
    return load_state(path, "trainer")
