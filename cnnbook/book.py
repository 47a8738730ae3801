"""Executing the chapters and checking that their committed outputs are fresh.

Each executed notebook records in ``metadata.cnnbook`` how it was made: the profile, the
device, how long it took, and a SHA-256 of its code cells. ``stale_reasons`` compares that
record with the notebook as it is now.

    python -m cnnbook.book execute chapters/*.ipynb     # re-execute in place (profile by device)
    python -m cnnbook.book check chapters/*.ipynb       # list chapters with stale or failed outputs
"""
from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

import nbformat

TIMEOUT_PER_CELL = 1200  # seconds


def code_hash(nb: nbformat.NotebookNode) -> str:
    """SHA-256 of the notebook's code cells, in order (outputs and markdown excluded)."""
    digest = hashlib.sha256()
    for cell in nb.cells:
        if cell.cell_type == "code":
            digest.update(cell.source.encode())
            digest.update(b"\n\x00\n")
    return digest.hexdigest()


def package_hash() -> str:
    """SHA-256 of the cnnbook package's sources, recorded beside each run for information."""
    digest = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def execute(path: str | os.PathLike, profile: str, output: str | os.PathLike | None = None) -> float:
    """Run every cell of the notebook at ``path`` under ``profile`` and write it (in place by default).

    Returns:
        The execution time in seconds.

    Raises:
        nbclient.exceptions.CellExecutionError: a cell failed (the notebook is still written,
            with the error in its output, to ``output`` if given).
    """
    from nbclient import NotebookClient

    from .profiles import default_device
    from .results import versions
    from .train import device_name

    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    # The kernel inherits the environment: the profile, and no progress bars in saved outputs.
    kernel_env = {"CNNBOOK_PROFILE": profile, "CNNBOOK_PROGRESS": "0"}
    saved = {name: os.environ.get(name) for name in kernel_env}
    os.environ.update(kernel_env)
    client = NotebookClient(nb, timeout=TIMEOUT_PER_CELL, kernel_name="python3", record_timing=False,
                            resources={"metadata": {"path": str(path.parent.resolve())}})
    start = time.perf_counter()
    try:
        client.execute()
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        duration = time.perf_counter() - start
        device = default_device()
        nb.metadata["cnnbook"] = dict(
            profile=profile, device=device.type, device_name=device_name(device),
            duration_s=round(duration, 1), code_sha256=code_hash(nb), cnnbook_sha256=package_hash(),
            executed=datetime.now(timezone.utc).isoformat(timespec="seconds"), versions=versions(),
        )
        nbformat.write(nb, Path(output) if output else path)
    return duration


def stale_reasons(path: str | os.PathLike, profile: str = "cpu") -> list[str]:
    """Why the committed outputs of a notebook cannot be trusted; empty when they are fresh."""
    nb = nbformat.read(Path(path), as_version=4)
    record = nb.metadata.get("cnnbook")
    if not record:
        return ["never executed by `make execute` (no metadata.cnnbook)"]
    reasons = []
    if record.get("code_sha256") != code_hash(nb):
        reasons.append("code cells changed since the outputs were made: re-execute it")
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


def chapter_code(path: str | os.PathLike, tag: str = "model") -> SimpleNamespace:
    """Run a chapter's code cells tagged ``tag`` and return the names they define.

    This is how tests, benchmarks and the comparison reuse a chapter's model without a copy:
    the model is written once, in the chapter, in cells tagged ``model``.
    """
    nb = nbformat.read(Path(path), as_version=4)
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
    "lenet": ("03_lenet.ipynb", lambda code, S: code.lenet(1, 10, padding=2, **S.model)),
    "alexnet": ("04_alexnet.ipynb", lambda code, S: code.alexnet(1, 10, image_size=S.resize or 28, **S.model)),
    "vgg": ("05_vgg.ipynb", lambda code, S: code.vgg(
        code.VGG_CONFIGS[S.model["config"]], in_channels=1, num_classes=10, image_size=S.resize or 28,
        num_stages=S.model["num_stages"], width_divisor=S.model["width_divisor"], fc_units=S.model["fc_units"])),
    "nin": ("06_nin.ipynb", lambda code, S: code.nin(in_channels=1, num_classes=10, widths=S.model["widths"],
                                                     first_conv=S.model["first_conv"])),
    "googlenet": ("07_googlenet.ipynb", lambda code, S: code.googlenet(in_channels=1, num_classes=10, **S.model)),
    "batchnorm": ("08_batch_norm.ipynb", lambda code, S: code.bn_lenet(1, 10, **S.model)),
    "resnet": ("09_resnet.ipynb", lambda code, S: code.resnet(in_channels=1, num_classes=10, **S.model)),
    "densenet": ("10_densenet.ipynb", lambda code, S: code.densenet(in_channels=1, num_classes=10, **S.model)),
}


def chapters_dir() -> Path:
    """The book's ``chapters/`` folder (next to the package in a checkout)."""
    return Path(__file__).resolve().parents[1] / "chapters"


def build_network(chapter: str, profile: str = "cpu"):
    """The network chapter ``chapter`` (a results key, e.g. ``"resnet"``) trains in ``profile``, built by
    the chapter's own code. Needs the book's notebooks (a checkout of the repository)."""
    from .profiles import settings

    if chapter not in NETWORKS:
        raise KeyError(f"No network for {chapter!r}; chapters with one: {', '.join(NETWORKS)}.")
    notebook, build = NETWORKS[chapter]
    return build(chapter_code(chapters_dir() / notebook), settings(chapter, profile))


def main(argv: list[str] | None = None) -> int:
    from .profiles import current_profile

    parser = argparse.ArgumentParser(prog="python -m cnnbook.book", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("execute", "check"))
    parser.add_argument("notebooks", nargs="+")
    parser.add_argument("--profile", default=None, help="default: $CNNBOOK_PROFILE, else by device")
    parser.add_argument("--output", default=None,
                        help="execute: write the executed notebook here instead of in place (one notebook only)")
    args = parser.parse_args(argv)
    if args.output and (args.command != "execute" or len(args.notebooks) != 1):
        parser.error("--output works with `execute` and a single notebook")
    profile = args.profile or current_profile()
    failed = 0
    for path in args.notebooks:
        if args.command == "execute":
            print(f"executing {path} ({profile} profile) ...", flush=True)
            try:
                print(f"  done in {execute(path, profile, args.output):.0f} s", flush=True)
            except Exception as err:  # noqa: BLE001 - report every failed chapter, then fail
                failed += 1
                print(f"  FAILED: {type(err).__name__}: {str(err).strip().splitlines()[-1]}", flush=True)
        else:
            reasons = stale_reasons(path, profile)
            failed += bool(reasons)
            print(f"{path}: {'; '.join(reasons) or 'fresh'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
