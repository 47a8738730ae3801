"""Shipped weights: saved and loaded back exactly, checked before loading, with errors that say what to do."""
from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from cnnbook import weights
from cnnbook.errors import CnnbookError


def small_net(width: int = 4) -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, width, 3), nn.BatchNorm2d(width), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, 10))


@pytest.fixture
def weights_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNBOOK_WEIGHTS_DIR", str(tmp_path))
    return tmp_path


def test_save_then_load_gives_the_same_network_and_record(weights_dir):
    torch.manual_seed(0)
    net = small_net().to(memory_format=torch.channels_last)
    net(torch.randn(8, 1, 28, 28))  # BatchNorm's running statistics move
    record = {"test_acc": 0.9, "settings": {"lr": 0.1}}
    checksum = weights.save(net, "lenet", record)

    entry = json.loads((weights_dir / "manifest.json").read_text())["lenet"]
    assert entry["sha256"] == checksum == weights.sha256(weights_dir / "lenet.pt")
    assert entry["bytes"] == (weights_dir / "lenet.pt").stat().st_size
    assert entry["layers"][0] == ["0.weight", [4, 1, 3, 3]]
    assert not list(weights_dir.glob("*.tmp")), "a temporary file was left behind"

    fresh = small_net()
    assert weights.load(fresh, "lenet") == record
    for (name, a), b in zip(net.state_dict().items(), fresh.state_dict().values()):
        assert torch.equal(a, b), name
    assert weights.available() == ["lenet"]


def test_the_file_holds_only_tensors(weights_dir):
    weights.save(small_net(), "lenet", {})
    state = torch.load(weights_dir / "lenet.pt", weights_only=True)
    assert all(t.is_contiguous() and t.device.type == "cpu" for t in state.values())
    assert all(t.dtype == torch.float32 for t in state.values() if t.is_floating_point())


def test_saving_another_chapter_keeps_the_first(weights_dir):
    weights.save(small_net(), "lenet", {"a": 1})
    weights.save(small_net(8), "resnet", {"b": 2})
    assert sorted(weights.available()) == ["lenet", "resnet"]
    assert weights.load(small_net(), "lenet") == {"a": 1}


def test_missing_weights_say_so(weights_dir):
    with pytest.raises(weights.ShippedWeightsError, match="No shipped weights for 'vgg'.*train it"):
        weights.load(small_net(), "vgg")
    assert issubclass(weights.ShippedWeightsError, CnnbookError)


def test_a_damaged_file_is_refused(weights_dir):
    weights.save(small_net(), "lenet", {})
    data = bytearray((weights_dir / "lenet.pt").read_bytes())
    data[-100] ^= 0xFF
    (weights_dir / "lenet.pt").write_bytes(bytes(data))
    with pytest.raises(weights.ShippedWeightsError, match="checksum.*reinstall cnnbook"):
        weights.load(small_net(), "lenet")


def test_an_edited_network_is_refused_naming_the_first_different_layer(weights_dir):
    weights.save(small_net(4), "lenet", {})
    with pytest.raises(weights.ShippedWeightsError,
                       match=r"0\.weight is \(4, 1, 3, 3\) in the shipped network but \(8, 1, 3, 3\).*"
                             r"train it, the shipped weights are for the book's network"):
        weights.load(small_net(8), "lenet")
    longer = nn.Sequential(*small_net(4), nn.Linear(10, 10))
    with pytest.raises(weights.ShippedWeightsError, match="shipped network has no 6.weight"):
        weights.load(longer, "lenet")
    untouched = small_net(4)
    before = {k: v.clone() for k, v in untouched.state_dict().items()}
    with pytest.raises(weights.ShippedWeightsError):
        weights.load(nn.Sequential(nn.Conv2d(1, 4, 5)), "lenet")
    assert all(torch.equal(before[k], v) for k, v in untouched.state_dict().items())


def test_shipped_weights_fit_the_book_networks(monkeypatch):
    """Every chapter whose weights ship loads them into the network the chapter builds."""
    monkeypatch.delenv("CNNBOOK_WEIGHTS_DIR", raising=False)
    shipped = weights.available()
    if not shipped:
        pytest.skip("no weights shipped yet in cnnbook/weights (the chapters' cpu-profile runs save them)")
    from cnnbook.book import build_network

    total = sum(weights.manifest()[c]["bytes"] for c in shipped)
    assert total <= 10_000_000, f"the shipped weights weigh {total:,} bytes"
    for chapter in shipped:
        record = weights.load(build_network(chapter), chapter)
        assert record.get("chapter", chapter) == chapter
