"""Every chapter in chapters/ (found automatically): committed outputs fresh, and runs in the smoke profile."""
from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest

from cnnbook import book

import device_guard

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "chapters").glob("*.ipynb"))
IDS = [p.stem for p in CHAPTERS]
NO_DEVICE_WORK = {"11_comparison.ipynb"}  # reads records only: no tensor on the device to check


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
    assert '"google.colab"' in first and "sys.modules" in first and "cnnbook.setup()" in first
    assert "pip.returncode" in first and "SystemExit" in first  # a failed install says so in one line
    assert f"git+{url}" in first, f"{path.name}: the setup cell should install cnnbook from {url}"


@pytest.mark.parametrize("path", CHAPTERS, ids=IDS)
def test_runs_in_the_smoke_profile(path, tmp_path, monkeypatch):
    """Every chapter runs to its end in the smoke profile, with the device check of tests/device_guard.py:
    the data and the trained networks live on a stand-in device, so a cell that mixes them with plain
    tensors, or calls .numpy() on a device tensor, fails here as it would on a GPU."""
    monkeypatch.setenv("CNNBOOK_RESULTS", str(tmp_path / "results"))  # never overwrite the committed records
    monkeypatch.setenv("IPYTHONDIR", str(device_guard.startup_dir(tmp_path / "ipython")))
    marker = tmp_path / "device-guard.log"
    monkeypatch.setenv(device_guard.MARKER_ENV, str(marker))
    out = tmp_path / path.name
    duration = book.execute(path, "smoke", output=out)
    nb = nbformat.read(out, as_version=4)
    assert nb.metadata["cnnbook"]["profile"] == "smoke"
    assert not book.stale_reasons(out, profile="smoke")
    assert duration > 1.0  # a chapter that "ran" in no time ran nothing
    if path.name not in NO_DEVICE_WORK:
        assert marker.is_file(), f"{path.name}: the device check never saw a tensor on the device (not installed?)"


def test_stale_outputs_are_detected(tmp_path):
    nb = nbformat.read(CHAPTERS[0], as_version=4)
    next(c for c in nb.cells if c.cell_type == "code").source += "\nprint('changed')"
    changed = tmp_path / "changed.ipynb"
    nbformat.write(nb, changed)
    assert any("code cells changed" in r for r in book.stale_reasons(changed))
    nb.metadata.pop("cnnbook")
    nbformat.write(nb, changed)
    assert book.stale_reasons(changed) == ["never executed by `make execute` (no metadata.cnnbook)"]


def test_rewrapped_code_and_edited_comments_keep_outputs_fresh(tmp_path):
    """Outputs are stale when the code that runs changes, not when its layout or comments do."""
    nb = nbformat.read(CHAPTERS[0], as_version=4)
    cell = next(c for c in nb.cells if c.cell_type == "code" and "device = cnnbook.setup()" in c.source)
    original = cell.source
    cell.source = "# a reworded comment\n" + original.replace("device = cnnbook.setup()",
                                                                "device = cnnbook.setup(\n)")
    kept = tmp_path / "kept.ipynb"
    nbformat.write(nb, kept)
    assert not book.stale_reasons(kept)
    cell.source = original.replace("device = cnnbook.setup()", "device = cnnbook.setup(0)")
    nbformat.write(nb, kept)
    assert any("code cells changed" in r for r in book.stale_reasons(kept))


def test_code_hash_ignores_layout_comments_and_docstring_wrapping_only():
    def hashed(source):
        return book.code_hash(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)]))

    base = hashed('def f(x):\n    """Add one to x, the input."""\n    return x + 1  # one')
    assert base == hashed('def f(x):\n    """Add one to x,\n    the input."""\n    return (x\n            + 1)')
    assert base != hashed('def f(x):\n    """Add two to x, the input."""\n    return x + 1')
    assert base != hashed('def f(x):\n    """Add one to x, the input."""\n    return x + 2')
    assert hashed("print('a b')") != hashed("print('a  b')")  # strings that are not docstrings count


def test_code_hash_is_the_same_on_every_python_version():
    """``ast.dump`` shows empty fields on 3.12 and hides them on 3.13; the hash must not follow it."""
    import ast

    text = book._syntax(ast.parse("def f(x: int = None) -> None:\n    return [y for y in x]"))
    assert "type_params" not in text and "kind" not in text and "=[]" not in text, text


