"""The site builds with jupyter-book, warnings as errors, from the committed notebooks."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_book_builds_without_warnings(tmp_path):
    jupyter_book = Path(sys.executable).parent / "jupyter-book"
    command = [str(jupyter_book if jupyter_book.exists() else shutil.which("jupyter-book")),
               "build", str(ROOT), "--path-output", str(tmp_path), "-W", "-n", "--keep-going"]
    run = subprocess.run(command, capture_output=True, text=True, timeout=900)
    log = run.stdout + run.stderr
    assert run.returncode == 0, log[-5000:]
    assert "WARNING" not in log, log[-5000:]
    html = tmp_path / "_build" / "html"
    for page in ("index.html", "book/intro.html", "chapters/01_fashion_mnist.html",
                 "chapters/02_training_a_cnn.html", "book/references.html"):
        assert (html / page).is_file(), page
    chapter = (html / "chapters" / "02_training_a_cnn.html").read_text()
    assert "<img" in chapter and "test accuracy" in chapter  # executed outputs are shown
