"""Where fine-tuning starts: the MODEL argument -> a leanbert model directory, and a classifier model from it.

MODEL may be
* a leanbert model directory (``config.json`` with ``"format": "leanbert-model"``);
* a pretraining run directory or its ``model/`` folder: ``model/roles.json`` names the kept network (the
  objective's ``ObjectiveSpec.kept``; ELECTRA: ``model/discriminator``, as in the paper, not the generator);
  runs written before roles.json are searched in ``_SUBDIRS``;
* a local Hugging Face BERT / ALBERT / ELECTRA directory (``config.json`` with ``model_type``), imported on the
  fly into a temporary directory (nothing is downloaded).

The task model keeps every encoder weight (pooler included) and drops the pretraining heads (MLM, NSP/SOP,
replaced-token detection); the task type's head (``classifier``, ``span``, ...) is freshly initialised from
the run's seed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from leanbert.errors import UserError
from leanbert.interop.hf import import_from_hf
from leanbert.model.config import ModelConfig
from leanbert.model.model import LeanBertModel, config_with_heads, with_heads
from leanbert.model_dir import CONFIG_NAME, FORMAT, ROLES_FILE, load_model
from leanbert.objectives import OBJECTIVES
from leanbert.safe_io import read_json_object


def _registered_kept_subdirs() -> tuple[str, ...]:
    """Where a run without roles.json (written before it existed) keeps its network: RUN/model/<role> for each
    registered objective's kept role other than "model", then RUN/model, then a bare <role> folder."""
    roles = list(dict.fromkeys(spec.kept for spec in OBJECTIVES.values() if spec.kept != "model"))
    return (*(f"model/{role}" for role in roles), "model", *roles)


def _kept_subdirs(model: Path) -> tuple[str, ...]:
    """The kept network's folder as roles.json names it (``model/roles.json`` of a run, or ``roles.json`` of
    its model folder), else the old search list."""
    for prefix in ("model", "."):
        path = model / prefix / ROLES_FILE
        if path.is_file():
            folder = read_json_object(path, "a run's list of saved roles").get("path")
            if not isinstance(folder, str) or Path(folder).is_absolute() or ".." in Path(folder).parts:
                raise UserError(f"{path}: \"path\" must be a folder inside {path.parent}, got {folder!r}")
            return ((Path(prefix) / folder).as_posix(),)
    return _registered_kept_subdirs()


def _config_kind(directory: Path) -> str | None:
    """"leanbert", "hf" or None (no config.json; one that cannot be read is a UserError)."""
    path = directory / CONFIG_NAME
    if not path.exists() and not path.is_symlink():
        return None
    meta = read_json_object(path, "a leanbert or Hugging Face model config")
    if meta.get("format") == FORMAT:
        return "leanbert"
    if "model_type" in meta:
        return "hf"
    raise UserError(f"{path}: neither a leanbert model config (\"format\": \"{FORMAT}\") nor a Hugging Face "
                    "config (\"model_type\")")


def resolve_model_dir(model: str | Path, tmp_dir: Path, log=print) -> Path:
    """A leanbert model directory for MODEL (see the module docstring); HF models are imported under
    ``tmp_dir`` once (a second call with the same ``tmp_dir`` reuses the import). ``log`` tells the user which
    directory was chosen when it is not MODEL itself."""
    model = Path(model)
    if not model.is_dir():
        raise UserError(f"{model}: no such directory (expected a leanbert model directory, a pretraining run, "
                        "or a local Hugging Face BERT/ALBERT/ELECTRA directory)")
    kind = _config_kind(model)
    chosen = model
    if kind is None:
        for sub in _kept_subdirs(model):
            kind = _config_kind(model / sub)
            if kind is not None:
                chosen = model / sub
                log(f"using {chosen}")
                break
    if kind is None:
        raise UserError(f"{model}: no {CONFIG_NAME} here or in {', '.join(_kept_subdirs(model))} (expected a leanbert model "
                        "directory, a pretraining run, or a Hugging Face model directory)")
    if kind == "hf":
        imported = tmp_dir / "imported"
        if imported.is_dir():  # this run imported it already (tmp_dir is the caller's per-run scratch;
            return imported    # the import publishes atomically, so a present folder is complete)
        log(f"importing the Hugging Face model {chosen}")
        return import_from_hf(chosen, imported)
    return chosen


def task_config(config: ModelConfig, head: str, head_options: dict[str, Any], dropout: float | None = None
                ) -> ModelConfig:
    """``config`` with only the task head ``head`` and its options (``num_labels``); ``dropout`` (if given)
    replaces the hidden/attention dropout."""
    return config_with_heads(config, [head], dropout, **head_options)


def classifier_config(config: ModelConfig, num_labels: int, dropout: float | None = None) -> ModelConfig:
    """``config`` with only a ``classifier`` head (``num_labels``; 1 = regression)."""
    return task_config(config, "classifier", {"num_labels": num_labels}, dropout)


def classifier_from(source: LeanBertModel, num_labels: int, seed: int, dropout: float | None = None
                    ) -> LeanBertModel:
    """A model with only a fresh ``classifier`` head on ``source``'s encoder; ``seed`` initialises the head."""
    return with_heads(source, ["classifier"], seed, dropout, num_labels=num_labels)


def load_source(model_dir: Path) -> LeanBertModel:
    """The model to start from, on the CPU."""
    return load_model(model_dir, map_location="cpu")
