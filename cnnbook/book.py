"""Executing the chapters and checking that their committed outputs are fresh.

Each executed notebook records in ``metadata.cnnbook`` how it was made: the profile, the
device, how long it took, and a SHA-256 of its code cells. ``stale_reasons`` compares that
record with the notebook as it is now.

    python -m cnnbook.book execute chapters/*.ipynb     # re-execute in place (profile by device)
    python -m cnnbook.book check chapters/*.ipynb       # list chapters with stale or failed outputs
"""
from __future__ import annotations

import argparse
import ast
import contextlib
import hashlib
import json
import os
import re
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

import nbformat

TIMEOUT_PER_CELL = 1200  # seconds


def code_hash(nb: nbformat.NotebookNode) -> str:
    """SHA-256 of what the notebook's code cells do, in order (outputs and markdown excluded).

    Each cell is hashed as its parsed syntax tree, so re-wrapping a long line or a docstring, or editing a
    comment, keeps the outputs fresh; any change to the code that runs makes them stale. A cell that does not
    parse as Python is hashed as its text.
    """
    digest = hashlib.sha256()
    for cell in nb.cells:
        if cell.cell_type == "code":
            try:
                text = _syntax(_unwrapped_docstrings(ast.parse(cell.source)))
            except SyntaxError:
                text = cell.source
            digest.update(text.encode())
            digest.update(b"\n\x00\n")
    return digest.hexdigest()


def _unwrapped_docstrings(tree: ast.AST) -> ast.AST:
    """The tree with each docstring's whitespace collapsed: re-wrapping a docstring changes no output."""
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) \
                    and isinstance(first.value.value, str):
                first.value.value = " ".join(first.value.value.split())
    return tree


def _syntax(node) -> str:
    """A syntax tree as text that is the same on every Python version: node names and their non-empty
    fields (``ast.dump`` differs between versions: 3.12 added empty fields, 3.13 stopped showing them)."""
    if isinstance(node, ast.AST):
        fields = ", ".join(f"{name}={_syntax(value)}" for name, value in ast.iter_fields(node)
                           if value is not None and value != [])
        return f"{type(node).__name__}({fields})"
    if isinstance(node, list):
        return "[" + ", ".join(_syntax(item) for item in node) + "]"
    return repr(node)


def package_hash() -> str:
    """SHA-256 of the cnnbook package's sources, recorded beside each run for information."""
    digest = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()


SETTINGS_CALL = re.compile(r"""settings\(\s*["']([\w-]+)["']""")
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def settings_hash(nb: nbformat.NotebookNode, profile: str = "cpu") -> str:
    """SHA-256 of the profile-table entries (under ``profile``) of every chapter the notebook's code reads
    with ``cnnbook.settings("...")``: editing a chapter's epochs or widths makes its outputs stale."""
    from dataclasses import asdict

    from .profiles import settings

    names = sorted({m for c in nb.cells if c.cell_type == "code" for m in SETTINGS_CALL.findall(c.source)})
    digest = hashlib.sha256()
    for name in names:
        try:
            values = asdict(settings(name, profile))
        except Exception:  # noqa: BLE001 - an unknown name is the notebook's error, shown when it runs
            values = {"unknown": name}
        digest.update(json.dumps(values, sort_keys=True, default=str).encode())
    return digest.hexdigest()


def check_profile(profile: str | None) -> str:
    """The profile to execute in: ``profile``, else ``$CNNBOOK_PROFILE``, else by device; checked first."""
    from .errors import SettingsError
    from .profiles import PROFILE_NAMES, current_profile

    if profile is None:
        return current_profile()  # raises SettingsError for a bad $CNNBOOK_PROFILE
    if profile not in PROFILE_NAMES:
        raise SettingsError(f"--profile {profile!r} is not a profile: use one of {', '.join(PROFILE_NAMES)}.")
    return profile


