"""Add-ons: wrappers around any pretraining objective, each with its own config group (objectives/registry.py,
``AddonSpec``), in a package of its own here.

Importing this package registers every built-in add-on (each subpackage registers itself when imported), so
a new add-on is one folder and no edit to a shared file.
"""

from __future__ import annotations

import importlib
import pkgutil

for _found in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_found.name}")
