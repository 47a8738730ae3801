"""The CPU stand-in for a GPU (tests/device_guard.py): it must raise where CUDA raises, in the ways chapters
have broken on a GPU and in one more planted here, and stay quiet on cnnbook's own training path."""
from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
import torch
from torch import nn

import cnnbook
import device_guard
from cnnbook import book
from device_guard import DEVICE, FakeDeviceMode

ROOT = Path(__file__).resolve().parents[1]


def small_net() -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(4),
                         nn.Flatten(), nn.Linear(4 * 7 * 7, 10))


def test_mixing_device_and_plain_tensors_fails_as_on_a_gpu():
    with FakeDeviceMode():
        X = torch.randn(8, 1, 28, 28).to(DEVICE)
        assert X.device == DEVICE and (X * 2).device == DEVICE
        net = small_net()
        with pytest.raises(RuntimeError, match="same device"):  # chapter 8: a network built in the cell
            net(X)
        net.to(DEVICE, memory_format=torch.channels_last)
        assert all(p.device == DEVICE for p in net.parameters())
        with pytest.raises(RuntimeError, match="same device"):  # chapter 6: torch.zeros for a trained net
            net(torch.zeros(1, 1, 28, 28))
        with pytest.raises(TypeError, match="numpy"):  # planted: a device tensor handed to numpy/matplotlib
            net(X).detach().numpy()
        assert net(X).detach().cpu().numpy().shape == (8, 10)  # moved back first: fine
        assert (net(X) * torch.tensor(2.0)).device == DEVICE  # a 0-d CPU tensor is a scalar, as on CUDA
        net(torch.zeros(1, 1, 28, 28, device=X.device))  # made on the device: fine
        host = X.cpu()  # a copy on the host, as on a GPU; X itself stays on the device
        assert host.device.type == "cpu" and host.device != DEVICE and X.device == DEVICE
        assert (X + X).device == DEVICE
        with pytest.raises(TypeError, match="numpy"):
            X.numpy()
        plain = torch.ones(2, 3)
        moved = plain.to(DEVICE)  # the original stays a host tensor
        assert moved.device == DEVICE and plain.device != DEVICE


def test_cnnbooks_own_training_path_runs_on_the_stand_in(tiny_data, monkeypatch):
    monkeypatch.setenv("CNNBOOK_PRECISION", "fp32")
    S = cnnbook.Settings(chapter="test", profile="smoke", num_epochs=1, batch_size=32, lr=0.05)
    with FakeDeviceMode() as mode:
        net = small_net()
        result = cnnbook.train(net, tiny_data, S, device=DEVICE, plot=False)
        assert next(net.parameters()).device == DEVICE and mode.active
        probs, labels = cnnbook.predict(net, tiny_data)
        assert probs.device.type == "cpu" and probs.device != DEVICE  # predict hands back plain tensors
        assert cnnbook.evaluate(net, tiny_data, split="val") == pytest.approx(result.val_acc, abs=1e-6)


def test_a_planted_mix_fails_a_notebook_run(tmp_path, monkeypatch):
    """In a kernel started with the guard's startup file, a cell that feeds a CPU batch to a network on the
    device fails (the way every chapter's smoke execution is checked)."""
    monkeypatch.setenv("IPYTHONDIR", str(device_guard.startup_dir(tmp_path / "ipython")))
    monkeypatch.setenv("CNNBOOK_RESULTS", str(tmp_path / "results"))
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import torch, cnnbook\nfrom torch import nn\ndevice = cnnbook.setup()\n"
        "net = nn.Linear(4, 2).to(device)\nprint(device, next(net.parameters()).device)\n"
        "net(torch.ones(3, 4))  # planted: the batch was never moved")])
    path = tmp_path / "planted.ipynb"
    nbformat.write(nb, path)
    with pytest.raises(Exception, match="same device"):
        book.execute(path, "smoke")
    out = nbformat.read(book.failed_path(path), as_version=4)
    assert "cpu:0 cpu:0" in out.cells[0].outputs[0]["text"]  # the kernel's device was the stand-in


def test_every_torch_load_says_where_to_load():
    """A checkpoint saved on a GPU loads onto a GPU unless map_location says otherwise: every torch.load in
    the package, the scripts and the chapters names it."""
    sources = [(p.name, p.read_text()) for p in [*ROOT.glob("cnnbook/**/*.py"), *ROOT.glob("scripts/*.py"),
                                                  *ROOT.glob("benchmarks/*.py")]]
    for path in sorted(ROOT.glob("chapters/*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        sources += [(path.name, c.source) for c in nb.cells if c.cell_type == "code"]
    calls = [(name, m.group(0)) for name, text in sources for m in re.finditer(r"torch\.load\([^)]*\)", text)]
    assert calls, "no torch.load found: the pattern is wrong"
    assert all("map_location" in call for _, call in calls), [c for c in calls if "map_location" not in c[1]]
