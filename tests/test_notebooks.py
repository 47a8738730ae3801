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


def repository() -> tuple[str, str]:
    """The repository URL and branch, written once in _config.yml."""
    import yaml

    config = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]
    return config["url"].rstrip("/"), config.get("branch", "main")


@pytest.mark.parametrize("path", CHAPTERS, ids=IDS)
def test_colab_link_and_setup_cell_point_at_the_repository(path):
    url, branch = repository()
    nb = nbformat.read(path, as_version=4)
    title = nb.cells[0].source
    github_path = url.removeprefix("https://github.com/")
    colab = f"https://colab.research.google.com/github/{github_path}/blob/{branch}/chapters/{path.name}"
    assert colab in title, f"{path.name}: the first cell should link to {colab}"
    first = next(c for c in nb.cells if c.cell_type == "code").source
    assert '"google.colab" in sys.modules' in first and "cnnbook.setup()" in first
    assert f"git+{url}" in first, f"{path.name}: the setup cell should install cnnbook from {url}"


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


def test_every_mention_of_the_repository_is_the_configured_one():
    """The URL is written in _config.yml; the copies Colab and pip need must agree with it."""
    import re

    url, _ = repository()
    owner_repo = url.removeprefix("https://github.com/")
    files = [ROOT / "pyproject.toml", ROOT / "README.md", *(ROOT / "book").glob("*.md"), *CHAPTERS]
    for path in files:
        text = path.read_text()
        for found in re.findall(r"github\.com/([\w.-]+/cnnbook[\w.-]*?)(?:\.git)?(?=[/\"'\s)]|$)", text):
            assert found == owner_repo, f"{path.name} mentions github.com/{found}, not the configured {owner_repo}"
