"""The trained weights shipped with the package: one file per chapter and a manifest of checksums.

A chapter's cpu-profile run saves its trained network here (:func:`save`); with the skip-training switch a
chapter loads it instead of training (:func:`load`), after checking the file's SHA-256 and that the
chapter's network has the same layers. The files are plain ``state_dict`` s written by ``torch.save`` and
read with ``torch.load(..., map_location="cpu", weights_only=True)``, which unpickles tensors only, never code.

    weights/<chapter>.pt      the state_dict (CPU, float32, contiguous)
    weights/manifest.json     {chapter: {"sha256", "bytes", "layers": [[name, shape], ...], "record"}}

``CNNBOOK_WEIGHTS_DIR`` points at another folder (tests, development).
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .errors import CnnbookError

WEIGHTS_DIR = Path(__file__).parent / "weights"  # shipped inside the package
MANIFEST = "manifest.json"


class ShippedWeightsError(CnnbookError):
    """The shipped weights are missing, damaged, or do not fit the network."""


def weights_dir() -> Path:
    """Where the weights are: ``$CNNBOOK_WEIGHTS_DIR`` if set, else the package's own folder."""
    return Path(os.environ.get("CNNBOOK_WEIGHTS_DIR") or WEIGHTS_DIR)


def sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file, hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def manifest(directory: str | os.PathLike | None = None) -> dict[str, dict[str, Any]]:
    """The manifest: chapter -> its file's checksum, size, layers and results record ({} if none)."""
    path = Path(directory or weights_dir()) / MANIFEST
    return json.loads(path.read_text()) if path.is_file() else {}


def available() -> list[str]:
    """The chapters with shipped weights (in the manifest, with their file present)."""
    directory = weights_dir()
    return [chapter for chapter in manifest(directory) if (directory / f"{chapter}.pt").is_file()]


def layers(state: dict[str, torch.Tensor]) -> list[list]:
    """``[[name, shape], ...]`` of a state_dict, in order."""
    return [[name, list(tensor.shape)] for name, tensor in state.items()]


def _write_atomically(path: Path, write) -> None:
    """Write through a temporary file in the same folder, then rename it over ``path``."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, 0o644)  # mkstemp makes it private; the package's files are readable by all
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def save(net: nn.Module, chapter: str, record: dict) -> str:
    """Ship ``net``'s trained weights as chapter ``chapter``'s, with its results ``record``.

    Writes ``<weights dir>/<chapter>.pt`` (the state_dict as CPU float32, contiguous) and the chapter's
    entry of the manifest, both atomically.

    Args:
        net: the trained network.
        chapter: the results key, e.g. ``"resnet"``.
        record: the chapter's results record as a JSON-safe dict.

    Returns:
        The SHA-256 of the weights file.
    """
    directory = weights_dir()
    directory.mkdir(parents=True, exist_ok=True)
    state = {name: (tensor.detach().to("cpu", torch.float32) if tensor.is_floating_point()
                    else tensor.detach().cpu()).contiguous().clone()
             for name, tensor in net.state_dict().items()}
    path = directory / f"{chapter}.pt"
    _write_atomically(path, lambda file: torch.save(state, file))
    checksum = sha256(path)
    entries = manifest(directory)
    entries[chapter] = {"sha256": checksum, "bytes": path.stat().st_size, "layers": layers(state),
                        "record": json.loads(json.dumps(record))}
    text = json.dumps(dict(sorted(entries.items())), indent=1) + "\n"
    _write_atomically(directory / MANIFEST, lambda file: file.write(text.encode()))
    return checksum


def first_difference(expected: list[list], actual: list[list]) -> str | None:
    """The first layer where two ``[[name, shape], ...]`` lists differ, in words; None if equal."""
    for (name, shape), (other, other_shape) in zip(expected, actual):
        if name != other:
            return f"the shipped network has {name} {tuple(shape)} where this one has {other} {tuple(other_shape)}"
        if list(shape) != list(other_shape):
            return f"{name} is {tuple(shape)} in the shipped network but {tuple(other_shape)} here"
    if len(expected) > len(actual):
        name, shape = expected[len(actual)]
        return f"this network has no {name} {tuple(shape)}"
    if len(actual) > len(expected):
        name, shape = actual[len(expected)]
        return f"the shipped network has no {name} {tuple(shape)}"
    return None


def load(net: nn.Module, chapter: str) -> dict:
    """Load chapter ``chapter``'s shipped weights into ``net`` and return the run's results record.

    Checks the file's SHA-256 against the manifest and that ``net`` has the same layers (names and
    shapes) as the shipped network before loading anything.

    Raises:
        ShippedWeightsError: no shipped weights for the chapter, a damaged file, or different layers.
    """
    directory = weights_dir()
    entry = manifest(directory).get(chapter)
    path = directory / f"{chapter}.pt"
    if entry is None or not path.is_file():
        shipped = ", ".join(available()) or "none"
        raise ShippedWeightsError(
            f"No shipped weights for {chapter!r} in {directory} (shipped: {shipped}): train it instead.")
    if sha256(path) != entry["sha256"]:
        raise ShippedWeightsError(
            f"The shipped weights {path} do not match their checksum: the file is damaged, reinstall cnnbook.")
    difference = first_difference(entry["layers"], layers(net.state_dict()))
    if difference:
        raise ShippedWeightsError(
            f"This network differs from the {chapter!r} network that was trained ({difference}): "
            "train it, the shipped weights are for the book's network.")
    state = torch.load(path, map_location="cpu", weights_only=True)
    net.load_state_dict(state)
    return entry["record"]
