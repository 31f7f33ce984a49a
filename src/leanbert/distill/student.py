"""The student a distillation starts from, built next to its teacher (which fixes the tokenizer).

``student.init``:
* ``preset`` (default): a fresh encoder of shape ``student.preset`` (``tinybert-4l-312d``) with the ``model.*``
  overrides; vocabulary, token types, padding id and positions follow the teacher (they share a tokenizer).
* ``teacher-layers``: DistilBERT's initialisation (Sanh et al., 2019): the teacher's width, its embeddings,
  pooler and heads, and every ``student.keep_every``-th Transformer layer (teacher layers k, 2k, ..., N,
  counted from 1: the layers the ``uniform`` layer map then distils each student layer from).
* a model directory (a leanbert model, a general-distillation run or its ``model/``, a Hugging Face directory):
  its encoder, with new heads. Its tokenizer must be the teacher's: a different one is refused.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch

from leanbert.config import ConfigError
from leanbert.errors import UserError
from leanbert.finetune.source import load_source, resolve_model_dir
from leanbert.model.config import ModelConfig
from leanbert.model.model import LeanBertModel, with_heads
from leanbert.model_dir import check_model_fits, read_model_config, tokenizer_fingerprint
from leanbert.presets import model_config

INITS = ("preset", "teacher-layers")
# Fields a student must share with its teacher: they describe the tokenizer, not the network's shape.
TOKENIZER_FIELDS = ("vocab_size", "pad_token_id", "type_vocab_size")


def kept_teacher_layers(teacher_layers: int, keep_every: int) -> list[int]:
    """Teacher layers (from 1) that ``teacher-layers`` keeps: k, 2k, ..., N."""
    if keep_every < 1 or keep_every > teacher_layers or teacher_layers % keep_every:
        divisors = [k for k in range(1, teacher_layers + 1) if teacher_layers % k == 0]
        raise ConfigError(f"student.keep_every={keep_every} must divide the teacher's {teacher_layers} layers; "
                          f"choose one of {divisors}")
    return list(range(keep_every, teacher_layers + 1, keep_every))


def preset_student_config(preset: str, overrides: dict[str, Any], teacher: ModelConfig, heads: list[str],
                          num_labels: int) -> ModelConfig:
    """The ``preset`` shape with ``overrides`` (``model.*``); tokenizer fields and positions follow the
    teacher, and an override contradicting a tokenizer field is refused."""
    for name in TOKENIZER_FIELDS:
        if name in overrides and overrides[name] != getattr(teacher, name):
            raise ConfigError(f"model.{name}={overrides[name]!r} differs from the teacher's "
                              f"{getattr(teacher, name)!r}; the student shares the teacher's tokenizer")
    shared = {name: getattr(teacher, name) for name in TOKENIZER_FIELDS}
    shared["max_positions"] = teacher.max_positions
    return model_config(preset, **{**shared, **overrides, "heads": list(heads), "num_labels": num_labels})


def teacher_layers_config(teacher: ModelConfig, keep_every: int, heads: list[str], num_labels: int
                          ) -> ModelConfig:
    if teacher.sharing != "none":
        raise ConfigError(f"student.init=teacher-layers needs a teacher with separate layers; this one shares "
                          f"them (model.sharing={teacher.sharing}), so there are no layers to pick")
    layers = len(kept_teacher_layers(teacher.num_layers, keep_every))
    return dataclasses.replace(teacher, num_layers=layers, heads=list(heads), num_labels=num_labels)


def copy_teacher_layers(student: LeanBertModel, teacher: LeanBertModel, keep_every: int) -> None:
    """Copy the teacher's embeddings, pooler, matching heads and kept layers into ``student`` (in place)."""
    kept = kept_teacher_layers(teacher.config.num_layers, keep_every)
    source = teacher.state_dict()
    target = student.state_dict()
    state = {}
    for name, tensor in target.items():
        parts = name.split(".")
        if name.startswith(("encoder.attention.", "encoder.ffn.")):
            parts[2] = str(kept[int(parts[2])] - 1)  # student layer m (from 0) <- teacher layer kept[m]
        origin = ".".join(parts)
        found = source.get(origin)
        state[name] = found.clone() if found is not None and found.shape == tensor.shape else tensor
    student.load_state_dict(state, strict=True)


def check_same_tokenizer(teacher_dir: Path, student_dir: Path, teacher: ModelConfig, student: ModelConfig
                         ) -> None:
    """Refuse a student whose tokenizer is not the teacher's (the ids would mean different words)."""
    for name in TOKENIZER_FIELDS:
        if getattr(student, name) != getattr(teacher, name):
            raise UserError(f"student {student_dir} has {name}={getattr(student, name)} but the teacher "
                            f"{teacher_dir} has {getattr(teacher, name)}: they must share one tokenizer")
    theirs, ours = tokenizer_fingerprint(teacher_dir), tokenizer_fingerprint(student_dir)
    if theirs is not None and ours is not None and theirs != ours:
        raise UserError(f"student {student_dir / 'tokenizer.json'} is a different tokenizer from the teacher's "
                        f"{teacher_dir / 'tokenizer.json'}; distillation needs one tokenizer for both")


def is_model_init(init: str) -> bool:
    return init not in INITS


def build_student(init: str, *, teacher: LeanBertModel, teacher_dir: Path, heads: list[str], num_labels: int,
                  preset: str, overrides: dict[str, Any], keep_every: int, seed: int, work: Path,
                  dropout: float | None = None, log=print) -> LeanBertModel:
    """The student for ``student.init`` (module docstring), seeded by ``seed``, on the CPU."""
    if init == "preset":
        config = preset_student_config(preset, overrides, teacher.config, heads, num_labels)
        if dropout is not None:
            config = dataclasses.replace(config, hidden_dropout=dropout, attention_dropout=dropout)
        check_model_fits(config, training=True, source="the student (student.preset and model.*)")
        torch.manual_seed(seed)
        return LeanBertModel(config)
    if init == "teacher-layers":
        config = teacher_layers_config(teacher.config, keep_every, heads, num_labels)
        if dropout is not None:
            config = dataclasses.replace(config, hidden_dropout=dropout, attention_dropout=dropout)
        check_model_fits(config, training=True, source="the student (student.init=teacher-layers)")
        torch.manual_seed(seed)
        student = LeanBertModel(config)
        copy_teacher_layers(student, teacher, keep_every)
        return student
    student_dir = student_model_dir(init, work, log)
    source = load_source(student_dir)
    check_same_tokenizer(teacher_dir, student_dir, teacher.config, source.config)
    return with_heads(source, heads, seed, dropout, num_labels=num_labels)


def student_model_dir(init: str, work: Path, log=print) -> Path:
    """``student.init=PATH`` as a leanbert model directory (a Hugging Face one is imported under ``work``)."""
    if not Path(init).is_dir():
        raise UserError(f"student.init={init!r}: not one of {', '.join(INITS)} and not a model directory")
    return resolve_model_dir(init, work / "student", log=log)


def student_config(init: str, *, teacher: ModelConfig, heads: list[str], num_labels: int, preset: str,
                   overrides: dict[str, Any], keep_every: int, work: Path, log=print) -> ModelConfig:
    """The student's config without building its weights (``--print-config``, layer maps)."""
    if init == "preset":
        return preset_student_config(preset, overrides, teacher, heads, num_labels)
    if init == "teacher-layers":
        return teacher_layers_config(teacher, keep_every, heads, num_labels)
    config, _ = read_model_config(student_model_dir(init, work, log))
    return dataclasses.replace(config, heads=list(heads), num_labels=num_labels)
