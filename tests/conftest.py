"""Shared fixtures: a tiny Fashion-MNIST-like data set made in memory, and IDX files written from it."""
from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import pytest
import torch

from cnnbook import data as fmnist
from cnnbook.data import FashionMNIST

ROOT = Path(__file__).resolve().parents[1]


def idx_bytes(array: torch.Tensor) -> bytes:
    """An uint8 tensor in the IDX format: magic (0, 0, 8, ndim), big-endian dims, the bytes."""
    header = bytes([0, 0, 8, array.dim()]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.numpy().tobytes()


def separable(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Images whose class is written in them: class c lights up a 4x4 block in row c // 5, column c % 5."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 10
    images = (torch.rand(n, 28, 28, generator=g) * 60).to(torch.uint8)
    for i, c in enumerate(labels.tolist()):
        r, col = 4 + 10 * (c // 5), 2 + 5 * (c % 5)
        images[i, r:r + 4, col:col + 4] = 250
    return images, labels


@pytest.fixture
def tiny_data() -> FashionMNIST:
    """A small separable data set on the CPU, shaped like Fashion-MNIST."""
    train_images, train_labels = separable(600, seed=1)
    test_images, test_labels = separable(200, seed=2)
    val_images, val_labels = separable(200, seed=3)
    return FashionMNIST(train_images, train_labels, test_images, test_labels, val_images=val_images,
                        val_labels=val_labels)


@pytest.fixture
def idx_dir(tmp_path, monkeypatch) -> Path:
    """The tiny data set written as the four (gzipped) IDX files, with FILES pointing at their checksums,
    and every other place cnnbook looks emptied, so only this folder can be found."""
    train_images, train_labels = separable(100, seed=1)
    test_images, test_labels = separable(50, seed=2)
    arrays = {
        "train-images-idx3-ubyte": train_images, "train-labels-idx1-ubyte": train_labels.to(torch.uint8),
        "t10k-images-idx3-ubyte": test_images, "t10k-labels-idx1-ubyte": test_labels.to(torch.uint8),
    }
    folder = tmp_path / "fixture"
    folder.mkdir()
    files = {}
    for name, array in arrays.items():
        raw = idx_bytes(array)
        (folder / f"{name}.gz").write_bytes(gzip.compress(raw))
        files[name] = (len(raw), hashlib.sha256(raw).hexdigest())
    monkeypatch.setattr(fmnist, "FILES", files)
    isolate_search(tmp_path, monkeypatch)
    fmnist._LOADED.clear()
    return folder


def isolate_search(tmp_path: Path, monkeypatch) -> None:
    """Point the cache and the system folder at empty places, unset CNNBOOK_DATA, cut the network."""
    monkeypatch.delenv("CNNBOOK_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(fmnist, "SYSTEM_DIR", tmp_path / "no-system-dir")
    monkeypatch.setattr(fmnist, "MIRROR", "http://127.0.0.1:9/")  # the discard port: refused at once


def assert_trains(net: torch.nn.Module, side: int = 28, batch: int = 2) -> None:
    """A forward pass of (batch, 1, side, side) gives (batch, 10) scores, and backward reaches every parameter."""
    out = net(torch.randn(batch, 1, side, side))
    assert out.shape == (batch, 10)
    out.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())


def assert_same_layers(net: torch.nn.Module, reference: torch.nn.Module) -> None:
    """The same parameter count as ``reference`` and the same layers in the same order (shapes one by one)."""
    assert sum(p.numel() for p in net.parameters()) == sum(p.numel() for p in reference.parameters())
    assert [p.shape for p in net.parameters()] == [p.shape for p in reference.parameters()]


@pytest.fixture(scope="session")
def exercise_runs():
    """scripts/exercise_runs.py as a module (it is a script, not part of the package)."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "scripts" / "exercise_runs.py"
    spec = importlib.util.spec_from_file_location("exercise_runs", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