def coalesce_streams(nb: nbformat.NotebookNode) -> None:
    """Merge consecutive stdout (or stderr) outputs of a cell into one: one text box per run, not one per
    printed line; terminal colour codes removed."""
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        merged = []
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                out["text"] = ANSI.sub("", "".join(out["text"]) if isinstance(out["text"], list) else out["text"])
                if merged and merged[-1].get("output_type") == "stream" and merged[-1]["name"] == out["name"]:
                    merged[-1]["text"] += out["text"]
                    continue
            if out.get("output_type") == "error":
                out["traceback"] = [ANSI.sub("", line) for line in out.get("traceback", [])]
            merged.append(out)
        cell["outputs"] = merged


@contextlib.contextmanager
def environment(**values: str):
    """Set environment variables (which a notebook's kernel inherits) for the block, then restore each
    to what it was, unset ones unset again."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def execute(path: str | os.PathLike, profile: str, output: str | os.PathLike | None = None) -> float:
    """Run every cell of the notebook at ``path`` under ``profile`` and write it (in place by default).

    A failed run never replaces the notebook: it is written beside it as ``<name>.failed.ipynb`` for
    inspection (or to ``output``), and the error is raised. In the ``cpu`` profile the chapter's run also
    ships its trained weights (``CNNBOOK_SAVE_WEIGHTS=1``, see :mod:`cnnbook.weights`).

    Returns:
        The execution time in seconds.

    Raises:
        nbclient.exceptions.CellExecutionError: a cell failed.
    """
    from nbclient import NotebookClient

    from .profiles import default_device
    from .results import versions
    from .train import device_name

    profile = check_profile(profile)
    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    # The kernel inherits the environment: the profile, and no progress bars in saved outputs.
    kernel_env = {"CNNBOOK_PROFILE": profile, "CNNBOOK_PROGRESS": "0", "CNNBOOK_TRAINED": "0",
                  "CNNBOOK_SAVE_WEIGHTS": "1" if profile == "cpu" and output is None else "0"}
    if output is not None and not os.environ.get("CNNBOOK_RESULTS"):
        # a copy executed elsewhere (a smoke check, another profile) never writes the book's records
        kernel_env["CNNBOOK_RESULTS"] = tempfile.mkdtemp(prefix="cnnbook-results-")
    client = NotebookClient(nb, timeout=TIMEOUT_PER_CELL, kernel_name="python3", record_timing=False,
                            resources={"metadata": {"path": str(path.parent.resolve())}})
    failed = None
    with environment(**kernel_env):
        start = time.perf_counter()
        try:
            client.execute()
        except BaseException as err:  # noqa: BLE001 - written aside, then raised again
            failed = err
    duration = time.perf_counter() - start
    device = default_device()
    coalesce_streams(nb)
    from .results import profile_dir

    # the record this execution wrote (a copy executed elsewhere wrote it in its own temporary folder)
    records = Path(kernel_env["CNNBOOK_RESULTS"]) if "CNNBOOK_RESULTS" in kernel_env else profile_dir(profile)
    precision = run_precision(path, records)
    nb.metadata["cnnbook"] = dict(
        profile=profile, device=device.type, device_name=device_name(device),
        precision=precision if device.type == "cpu" else None,
        duration_s=round(duration, 1), code_sha256=code_hash(nb), settings_sha256=settings_hash(nb, "cpu"),
        cnnbook_sha256=package_hash(), executed=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        versions=versions(),
    )
    if failed is not None:
        nbformat.write(nb, failed_path(path, output))
        # nbclient answers Ctrl-C or SIGTERM by shutting the kernel down, so the cell fails as if the
        # kernel had died; a stop request must stop the whole run, not only this chapter
        if getattr(client, "_async_cleanup_kernel_future", None) is not None \
                and not isinstance(failed, KeyboardInterrupt):
            raise KeyboardInterrupt("stopped by Ctrl-C or a termination signal") from failed
        raise failed
    nbformat.write(nb, Path(output) if output else path)
    if profile == "cpu" and output is None and path.resolve().parent == chapters_dir().resolve():
        # the book's own run of a chapter: the time Colab's CPU warning quotes
        record_chapter_time(path, duration, device_name(device), precision)
    return duration


def failed_path(path: str | os.PathLike, output: str | os.PathLike | None = None) -> Path:
    """Where a failed or interrupted execution of ``path`` is written: ``output`` if given, else
    ``<name>.failed.ipynb`` beside the notebook, which stays as it was."""
    return Path(output) if output else Path(path).with_name(Path(path).stem + ".failed.ipynb")


def run_precision(path: Path, results: Path | None = None) -> str:
    """The arithmetic a chapter's execution used: ``$CNNBOOK_PRECISION`` when it forces one, else the
    precision of the record the chapter's run wrote (``auto`` chooses per machine); fp32 for a chapter that
    trains nothing."""
    forced = os.environ.get("CNNBOOK_PRECISION", "").strip().lower()
    if forced in ("fp32", "bf16"):
        return forced
    chapter = chapter_key(path)
    if chapter in NETWORKS:
        from .results import load_result

        record = load_result(chapter, results)
        if record is not None and record.precision:
            return record.precision
    return "fp32"


def record_chapter_time(path: Path, duration: float, device: str, precision: str) -> None:
    """Write the chapter's whole-notebook time in ``precision`` into ``cnnbook/chapter_times.json``, with
    the processor; a time measured on another processor is dropped, not mixed with this one's."""
    from .profiles import CHAPTER_TIMES, chapter_times, cpu_model
    from .results import write_json_atomically
    from .train import cpu_has_bf16

    times = chapter_times()
    entry = times.get(path.name, {})
    processor = cpu_model()
    seconds = dict(entry.get("seconds", {})) if entry.get("processor") == processor else {}
    seconds[precision] = round(duration, 1)
    times[path.name] = dict(chapter=chapter_key(path), device=device, processor=processor,
                            native_bf16=cpu_has_bf16(), seconds=dict(sorted(seconds.items())))
    write_json_atomically(Path(CHAPTER_TIMES), dict(sorted(times.items())))


