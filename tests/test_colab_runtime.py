"""Colab's runtime as it is now: the package ships the chapters, a chapter finds the one it builds on offline,
the version has one source, and `make check-py313` checks Colab's versions (issue 26, item 5)."""
import os
import re
import shutil
import socket
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

import cnnbook
from cnnbook import book
from cnnbook.errors import CnnbookError

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "chapters").glob("*.ipynb"))
COLAB = {"TORCH": "2.11.0", "TORCHVISION": "0.26.0", "NUMPY": "2.1.3", "IPYWIDGETS": "7.7.1"}
OFFLINE = {name: "http://127.0.0.1:9" for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel built from the tree (a copy of what the build reads, so nothing is written into the checkout),
    without build isolation or an index: no network."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.failed.ipynb", ".ipynb_checkpoints")
    for folder in ("cnnbook", "chapters", "benchmarks/results"):
        shutil.copytree(ROOT / folder, src / folder, ignore=ignore)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                    "-q", "-w", str(tmp / "dist"), str(src)], check=True, capture_output=True, text=True)
    (built,) = (tmp / "dist").glob("cnnbook-*.whl")
    return built


def test_the_wheel_ships_every_chapter_and_module(wheel):
    """`pip install git+https://...` (Colab's setup cell) installs the notebooks with the package, byte for
    byte, next to every module of the tree (the package list in pyproject.toml is explicit)."""
    with zipfile.ZipFile(wheel) as whl:
        names = set(whl.namelist())
        for chapter in CHAPTERS:
            assert whl.read(f"cnnbook/chapters/{chapter.name}") == chapter.read_bytes(), chapter.name
        metadata = whl.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    modules = {p.relative_to(ROOT).as_posix() for p in (ROOT / "cnnbook").rglob("*.py")}
    assert modules <= names, f"missing from the wheel: {sorted(modules - names)}"
    assert {f"cnnbook/weights/{p.name}" for p in (ROOT / "cnnbook" / "weights").iterdir()} <= names
    # chapter 12 shows the speedrun's records: they ship with the package (cnnbook.speedrun.records_dir)
    records = {f"cnnbook/benchmarks/{p.name}" for p in (ROOT / "benchmarks" / "results").glob("speedrun-cpu*.json")}
    assert records and records <= names
    assert not [n for n in names if n.startswith("chapters/")]  # inside the package, not a top-level folder
    assert re.search(r"^Version: (.+)$", metadata, re.M).group(1) == cnnbook.__version__


def test_an_installed_chapter_finds_the_chapter_it_builds_on_offline(wheel, tmp_path):
    """Chapter 8 alone in an empty folder, cnnbook installed from the wheel (no checkout, no network):
    chapter_code("03_lenet.ipynb") reads chapter 3 from the installed package, and the book builds chapter
    8's network (LeNet from chapter 3 with batch normalisation)."""
    site = tmp_path / "site-packages"
    with zipfile.ZipFile(wheel) as whl:
        whl.extractall(site)
    alone = tmp_path / "content"
    alone.mkdir()
    shutil.copy(ROOT / "chapters" / "08_batch_norm.ipynb", alone)
    script = (
        "import socket\n"
        "def offline(*args, **kwargs): raise OSError('no network in this test')\n"
        "socket.create_connection = offline\n"
        "socket.socket.connect = offline\n"
        "import cnnbook\n"
        "from cnnbook.book import build_network, chapter_code, chapters_dir, find_chapter\n"
        "assert not chapters_dir().exists(), chapters_dir()\n"
        "print(find_chapter('03_lenet.ipynb'))\n"
        "print(callable(chapter_code('03_lenet.ipynb').lenet))\n"
        "print(type(build_network('batchnorm', 'smoke')).__name__)\n"
        "print(cnnbook.__file__)\n"
    )
    env = {**os.environ, **OFFLINE, "PYTHONPATH": str(site), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    run = subprocess.run([sys.executable, "-c", script], cwd=alone, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    found, lenet, network, package = run.stdout.splitlines()[-4:]
    assert Path(found) == site / "cnnbook" / "chapters" / "03_lenet.ipynb"
    assert lenet == "True" and network and Path(package).parent == site / "cnnbook"
    assert not (tmp_path / "cache" / "cnnbook").exists()  # nothing downloaded or cached


def test_find_chapter_looks_in_the_checkout_and_never_downloads(tmp_path, monkeypatch):
    """The path as given, then the checkout's chapters/ folder; a chapter found nowhere is a short error
    that says what to do, and no connection is ever tried."""
    def offline(*args, **kwargs):
        raise AssertionError("find_chapter tried the network")

    monkeypatch.setattr(socket, "create_connection", offline)
    monkeypatch.setattr(socket.socket, "connect", offline)
    monkeypatch.chdir(tmp_path)
    assert book.find_chapter("03_lenet.ipynb") == ROOT / "chapters" / "03_lenet.ipynb"
    (tmp_path / "03_lenet.ipynb").write_bytes((ROOT / "chapters" / "03_lenet.ipynb").read_bytes())
    assert book.find_chapter("03_lenet.ipynb") == Path("03_lenet.ipynb")  # the path as given comes first
    with pytest.raises(CnnbookError) as err:
        book.find_chapter("99_missing.ipynb")
    message = str(err.value)
    assert "99_missing.ipynb" in message and "pip install" in message and len(message.splitlines()) <= 3
    assert not hasattr(book, "RAW_CHAPTERS")


def test_the_version_has_one_source():
    """pyproject.toml reads the version from cnnbook.__version__ (they said 0.1.0 and 0.2.0)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "cnnbook.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+", cnnbook.__version__)


def test_check_py313_defaults_to_colabs_runtime():
    """`make check-py313` installs Colab's preinstalled versions first, then cnnbook, and runs an early
    and a late chapter."""
    script = (ROOT / "scripts" / "check-python313.sh").read_text()
    for name, version in COLAB.items():
        assert f'{name}="${{{name}:-{version}}}"' in script, name
    assert "NOTEBOOKS=(chapters/03_lenet.ipynb chapters/08_batch_norm.ipynb)" in script
    colab_first = script.index('"${COLAB[@]}"')
    assert colab_first < script.index('pip install --progress-bar off "$WORK/src"')
    assert 'check-python313.sh' in (ROOT / "Makefile").read_text()
