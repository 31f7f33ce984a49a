"""What a remote-code export ships (leanbert's own modules, imports rewritten to flat siblings) and what it
refuses to ship; the wrapper's task table gives one class and one auto_map entry per row."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from leanbert.export import remote_wrapper
from leanbert.export.remote_bundle import (
    MODELING_FILE,
    PACKAGE_DIR,
    bundle_files,
    check_pure,
    flat_name,
    rewrite_imports,
    shipped_modules,
)

SHIPPED = {"leanbert.config", "leanbert.model.config", "leanbert.model.encoder", "leanbert.model.positions.tupe"}


def test_every_model_module_ships_with_what_it_imports():
    modules = shipped_modules()
    assert {"leanbert.model", "leanbert.model.positions", "leanbert.model.positions.tupe"} <= set(modules)
    model_files = {".".join(("leanbert", *p.relative_to(PACKAGE_DIR).with_suffix("").parts)).removesuffix(".__init__")
                   for p in (PACKAGE_DIR / "model").rglob("*.py")}
    assert model_files <= set(modules) and "leanbert.config" in modules
    assert not any(m.startswith(("leanbert.objectives", "leanbert.train", "leanbert.export")) for m in modules)
    files = bundle_files()
    assert set(files) == {flat_name(m) for m in modules} | {MODELING_FILE}
    siblings = {n.module for n in ast.parse(files[MODELING_FILE]).body if isinstance(n, ast.ImportFrom) and n.level}
    assert siblings >= {flat_name(m)[:-3] for m in modules}  # transformers copies and runs each of them
    for name, text in files.items():  # no import statement names leanbert any more (prose may)
        imported = [n.module or "" for n in ast.walk(ast.parse(text)) if isinstance(n, ast.ImportFrom)]
        imported += [a.name for n in ast.walk(ast.parse(text)) if isinstance(n, ast.Import) for a in n.names]
        assert not any(m.split(".")[0] == "leanbert" for m in imported), name


def test_rewrite_turns_leanbert_imports_into_sibling_imports_and_nothing_else():
    source = ('"""from leanbert.config import X stays prose."""\n'
              "from leanbert.model.config import ModelConfig\n"
              "from leanbert.model.encoder import (\n    Encoder,\n)\n\n\n"
              "def late():\n    from leanbert.model.positions.tupe import TupePositions\n    return TupePositions\n")
    out = rewrite_imports(source, SHIPPED)
    assert "from .lb_model_config import ModelConfig\n" in out
    assert "from .lb_model_encoder import (\n    Encoder,\n)" in out
    assert "    from .lb_model_positions_tupe import TupePositions\n" in out
    assert out.startswith('"""from leanbert.config import X stays prose."""')  # not at a line start


@pytest.mark.parametrize("source, problem", [
    ("import leanbert.config\n", "cannot become a sibling import"),
    ("from leanbert.model_dir import load_model\n", "not shipped"),
])
def test_rewrite_refuses_what_transformers_could_not_load(source, problem):
    with pytest.raises(ValueError, match=problem):
        rewrite_imports(source, SHIPPED)


@pytest.mark.parametrize("source, problem", [
    ("import numpy\n", "imports numpy"),
    ("from leanbert.objectives import mlm\n", "does not ship"),
    ("from leanbert import model_dir\n", "does not ship"),
    ("from .sibling import x\n", "relative import"),
])
def test_purity_refuses_imports_an_export_cannot_satisfy(source, problem):
    with pytest.raises(ValueError, match=problem):
        check_pure("leanbert.model.toy", source, SHIPPED)


def test_each_task_row_gives_a_class_and_an_auto_map_entry():
    mapping = remote_wrapper.auto_map(Path(MODELING_FILE).stem)
    for suffix, task in remote_wrapper.TASK_CLASSES.items():
        cls = getattr(remote_wrapper, f"LeanBert{suffix}")
        assert cls.head == task.head and issubclass(cls, remote_wrapper.LeanBertPreTrainedModel)
        assert mapping[f"AutoModel{suffix}"] == f"modeling_leanbert.LeanBert{suffix}"
        assert remote_wrapper.class_name_for(["rtd", task.head]) == f"LeanBert{suffix}"
    assert remote_wrapper.class_name_for(["nsp"]) == "LeanBertModel"
