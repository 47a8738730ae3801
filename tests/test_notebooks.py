"""Every chapter in chapters/ (found automatically): committed outputs fresh, and runs in the smoke profile."""
from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest

from cnnbook import book

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "chapters").glob("*.ipynb"))
IDS = [p.stem for p in CHAPTERS]


def test_chapters_exist_and_are_in_the_toc():
    toc = (ROOT / "_toc.yml").read_text()
    assert CHAPTERS
    for path in CHAPTERS:
        assert f"chapters/{path.stem}" in toc, f"{path.name} is not listed in _toc.yml"


@pytest.mark.parametrize("path", CHAPTERS, ids=IDS)
def test_committed_outputs_are_fresh_and_from_the_cpu_profile(path):
    reasons = book.stale_reasons(path, profile="cpu")
    assert not reasons, f"{path.name}: {'; '.join(reasons)} (run: make execute CHAPTERS={path.relative_to(ROOT)})"


@pytest.mark.parametrize("path", CHAPTERS, ids=IDS)
def test_first_code_cell_sets_up_cnnbook(path):
    nb = nbformat.read(path, as_version=4)
    first = next(c for c in nb.cells if c.cell_type == "code").source
    assert '"google.colab" in sys.modules' in first and "cnnbook.setup()" in first


@pytest.mark.parametrize("path", CHAPTERS, ids=IDS)
def test_runs_in_the_smoke_profile(path, tmp_path, monkeypatch):
    monkeypatch.setenv("CNNBOOK_RESULTS", str(tmp_path / "results"))  # never overwrite the committed records
    out = tmp_path / path.name
    duration = book.execute(path, "smoke", output=out)
    nb = nbformat.read(out, as_version=4)
    assert nb.metadata["cnnbook"]["profile"] == "smoke"
    assert not book.stale_reasons(out, profile="smoke")
    assert duration > 1.0  # a chapter that "ran" in no time ran nothing


def test_stale_outputs_are_detected(tmp_path):
    nb = nbformat.read(CHAPTERS[0], as_version=4)
    next(c for c in nb.cells if c.cell_type == "code").source += "\nprint('changed')"
    changed = tmp_path / "changed.ipynb"
    nbformat.write(nb, changed)
    assert any("code cells changed" in r for r in book.stale_reasons(changed))
    nb.metadata.pop("cnnbook")
    nbformat.write(nb, changed)
    assert book.stale_reasons(changed) == ["never executed by `make execute` (no metadata.cnnbook)"]


def test_error_outputs_are_detected(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 / 0")])
    path = tmp_path / "fails.ipynb"
    nbformat.write(nb, path)
    with pytest.raises(Exception):
        book.execute(path, "smoke")
    assert any("ZeroDivisionError" in r for r in book.stale_reasons(path, profile="smoke"))
