"""The source files a remote-code export ships: leanbert's own model code, not a copy of it.

The bundle is every module of the model package (sub-packages included), plus the modules of the config's
registered components that live elsewhere (a position scheme or head registered from its own file: ``extra``
modules), plus the leanbert modules they import (the config schema and what it needs), found by reading their
imports, plus the transformers wrapper (``remote_wrapper.py``, shipped as ``modeling_leanbert.py``, which imports
every shipped module so its components register when transformers loads it). transformers' dynamic-module
loader only follows ``from .name import`` to ``name.py`` in the same folder, so each module becomes a flat
sibling file (``leanbert.model.encoder`` -> ``lb_model_encoder.py``) and each ``from leanbert.x.y import N``
becomes ``from .lb_x_y import N``; nothing else in the source changes. A module that imports anything but the standard library, torch, PyYAML (a
dependency of transformers) or another shipped module is refused: the export must load without leanbert.
"""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Sequence
from pathlib import Path

PACKAGE = "leanbert"
PACKAGE_DIR = Path(__file__).resolve().parents[1]
MODEL_PACKAGE = f"{PACKAGE}.model"
WRAPPER = f"{PACKAGE}.export.remote_wrapper"
MODELING_FILE = "modeling_leanbert.py"
THIRD_PARTY = frozenset({"torch", "yaml"})  # what transformers brings anyway
WRAPPER_THIRD_PARTY = THIRD_PARTY | {"transformers"}
_FROM_IMPORT = re.compile(r"^(?P<indent>[ \t]*)from[ \t]+(?P<module>leanbert(?:\.\w+)*)[ \t]+import\b", re.MULTILINE)
_PLAIN_IMPORT = re.compile(r"^[ \t]*import[ \t]+leanbert\b", re.MULTILINE)


def module_file(module: str) -> Path | None:
    """The source file of a leanbert module (a package as its __init__.py), or of an imported extra module;
    None when there is none."""
    if module.split(".")[0] != PACKAGE:
        path = getattr(sys.modules.get(module), "__file__", None)
        return Path(path) if path else None
    parts = module.split(".")[1:]
    candidates = [PACKAGE_DIR.joinpath(*parts).with_suffix(".py")] if parts else []
    candidates.append(PACKAGE_DIR.joinpath(*parts, "__init__.py"))
    return next((path for path in candidates if path.is_file()), None)


def flat_name(module: str) -> str:
    """``leanbert.model.encoder`` -> ``lb_model_encoder.py``; an extra module ``my.scheme`` -> ``lbx_my_scheme.py``."""
    if module.split(".")[0] != PACKAGE:
        return "lbx_" + module.replace(".", "_") + ".py"
    return "lb_" + "_".join(module.split(".")[1:]) + ".py"


def _imports(source: str) -> list[tuple[str, int]]:
    """(absolute module imported, line) for every import statement, function-level ones included."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                raise ValueError(f"line {node.lineno}: relative import; shipped modules import leanbert absolutely")
            found.append((node.module or "", node.lineno))
    return found


def model_modules() -> list[str]:
    """Every module of the model package: its face, its sub-packages' faces and their modules."""
    names = []
    for path in sorted((PACKAGE_DIR / "model").rglob("*.py")):
        parts = path.relative_to(PACKAGE_DIR).with_suffix("").parts
        names.append(".".join((PACKAGE, *(parts[:-1] if parts[-1] == "__init__" else parts))))
    return names


def shipped_modules(extra: Sequence[str] = ()) -> list[str]:
    """The modules the export ships (the wrapper excepted): every module of the model package, the ``extra``
    modules and, transitively, the leanbert modules they import."""
    todo = model_modules() + list(extra)
    seen: set[str] = set()
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        if module_file(module) is None:
            raise ValueError(f"{module}: no source file to ship")
        todo += [name for name, _ in _imports(module_file(module).read_text(encoding="utf-8"))
                 if name.split(".")[0] == PACKAGE and name not in seen]
    return sorted(seen)


def check_pure(module: str, source: str, shipped: set[str], third_party: frozenset[str] = THIRD_PARTY) -> None:
    """Refuse an import the exported folder could not satisfy without leanbert."""
    for name, line in _imports(source):
        top = name.split(".")[0]
        if top == PACKAGE:
            if name not in shipped or name == PACKAGE:
                raise ValueError(f"{module} line {line}: imports {name}, which the remote-code export does not "
                                 f"ship (import modules, not names from packages)")
        elif top not in sys.stdlib_module_names and top not in third_party:
            raise ValueError(f"{module} line {line}: imports {name}; shipped modules may import only the standard "
                             f"library, {', '.join(sorted(third_party))} and each other")


def rewrite_imports(source: str, shipped: set[str]) -> str:
    """Every ``from leanbert.x.y import N`` -> ``from .lb_x_y import N`` (shipped modules only)."""
    if _PLAIN_IMPORT.search(source):
        raise ValueError("`import leanbert...` cannot become a sibling import; use `from leanbert.x import N`")

    def sibling(match: re.Match) -> str:
        module = match["module"]
        if module not in shipped:
            raise ValueError(f"{module} is not shipped")
        return f"{match['indent']}from .{flat_name(module)[:-3]} import"

    return _FROM_IMPORT.sub(sibling, source)


def bundle_files(extra: Sequence[str] = ()) -> dict[str, str]:
    """File name -> text of everything the export ships (checked for purity). ``extra``: modules outside the
    model package whose components the exported config uses (they must be as pure as the package)."""
    modules = shipped_modules(extra)
    shipped = set(modules)
    files = {}
    for module in [*modules, WRAPPER]:
        source = module_file(module).read_text(encoding="utf-8")
        check_pure(module, source, shipped, WRAPPER_THIRD_PARTY if module == WRAPPER else THIRD_PARTY)
        files[MODELING_FILE if module == WRAPPER else flat_name(module)] = rewrite_imports(source, shipped)
    # Static sibling imports of every shipped module: transformers copies only what the modeling file imports
    # this way, and importing a module registers its components. (The package faces find their components
    # by listing their folder; a flat sibling file has no folder to list.)
    files[MODELING_FILE] += "\n# every shipped module, imported so that its components register\n"
    files[MODELING_FILE] += "".join(f"from .{flat_name(m)[:-3]} import __name__ as _{flat_name(m)[:-3]}\n"
                                    for m in modules)
    return files


def write_bundle(directory: Path, extra: Sequence[str] = ()) -> None:
    for name, text in bundle_files(extra).items():
        (directory / name).write_text(text, encoding="utf-8")
