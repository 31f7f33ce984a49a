"""The resume rules of a run directory (a job filled in place and continued with ``--resume``): a resumed run
is the same experiment (only budget, logging and implementation settings may change), it neither repeats
finished steps nor shortens a run, and its resolved config lives in ``config.yaml``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from leanbert.config import ConfigError
from leanbert.data.config import DataConfig
from leanbert.errors import UserError
from leanbert.train.checkpoint import checkpoints_dir, latest_checkpoint
from leanbert.train.config import resumable_keys

CONFIG_FILE = "config.yaml"


def _diff(old: Any, new: Any, prefix: str = "") -> list[tuple[str, Any, Any]]:
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in sorted(set(old) | set(new)):
            out += _diff(old.get(key), new.get(key), f"{prefix}{key}.")
        return out
    return [] if old == new else [(prefix.rstrip("."), old, new)]


def check_resume_compatible(saved: dict[str, Any], current: dict[str, Any], source: Path) -> list[str]:
    """Refuse changes that would make a resumed run differ from the interrupted one (only the train.* settings
    tagged budget, logging or impl may change); returns the allowed changes."""
    if isinstance(saved.get("data"), dict):  # a run written before data.features compares as today's
        saved = {**saved, "data": DataConfig.upgrade_legacy(saved["data"])}
    changes = _diff(saved, current)
    allowed = [f"train.{k}" for k in resumable_keys()]
    bad = [(k, a, b) for k, a, b in changes if k not in allowed]
    if bad:
        listed = "; ".join(f"{k}: {a!r} -> {b!r}" for k, a, b in bad[:5])
        raise ConfigError(f"cannot --resume with a different experiment than {source} ({listed}). Only "
                          f"{', '.join(allowed)} may change on resume; start a new --out for a new experiment")
    return [f"{k}: {a!r} -> {b!r}" for k, a, b in changes]


def check_not_a_run(run_dir: Path) -> None:
    """Without --resume, a directory that already holds a run's checkpoints or metrics is refused."""
    if checkpoints_dir(run_dir).exists() or (run_dir / "metrics.jsonl").exists():
        raise UserError(f"{run_dir} already holds a run; pass --resume to continue it, or choose a new --out")


def check_resume_steps(run_dir: Path, max_steps: int) -> None:
    """Refuse a resume that would append duplicate lines to a finished run, or shorten a run so that its
    config.yaml disagrees with its model (train.max_steps below the steps already done)."""
    latest = latest_checkpoint(run_dir)
    if latest is None or latest.step < max_steps:
        return
    if latest.step > max_steps:
        raise ConfigError(f"train.max_steps={max_steps} is below the {latest.step} steps {run_dir} has already "
                          f"done; a run cannot be shortened: pass train.max_steps > {latest.step} to continue it")
    if (run_dir / "model").exists():
        raise UserError(f"{run_dir} already finished ({latest.step} of train.max_steps={max_steps} steps, "
                        f"model/ saved); pass a larger train.max_steps to train further")