LINE_LIMIT = 88  # a desktop code box shows 90 (13 px, book/_static/cnnbook.css); tests/test_site.py checks the boxes


@pytest.mark.parametrize("path", CHAPTERS, ids=IDS)
def test_code_lines_fit_the_code_box(path):
    long = [f"{len(line)} characters: {line.strip()[:60]}"
            for cell in nbformat.read(path, as_version=4).cells if cell.cell_type == "code"
            for line in cell.source.splitlines() if len(line) > LINE_LIMIT]
    assert not long, f"{path.name}: code lines over {LINE_LIMIT} characters (readers scroll sideways):\n" + "\n".join(long)


def test_error_outputs_are_detected(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 / 0")])
    path = tmp_path / "fails.ipynb"
    nbformat.write(nb, path)
    with pytest.raises(Exception):
        book.execute(path, "smoke")
    failed = tmp_path / "fails.failed.ipynb"  # the failed run is kept beside, the notebook untouched
    assert any("ZeroDivisionError" in r for r in book.stale_reasons(failed, profile="smoke"))
    assert "cnnbook" not in nbformat.read(path, as_version=4).metadata


@pytest.mark.parametrize("stop", ["SIGTERM", "SIGINT"])
def test_a_stop_request_stops_the_whole_execution(tmp_path, stop):
    """Ctrl-C (SIGINT) or SIGTERM during `make execute` stops the run: nbclient answers either by shutting
    the kernel down, which once made the chapter fail like any other and the next chapter start. The
    notebooks stay unchanged and the interrupted run is written aside."""
    import signal
    import subprocess
    import sys
    import time

    started = tmp_path / "started"
    slow = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        f"import pathlib, time\npathlib.Path({str(started)!r}).touch()\ntime.sleep(60)")])
    after = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        f"import pathlib\npathlib.Path({str(tmp_path / 'second')!r}).touch()")])
    for name, nb in (("slow.ipynb", slow), ("after.ipynb", after)):
        nbformat.write(nb, tmp_path / name)
    before = (tmp_path / "slow.ipynb").read_text()
    run = subprocess.Popen([sys.executable, "-m", "cnnbook.book", "execute", "--profile", "smoke",
                            str(tmp_path / "slow.ipynb"), str(tmp_path / "after.ipynb")],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 60
    while not started.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert started.exists(), "the first notebook never started"
    run.send_signal(getattr(signal, stop))
    out, _ = run.communicate(timeout=60)
    assert run.returncode != 0 and "STOPPED" in out, out
    assert not (tmp_path / "second").exists(), "the next notebook ran after the stop request"
    assert (tmp_path / "slow.ipynb").read_text() == before
    assert (tmp_path / "slow.failed.ipynb").exists()


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


def test_each_trained_chapter_has_its_record_and_shows_its_accuracy():
    """The record in results/ exists, finished, and is the run whose outputs the chapter shows."""
    from cnnbook.results import load_result

    for chapter, (notebook, _) in book.NETWORKS.items():
        record = load_result(chapter, ROOT / "results")
        assert record is not None, f"results/{chapter}.json is missing or unfinished: execute {notebook}"
        nb = nbformat.read(ROOT / "chapters" / notebook, as_version=4)
        shown = "\n".join(
            o.get("text", "") if o.get("output_type") == "stream" else o.get("data", {}).get("text/plain", "")
            for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
        assert f"test accuracy {record.test_acc:.4f}" in shown, (
            f"{notebook} does not show results/{chapter}.json's test accuracy {record.test_acc:.4f}: "
            "re-execute the chapter (its record and its outputs come from different runs)")


def test_cnnbook_errors_show_as_one_line_and_stop_the_notebook(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("import cnnbook\nS = cnnbook.settings('lenet', 'smoke').replace(num_epochs=0)"),
        nbformat.v4.new_code_cell("print('not reached')"),
    ])
    path = tmp_path / "mistake.ipynb"
    nbformat.write(nb, path)
    with pytest.raises(Exception):
        book.execute(path, "smoke")
    failed = nbformat.read(tmp_path / "mistake.failed.ipynb", as_version=4)
    outputs = failed.cells[0].outputs
    text = "".join(o.get("text", "") for o in outputs)
    assert text.strip() == ("SettingsError: Settings: num_epochs=0 must be a whole number >= 1, "
                            "e.g. S.replace(num_epochs=2).")
    assert not failed.cells[1].outputs
    assert nbformat.read(path, as_version=4).cells[0].outputs == []  # the notebook itself is untouched


def test_a_profile_entry_change_makes_outputs_stale(tmp_path, monkeypatch):
    from cnnbook import profiles

    path = ROOT / "chapters" / "03_lenet.ipynb"
    entry = dict(profiles._CHAPTERS["lenet"])
    entry["cpu"] = {**entry["cpu"], "num_epochs": entry["cpu"].get("num_epochs", 5) + 1}
    monkeypatch.setitem(profiles._CHAPTERS, "lenet", entry)
    assert any("profile table" in r for r in book.stale_reasons(path))


def test_execute_in_place_refuses_the_cpu_profile_on_a_gpu(capsys, monkeypatch):
    """On a CUDA machine `make execute PROFILE=cpu` would replace the book's CPU outputs, records and
    weights with a GPU run: refused before any notebook is touched (--output-dir is fine)."""
    import torch

    import cnnbook.profiles

    monkeypatch.setattr(cnnbook.profiles, "default_device", lambda: torch.device("cuda"))
    path = ROOT / "chapters" / "01_fashion_mnist.ipynb"
    before = path.read_bytes()
    assert book.main(["execute", "--profile", "cpu", str(path)]) == 2
    assert "come from a CPU run" in capsys.readouterr().err and path.read_bytes() == before


def test_execute_refuses_a_bad_profile_before_touching_anything(capsys):
    before = (ROOT / "chapters" / "01_fashion_mnist.ipynb").read_bytes()
    assert book.main(["execute", "--profile", "fast", "chapters/01_fashion_mnist.ipynb"]) == 2
    assert "not a profile" in capsys.readouterr().err
    assert (ROOT / "chapters" / "01_fashion_mnist.ipynb").read_bytes() == before


def test_chapters_can_be_named_by_number_or_name_and_a_wrong_name_stops_first(monkeypatch, tmp_path):
    """`make execute CHAPTERS="05 07"` once failed each chapter with "No such file '05'" and pointed at a
    failed run that did not exist."""
    monkeypatch.chdir(ROOT)
    assert book.resolve_notebooks(["05", "vgg", "chapters/11_comparison.ipynb"]) == [
        "chapters/05_vgg.ipynb", "chapters/05_vgg.ipynb", "chapters/11_comparison.ipynb"]
    for name in ("zz", "0"):
        with pytest.raises(SystemExit, match="Give a notebook's path or a chapter's number"):
            book.resolve_notebooks([name])


def test_printed_lines_become_one_output_without_colour_codes():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("")])
    nb.cells[0].outputs = [nbformat.v4.new_output("stream", name="stdout", text=f"epoch {i}\x1b[0m\n")
                           for i in range(3)]
    book.coalesce_streams(nb)
    assert [o["text"] for o in nb.cells[0].outputs] == ["epoch 0\nepoch 1\nepoch 2\n"]


