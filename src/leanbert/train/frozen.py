"""Frozen sub-modules of an objective (a distillation teacher) and the policy the training loop applies to them.

An objective declares them with ``frozen_modules() -> {name: FrozenModule(module, source)}``; each must be a
registered sub-module (an attribute), so it moves to the device with the objective. The loop then:

* sets ``requires_grad=False`` on their parameters and keeps them in eval mode (no dropout in the teacher)
  although it calls ``objective.train()``;
* leaves them out of the optimizer (``optim.parameter_groups``), so they never get an optimizer state;
* leaves their tensors out of checkpoints: a teacher can be as large as the student many times over and never
  changes. A checkpoint stores its identity instead (where it came from and a sha256 over its tensors), and
  resume refuses a checkpoint written with a different teacher.

The loop reads the declaration by duck typing (``getattr``): leanbert.train imports nothing from objectives.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class FrozenModule:
    """module: a sub-module of the objective that is never trained. source: where it came from (a model
    directory, a Hugging Face directory, ...), shown in messages and stored in checkpoints."""

    module: nn.Module
    source: str


@dataclass(frozen=True)
class FrozenIdentity:
    """A frozen module as a checkpoint records it: its state_dict prefix in the objective, source, content hash."""

    name: str
    prefix: str  # "teacher." when the module is ``objective.teacher``
    source: str
    fingerprint: str  # sha256 hex over its state_dict

    def describe(self) -> str:
        return f"{self.source} (sha256 {self.fingerprint[:16]})"


def module_fingerprint(module: nn.Module) -> str:
    """sha256 over the module's state_dict in sorted name order: each name, dtype and shape, then the raw bytes.
    Names are relative to the module, so the fingerprint does not depend on where the module is attached."""
    digest = hashlib.sha256()
    state = module.state_dict()
    for name in sorted(state):
        tensor = state[name].detach().cpu().contiguous()
        digest.update(json.dumps([name, str(tensor.dtype), list(tensor.shape)]).encode("utf-8"))
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy())  # any dtype as its bytes (bf16 included)
    return digest.hexdigest()


def declared_frozen(objective: nn.Module) -> dict[str, FrozenModule]:
    """The objective's ``frozen_modules()``, or {} for an objective without the method."""
    declare = getattr(objective, "frozen_modules", None)
    return dict(declare()) if callable(declare) else {}


def frozen_parameter_ids(objective: nn.Module) -> set[int]:
    """``id`` of every parameter of a declared frozen module."""
    return {id(p) for frozen in declared_frozen(objective).values() for p in frozen.module.parameters()}


def identify(objective: nn.Module) -> list[FrozenIdentity]:
    """Each declared frozen module with its state_dict prefix and fingerprint (in declaration order)."""
    paths = {id(module): path for path, module in objective.named_modules() if path}
    found = []
    for name, frozen in declared_frozen(objective).items():
        path = paths.get(id(frozen.module))
        if path is None:
            raise ValueError(f"frozen module {name!r} is not a sub-module of {type(objective).__name__}; assign "
                             f"it as an attribute so it moves to the device and its identity can be checkpointed")
        found.append(FrozenIdentity(name, f"{path}.", frozen.source, module_fingerprint(frozen.module)))
    return found


def freeze(objective: nn.Module) -> list[FrozenIdentity]:
    """Apply the policy (no gradients, eval mode) and return the frozen modules' identities.

    Refuses a parameter that a frozen module shares with a trained one (a student built by tying, not
    copying, the teacher's embeddings): freezing it would silently stop the student's training of it."""
    found = identify(objective)
    prefixes = tuple(f.prefix for f in found)
    frozen_ids = frozen_parameter_ids(objective)
    shared = sorted(name for name, p in objective.named_parameters(remove_duplicate=False)
                    if id(p) in frozen_ids and not (prefixes and name.startswith(prefixes)))
    if shared:
        raise ValueError(f"parameters {shared[:3]} are shared with a frozen module ({', '.join(prefixes)}); "
                         f"copy them (tensor.clone()) so that one can train and the other stay frozen")
    for frozen in declared_frozen(objective).values():
        frozen.module.requires_grad_(False)
        frozen.module.eval()
    return found


def enter_train_mode(objective: nn.Module) -> None:
    """``objective.train()``, with every frozen module back in eval mode."""
    objective.train()
    for frozen in declared_frozen(objective).values():
        frozen.module.eval()
