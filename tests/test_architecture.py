"""Structural bars of the package, read from the source (nothing is imported or run).

Each bar asserts that its count is at most the ceiling recorded below; every ceiling has reached its target, 0
(ARCHITECTURE.md section 3.1), so a new violation fails. The floors are the layers of section 2.1.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

PACKAGE = "leanbert"
SRC = Path(__file__).resolve().parents[1] / "src"

# Ceilings: never raise them.
CEILINGS = {
    "cycles": 0,          # import circles, late imports and implicit parent-package __init__ edges included
    "layers": 0,          # imports pointing up a floor, or a never-pair
    "late": 0,            # function-level leanbert imports outside commands/, cli.py and package faces
    "long_functions": 0,  # functions over MAX_FUNCTION lines
    "long_files": 0,      # modules over MAX_FILE lines
    "missing_inits": 0,   # package folders without __init__.py
    "impure_model": 0,    # leanbert.model importing anything but stdlib, torch, leanbert.model, leanbert.config
    "vocabulary": 0,      # a method's name used in code outside that method's own files
    "lifecycle": 0,       # a workflow calling a job-lifecycle primitive itself instead of the job runner
}
MAX_FUNCTION, MAX_FILE = 80, 400

# Floors, lowest first. A module sits on the floor of its longest matching prefix; imports may point down or
# sideways, never up.
LAYERS: list[tuple[str, ...]] = [
    ("errors", "paths", "atomic", "safe_io", "run_lock", "verdict", "plots", "config", "config_files",
     "registry", "batch"),
    ("model",),
    ("outdir", "presets", "memory_check", "flops", "model_dir", "train", "data"),
    # tasks/ (the task types with their readers, encoders, metrics and prediction-layer loss) sits on the
    # objectives' floor (ARCHITECTURE 2.7): finetune, distill, export and predict build on it
    ("objectives", "tasks", "inference"),
    ("addons", "jobs"),
    ("interop", "export"),
    ("pretrain", "pretrain_config", "finetune", "distill", "probe", "predict"),
    ("compare", "demo"),
    ("commands", "cli", ""),
]
# Pairs that stay independent although their floors would allow the import.
NEVER = [("train", "data"), ("train", "objectives"), ("data", "train"), ("objectives", "tasks"),
         ("tasks", "objectives.mlm"), ("export", "predict")]
LATE_ALLOWED = ("commands/", "cli.py", "__init__.py")
# A method's own words (identifiers, and string literals other than docstrings) -> the files (or folders) it lives
# in: a method is one file plus its registration, so nothing else names it.
HOMES = {
    r"tupe": ("model/positions/tupe.py",),
    r"relative_buckets|relative_max_distance|untie_cls|cls_theta": ("model/positions/", "model/legacy.py"),
    r"\btnf\b|tnf_|rare_?words?|RareWord": ("addons/tnf/", "commands/rare_words_cmd.py"),
    r"mcbert|mc-bert|multi_choice_targets": ("objectives/mcbert.py",),
    r"discriminator": ("objectives/electra.py", "objectives/mcbert.py", "model/heads/pretraining.py", "demo/"),
}
# The job runner's primitives (lock, scratch folder, output policy and marker, torchrun set-up, publishing) and
# the workflows that must leave them to it.
LIFECYCLE = {"open_run_dir", "lock_output", "lock_run_dir", "make_temp_dir", "fresh_out_dir", "write_marker",
             "init_distributed", "job_env", "write_on_main", "shutdown"}
WORKFLOWS = ("pretrain.py", "distill/", "finetune/", "demo/")


def _name(suffix: str) -> str:
    return f"{PACKAGE}.{suffix}" if suffix else PACKAGE


def _under(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def module_files() -> dict[str, Path]:
    """dotted name -> file, packages as their __init__.py."""
    out = {}
    for path in sorted((SRC / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


MODULES = module_files()
TREES = {name: ast.parse(path.read_text(encoding="utf-8")) for name, path in MODULES.items()}


def _resolve(target: str) -> str:
    """The module a dotted import target names: `from a.b import c` is a.b.c when c is a module, else a.b."""
    parts = target.split(".")
    for n in range(len(parts), 0, -1):
        if ".".join(parts[:n]) in MODULES:
            return ".".join(parts[:n])
    return target


def imports(name: str):
    """(resolved leanbert module, line, late) for each leanbert import in the module, TYPE_CHECKING included."""
    is_pkg = MODULES[name].name == "__init__.py"
    here = name if is_pkg else name.rpartition(".")[0]

    def walk(node, late):
        for child in ast.iter_child_nodes(node):
            targets = []
            if isinstance(child, ast.Import):
                targets = [alias.name for alias in child.names]
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    parts = here.split(".")[: len(here.split(".")) - child.level + 1]
                    base = ".".join(parts + ([child.module] if child.module else []))
                targets = [f"{base}.{alias.name}" for alias in child.names]
            for target in targets:
                if _under(target, PACKAGE):
                    yield _resolve(target), child.lineno, late
            yield from walk(child, late or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef))

    yield from walk(TREES[name], False)


def import_graph() -> dict[str, set[str]]:
    """Edges as Python runs them: importing P.Q.x from outside P.Q first runs P/Q/__init__.py (the lazy root
    package face is left out: it imports nothing at import time)."""
    graph: dict[str, set[str]] = {name: set() for name in MODULES}
    for name in MODULES:
        for target, _, _ in imports(name):
            if target not in MODULES or target == name:
                continue
            graph[name].add(target)
            parts = target.split(".")
            for n in range(2, len(parts)):
                parent = ".".join(parts[:n])
                if parent in MODULES and not _under(name, parent):
                    graph[name].add(parent)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def layer_of(module: str) -> int | None:
    best, found = -1, None
    for floor, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            full = _name(prefix)
            if _under(module, full) and len(full) > best:
                best, found = len(full), floor
    return found


def _rel(name: str) -> str:
    return MODULES[name].relative_to(SRC / PACKAGE).as_posix()


def layer_violations() -> list[str]:
    bad = []
    for name in MODULES:
        floor = layer_of(name)
        for target, line, late in imports(name):
            up = layer_of(target)
            if floor is not None and up is not None and up > floor:
                bad.append(f"{_rel(name)}:{line} {name} (floor {floor}) -> {target} (floor {up})"
                           + (" [late]" if late else ""))
            bad += [f"{_rel(name)}:{line} {name} -> {target}: never {_name(a)} -> {_name(b)}"
                    for a, b in NEVER if _under(name, _name(a)) and _under(target, _name(b))]
    return list(dict.fromkeys(bad))


def late_imports() -> list[str]:
    bad = set()
    for name in MODULES:
        rel = _rel(name)
        if rel.startswith(LATE_ALLOWED[0]) or rel in LATE_ALLOWED[1:] or rel.endswith("/__init__.py"):
            continue
        bad |= {f"{rel}:{line}" for _, line, late in imports(name) if late}
    return sorted(bad)


def long_functions() -> list[str]:
    return [f"{_rel(name)}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
            for name, tree in TREES.items() for node in ast.walk(tree)
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            and node.end_lineno - node.lineno + 1 > MAX_FUNCTION]


def long_files() -> list[str]:
    lengths = {name: len(path.read_text(encoding="utf-8").splitlines()) for name, path in MODULES.items()}
    return [f"{_rel(name)} ({n} lines)" for name, n in lengths.items() if n > MAX_FILE]


def missing_inits() -> list[str]:
    folders = {path.parent for path in MODULES.values()}
    return sorted(str(f.relative_to(SRC)) for f in folders if not (f / "__init__.py").exists())


def impure_model() -> list[str]:
    """The model package ships as remote code: it may import only stdlib, torch and itself / the config schema."""
    bad = []
    for name in MODULES:
        if not _under(name, _name("model")):
            continue
        for node in ast.walk(TREES[name]):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                targets = [node.module or ""]
            else:
                continue  # relative imports stay inside the package
            for target in targets:
                top = target.split(".")[0]
                if not (top in sys.stdlib_module_names or top == "torch" or _under(target, _name("model"))
                        or _resolve(target) == _name("config")):
                    bad.append(f"{_rel(name)}:{node.lineno} imports {target}")
    return bad


def _words(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, text) of every identifier and every key-like string literal (no spaces) outside docstrings."""
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
                  and node.body and isinstance(node.body[0], ast.Expr)
                  and isinstance(node.body[0].value, ast.Constant)}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            found.append((node.lineno, node.id))
        elif isinstance(node, ast.Attribute):
            found.append((node.lineno, node.attr))
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            found.append((node.lineno, node.name))
        elif isinstance(node, ast.arg):
            found.append((node.lineno, node.arg))
        elif isinstance(node, ast.alias):
            found.append((node.lineno, node.asname or node.name))
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.append((node.lineno, node.module))
        elif (isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
              and re.fullmatch(r"[\w.\-/]+", node.value)):  # keys and names; prose (help, messages) may cite a method
            found.append((node.lineno, node.value))
    return found