@pytest.mark.parametrize("path", CHAPTERS, ids=IDS)
def test_mistakes_text_is_what_the_package_writes_from_the_records(path):
    """The per-class comparison is written from two committed records: the chapter's output must be what
    ``describe_mistakes`` writes from them now (it once listed per-class changes without their noise)."""
    import re

    import cnnbook
    from cnnbook.results import load_result

    chapter = book.chapter_key(path)
    for cell in nbformat.read(path, as_version=4).cells:
        found = re.fullmatch(r'cnnbook\.describe_mistakes\(result, previous="(\w+)"\)', cell.source.strip())
        if cell.cell_type == "code" and found:
            shown = cell.outputs[0]["data"]["text/markdown"]
            assert shown == str(cnnbook.describe_mistakes(load_result(chapter), previous=found.group(1))), (
                f"{path.name}: the mistakes text differs from what cnnbook writes from results/{chapter}.json "
                "(re-execute the chapter)")


@pytest.mark.parametrize("path", CHAPTERS, ids=IDS)
def test_run_text_is_what_the_package_writes_from_the_record(path):
    """The paragraph on the chapter's run states the tie rule the book uses everywhere (twice the standard
    error of a difference, 2·√(se₁² + se₂²)); it must be what ``describe_run`` writes from the record now."""
    import cnnbook
    from cnnbook.results import load_result

    chapter = book.chapter_key(path)
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type == "code" and cell.source.strip() == "cnnbook.describe_run(result)":
            shown = cell.outputs[0]["data"]["text/markdown"]
            assert shown == str(cnnbook.describe_run(load_result(chapter))), (
                f"{path.name}: the run's paragraph differs from what cnnbook writes from "
                f"results/{chapter}.json (re-execute the chapter)")
            assert "twice the standard error of the difference" in shown