def stale_reasons(path: str | os.PathLike, profile: str = "cpu") -> list[str]:
    """Why the committed outputs of a notebook cannot be trusted; empty when they are fresh."""
    nb = nbformat.read(Path(path), as_version=4)
    record = nb.metadata.get("cnnbook")
    if not record:
        return ["never executed by `make execute` (no metadata.cnnbook)"]
    reasons = []
    if record.get("code_sha256") != code_hash(nb):
        reasons.append("code cells changed since the outputs were made: re-execute it")
    if record.get("settings_sha256") != settings_hash(nb, "cpu"):
        reasons.append("its entry in the profile table (cnnbook/profiles.py) changed: re-execute it")
    if record.get("profile") != profile:
        reasons.append(f"executed in the {record.get('profile')!r} profile, not {profile!r}")
    code_cells = [c for c in nb.cells if c.cell_type == "code"]
    if any(c.get("execution_count") is None for c in code_cells):
        reasons.append("some code cells were not executed")
    if not any(c.get("outputs") for c in code_cells):
        reasons.append("no outputs")
    errors = [o for c in code_cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    if errors:
        reasons.append(f"an error in the outputs: {errors[0].get('ename')}: {errors[0].get('evalue')}")
    return reasons


def older_package(path: str | os.PathLike) -> bool:
    """Whether the notebook was executed with another version of the cnnbook package than this one."""
    record = nbformat.read(Path(path), as_version=4).metadata.get("cnnbook") or {}
    return record.get("cnnbook_sha256") != package_hash()


def find_chapter(path: str | os.PathLike) -> Path:
    """A chapter's notebook: ``path`` as given, else by its name in the book's ``chapters/`` folder (a
    checkout), else in the installed package, which ships the notebooks (``cnnbook/chapters/``): a notebook
    opened alone, as in Colab, finds the chapter it builds on offline and at the installed version."""
    from importlib.resources import files

    path = Path(path)
    shipped = files("cnnbook") / "chapters" / path.name
    for candidate in (path, chapters_dir() / path.name, shipped):
        if candidate.is_file():
            return Path(str(candidate))
    from .errors import CnnbookError

    raise CnnbookError(f"Chapter {path.name} is neither here, nor in the book's chapters/ folder, nor in the "
                       "installed cnnbook package.\nCheck the name (e.g. 03_lenet.ipynb), or reinstall cnnbook: "
                       "pip install git+https://github.com/cnnbook/cnnbook")


def chapter_code(path: str | os.PathLike, tag: str = "model") -> SimpleNamespace:
    """Run a chapter's code cells tagged ``tag`` and return the names they define.

    This is how tests, benchmarks and the comparison reuse a chapter's model without a copy:
    the model is written once, in the chapter, in cells tagged ``model``. ``path`` may be a bare
    notebook name ("09_resnet.ipynb"): see :func:`find_chapter`.
    """
    path = find_chapter(path)
    nb = nbformat.read(path, as_version=4)
    namespace: dict = {"__name__": f"chapter_{Path(path).stem}"}
    cells = [c for c in nb.cells if c.cell_type == "code" and tag in c.get("metadata", {}).get("tags", [])]
    if not cells:
        raise LookupError(f"{path} has no code cell tagged {tag!r}.")
    for cell in cells:
        exec(compile(cell.source, f"{path}[{tag}]", "exec"), namespace)  # noqa: S102 - our own notebooks
    return SimpleNamespace(**{k: v for k, v in namespace.items() if not k.startswith("__")})


# The chapters that train a network: results key -> (notebook, how the chapter builds the network it trains
# from its own code and the profile's settings). The builders are the chapters' own functions, run by
# chapter_code; a test checks that each line builds the network of the chapter's results record.
NETWORKS = {
    "training": ("02_training_a_cnn.ipynb", lambda code, S: code.tiny_cnn(S.model["width"])),
    "lenet": ("03_lenet.ipynb", lambda code, S: code.lenet(1, 10, **S.model)),
    "alexnet": ("04_alexnet.ipynb", lambda code, S: code.alexnet(1, 10, image_size=S.resize or 28, **S.model)),
    "vgg": ("05_vgg.ipynb", lambda code, S: code.vgg(1, 10, image_size=S.resize or 28, **S.model)),
    "nin": ("06_nin.ipynb", lambda code, S: code.nin(in_channels=1, num_classes=10, widths=S.model["widths"],
                                                     first_conv=S.model["first_conv"])),
    "googlenet": ("07_googlenet.ipynb", lambda code, S: code.googlenet(in_channels=1, num_classes=10, **S.model)),
    "batchnorm": ("08_batch_norm.ipynb", lambda code, S: code.with_batch_norm(  # chapter 3's LeNet
        chapter_code(chapters_dir() / "03_lenet.ipynb").lenet(1, 10, **S.model))),
    "resnet": ("09_resnet.ipynb", lambda code, S: code.resnet(in_channels=1, num_classes=10, **S.model)),
    "densenet": ("10_densenet.ipynb", lambda code, S: code.densenet(in_channels=1, num_classes=10, **S.model)),
    "speedrun": ("12_speedrun.ipynb", lambda code, S: code.speedrun_net(**S.model)),
}


def chapter_key(path: str | os.PathLike) -> str | None:
    """The results key of the chapter a notebook is ("09_resnet.ipynb" -> "resnet"); None for a chapter
    that trains no network of its own."""
    return next((key for key, (notebook, _) in NETWORKS.items() if notebook == Path(path).name), None)


def chapters_dir() -> Path:
    """The book's ``chapters/`` folder (next to the package in a checkout)."""
    return Path(__file__).resolve().parents[1] / "chapters"


def build_network(chapter: str, profile: str = "cpu"):
    """The network chapter ``chapter`` (a results key, e.g. ``"resnet"``) trains in ``profile``, built by
    the chapter's own code (the notebooks of a checkout, or those installed with the package)."""
    from .profiles import settings

    if chapter not in NETWORKS:
        raise KeyError(f"No network for {chapter!r}; chapters with one: {', '.join(NETWORKS)}.")
    notebook, build = NETWORKS[chapter]
    return build(chapter_code(chapters_dir() / notebook), settings(chapter, profile))


def resolve_notebooks(names: list[str]) -> list[str]:
    """Each name as a notebook path: a file that exists, or a chapter of the book named by its number or
    part of its file name ("05", "vgg", "05_vgg"). A name that is neither stops before anything runs."""
    chapters = sorted(chapters_dir().glob("*.ipynb"))
    paths = []
    for name in names:
        if Path(name).is_file():
            paths.append(name)
            continue
        matches = [p for p in chapters if p.name.startswith(f"{name}_") or p.stem == name
                   or (len(name) > 2 and name in p.stem)]
        if len(matches) != 1:
            found = f"{len(matches)} chapters match it" if matches else "no such file or chapter"
            raise SystemExit(f"error: {name!r}: {found}. Give a notebook's path or a chapter's number, "
                             f"e.g. chapters/05_vgg.ipynb, 05 or vgg.")
        paths.append(str(matches[0].relative_to(Path.cwd()) if matches[0].is_relative_to(Path.cwd())
                         else matches[0]))
    return paths


def main(argv: list[str] | None = None) -> int:
    from .errors import CnnbookError

    parser = argparse.ArgumentParser(prog="python -m cnnbook.book", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("execute", "check"))
    parser.add_argument("notebooks", nargs="+")
    parser.add_argument("--profile", default=None, help="default: $CNNBOOK_PROFILE, else by device")
    parser.add_argument("--output", default=None,
                        help="execute: write the executed notebook here instead of in place (one notebook only)")
    parser.add_argument("--output-dir", default=None,
                        help="execute: write the executed notebooks into this folder instead of in place")
    args = parser.parse_args(argv)
    args.notebooks = resolve_notebooks(args.notebooks)
    if args.output and (args.command != "execute" or len(args.notebooks) != 1):
        parser.error("--output works with `execute` and a single notebook")
    if args.output_dir:
        Path(args.output_dir).mkdir(parents=True, exist_ok=True)
    try:  # before any notebook is touched
        profile = check_profile(args.profile) if args.command == "execute" else (args.profile or "cpu")
    except CnnbookError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.command == "execute" and profile == "cpu" and not (args.output or args.output_dir):
        from .profiles import default_device

        device = default_device().type
        if device != "cpu":  # the book's cpu outputs, records and weights are a CPU's
            print(f"error: this machine would train the cpu profile on {device}, but the book's "
                  "cpu outputs, records and shipped weights come from a CPU run.\nExecute on a machine "
                  "without a GPU, or write the notebooks elsewhere with --output-dir.", file=sys.stderr)
            return 2
    failed = 0
    for path in args.notebooks:
        if args.command == "execute":
            print(f"executing {path} ({profile} profile) ...", flush=True)
            output = args.output or (Path(args.output_dir) / Path(path).name if args.output_dir else None)
            try:
                print(f"  done in {execute(path, profile, output):.0f} s", flush=True)
            except KeyboardInterrupt:  # Ctrl-C or SIGTERM: stop here, the chapters after it are not run
                print(f"  STOPPED (the notebook is unchanged; the interrupted run is in "
                      f"{failed_path(path, output)}); "
                      "the chapters after it were not run.", flush=True)
                return 130
            except Exception as err:  # noqa: BLE001 - report every failed chapter, then fail
                failed += 1
                last = ANSI.sub("", str(err)).strip().splitlines() or [""]
                print(f"  FAILED: {type(err).__name__}: {last[-1]}\n  (the notebook is unchanged; the failed "
                      f"run is in {failed_path(path, output)})", flush=True)
        else:
            reasons = stale_reasons(path, profile)
            failed += bool(reasons)
            note = "" if reasons or not older_package(path) else " (executed with an older cnnbook)"
            print(f"{path}: {'; '.join(reasons) or 'fresh'}{note}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