def vocabulary_outside_home() -> list[str]:
    bad = []
    for name, tree in TREES.items():
        rel = _rel(name)
        for pattern, homes in HOMES.items():
            if rel.startswith(homes):
                continue
            lines = sorted({line for line, text in _words(tree) if re.search(pattern, text, re.IGNORECASE)})
            if lines:
                bad.append(f"{rel}: /{pattern}/ on lines {lines}")
    return bad


def lifecycle_calls() -> list[str]:
    return [f"{_rel(name)}:{node.lineno} calls {callee}()"
            for name, tree in TREES.items() if _rel(name).startswith(WORKFLOWS)
            for node in ast.walk(tree) if isinstance(node, ast.Call)
            for callee in [getattr(node.func, "id", None) or getattr(node.func, "attr", None)]
            if callee in LIFECYCLE]


def _within_ceiling(bar: str, found: list):
    assert len(found) <= CEILINGS[bar], (
        f"{bar}: {len(found)} > ceiling {CEILINGS[bar]} (fix the new ones; lower the ceiling when fixing):\n"
        + "\n".join(map(str, found)))


def test_import_cycles():
    _within_ceiling("cycles", cycles(import_graph()))


def test_floors():
    _within_ceiling("layers", layer_violations())


def test_function_level_imports():
    _within_ceiling("late", late_imports())


