"""Chapter style: code cells fit the page (lines <= 90 characters), every chapter has the anatomy's
headings. All eleven chapters."""
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = ["01_fashion_mnist.ipynb", "02_training_a_cnn.ipynb", "03_lenet.ipynb",
            "04_alexnet.ipynb", "05_vgg.ipynb", "06_nin.ipynb", "07_googlenet.ipynb",
            "08_batch_norm.ipynb", "09_resnet.ipynb", "10_densenet.ipynb", "11_comparison.ipynb"]
ARCHITECTURES = ["03_lenet.ipynb", "04_alexnet.ipynb", "05_vgg.ipynb", "06_nin.ipynb",
                 "07_googlenet.ipynb", "08_batch_norm.ipynb", "09_resnet.ipynb", "10_densenet.ipynb"]
MAX_LINE = 90
SETUP = "# Setup."  # the setup cell is the brief's, shared by every chapter, and not checked here


def code_cells(name):
    nb = nbformat.read(ROOT / "chapters" / name, as_version=4)
    return [c for c in nb.cells if c.cell_type == "code" and not c.source.startswith(SETUP)]


def headings(name):
    nb = nbformat.read(ROOT / "chapters" / name, as_version=4)
    return [line.lstrip("#").strip() for c in nb.cells if c.cell_type == "markdown"
            for line in c.source.splitlines() if line.startswith("## ")]


@pytest.mark.parametrize("name", CHAPTERS)
def test_code_lines_fit_the_page(name):
    long = [f"cell {c.get('id')}: {len(line)} characters: {line[:50]}..."
            for c in code_cells(name) for line in c.source.splitlines() if len(line) > MAX_LINE]
    assert not long, f"{name}: lines over {MAX_LINE} characters:\n" + "\n".join(long)


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_architecture_chapters_follow_the_anatomy(name):
    found = headings(name)
    for heading in ("Idea and history", "Structure", "The model in code",
                    "How the Fashion-MNIST form differs, and why", "Shapes", "Training",
                    "Exercises", "Summary", "What's next", "Further reading"):
        assert heading in found, f"{name} has no '## {heading}' heading (found: {found})"
    order = [found.index(h) for h in ("Idea and history", "The model in code",
                                      "How the Fashion-MNIST form differs, and why", "Shapes",
                                      "Training", "Exercises", "Summary", "What's next")]
    assert order == sorted(order), f"{name}: the anatomy's headings are out of order: {found}"


@pytest.mark.parametrize("name", CHAPTERS)
def test_every_chapter_says_whats_next_and_cites(name):
    nb = nbformat.read(ROOT / "chapters" / name, as_version=4)
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert "What's next" in headings(name)
    assert "{cite" in text, f"{name} cites no paper with a {{cite}} role"


@pytest.mark.parametrize("name", CHAPTERS)
def test_text_after_a_heading_starts_a_sentence(name):
    """The paragraph under a heading begins with a capital (a "## What's next" once began "batch
    normalisation made..."), or with a list, a formula, a figure, code or a citation."""
    import re

    nb = nbformat.read(ROOT / "chapters" / name, as_version=4)
    bad = []
    for c in nb.cells:
        if c.cell_type != "markdown":
            continue
        for heading, para in re.findall(r"^(#+ .*)\n\s*\n(\S[^\n]*)", c.source, flags=re.M):
            if para[0].islower():
                bad.append(f"{heading}: {para[:60]}")
    assert not bad, f"{name}: a paragraph starts in lower case:\n" + "\n".join(bad)