@pytest.mark.parametrize("chapter", list(book.NETWORKS))
def test_training_output_ends_with_the_line_its_record_makes(chapter):
    """The trainer's last line in a chapter is what its committed record prints (``Result.summary``): the
    outputs and results/<chapter>.json come from the same run, and the line's wording is the package's
    (it once said 'examples/s' where every table said 'images/s')."""
    from cnnbook.results import load_result

    line = load_result(chapter).summary() + "\n"
    notebook = nbformat.read(ROOT / "chapters" / book.NETWORKS[chapter][0], as_version=4)
    shown = [o["data"]["text/plain"] for c in notebook.cells if c.cell_type == "code" for o in c.outputs
             if isinstance(o.get("data", {}).get("text/plain"), str)]
    assert sum(line in text for text in shown) == 1, (
        f"no output shows {line.strip()!r}: re-execute the chapter (make execute CHAPTERS=...)")


EXERCISE_RUNS = sorted((ROOT / "results" / "exercises").glob("*.json"))


@pytest.mark.parametrize("path", EXERCISE_RUNS, ids=[p.stem for p in EXERCISE_RUNS])
def test_solutions_quote_their_exercise_runs(path, exercise_runs):
    """A solution (or, for a profile's choice, the chapter's text) that quotes training runs or measurements
    cites the record of scripts/exercise_runs.py and its figures: DenseNet's once said '4 epochs' of a
    5-epoch profile, and GoogLeNet's quoted single GPU runs' test accuracies that no output in the book
    showed."""
    import json

    script = exercise_runs
    record = json.loads(path.read_text())
    notebook = ROOT / "chapters" / book.NETWORKS[record["chapter"]][0]
    text = " ".join(c.source for c in nbformat.read(notebook, as_version=4).cells if c.cell_type == "markdown")
    if path.stem not in script.QUOTED_IN_TEXT:
        text = text[text.index("<summary>Solutions"):]
    solutions = " ".join(text.split())
    assert f"results/exercises/{path.name}" in solutions, f"{notebook.name}: cite results/exercises/{path.name}"
    if record.get("kind") == "measurement":  # pairs of rows: without, then with the exercise's change
        pairs = list(zip(record["rows"][::2], record["rows"][1::2]))
        missing = [figure for a, b in pairs for figure in (
            script.kib_or_mib(a["bytes_per_image"]), script.kib_or_mib(b["bytes_per_image"]),
            f"({b['bytes_per_image'] / a['bytes_per_image']:.2f}×)", f"{b['step_s'] / a['step_s']:.2f} times")
            if figure not in solutions]
        assert not missing, f"{notebook.name}: the solution does not quote {missing} from {path.name}"
        return
    assert (f"{record['epochs']} epochs" if record["epochs"] > 1 else "one epoch") in solutions
    if not record.get("training_images", 55_000) < 55_000:  # compared with the chapter's record: still it?
        from cnnbook.results import load_result

        assert record["rows"][0]["val_acc"] == load_result(record["chapter"]).val_acc, (
            f"results/{record['chapter']}.json changed since {path.name} was made: "
            f"python scripts/exercise_runs.py {path.stem}, then update the solution")
    missing = [f"{100 * r['val_acc']:.1f} %" for r in record["rows"]
               if f"{100 * r['val_acc']:.1f} %" not in solutions]
    assert not missing, f"{notebook.name}: the solution does not quote {missing} from {path.name}"