def test_sizes():
    _within_ceiling("long_functions", long_functions())
    _within_ceiling("long_files", long_files())


def test_every_package_folder_has_an_init():
    _within_ceiling("missing_inits", missing_inits())


def test_model_package_is_shippable():
    _within_ceiling("impure_model", impure_model())


def test_method_names_stay_in_their_files():
    _within_ceiling("vocabulary", vocabulary_outside_home())


def test_workflows_leave_the_job_lifecycle_to_the_runner():
    _within_ceiling("lifecycle", lifecycle_calls())


def test_the_checks_see_what_they_claim():
    # a made-up circle and an upward import are found, so a ceiling of 0 means something
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert layer_of("leanbert.model.encoder") == 1 and layer_of("leanbert.commands.x") == 8
    assert layer_of("leanbert.pretrain_config") == 6 and layer_of("leanbert") == 8
    assert len(MODULES) > 50 and "leanbert.model.encoder" in import_graph()["leanbert.model.model"]
    probe = ast.parse('"""TUPE in a docstring is prose."""\nfrom x import tupe_scale\nkey = "model.cls_theta"\n'
                      'help = "see TUPE"\ndef f():\n    lock_output(out)\n')
    assert [text for _, text in _words(probe) if "tupe" in text.lower()] == ["tupe_scale"]
    assert any(text == "model.cls_theta" for _, text in _words(probe))
    assert any(isinstance(n, ast.Call) and n.func.id in LIFECYCLE for n in ast.walk(probe))
