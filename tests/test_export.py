"""The ONNX export of each chapter's network computes what PyTorch computes (probabilities within 1e-4,
same top class), from the raw pixels of test images."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from cnnbook import export, weights
from cnnbook.book import NETWORKS
from cnnbook.data import MEAN, STD

ort = pytest.importorskip("onnxruntime")
TOLERANCE = 1e-4


def largest_difference(chapter: str, path, images: torch.Tensor, labels=None) -> float:
    """Run the exported model and PyTorch on ``images`` (uint8 N x 28 x 28); return the largest difference of
    the probabilities, after checking that the top classes agree."""
    net, record = export.trained_network(chapter)
    with torch.no_grad():
        X = (images.unsqueeze(1).float() / 255 - MEAN) / STD
        scores = net(X) + (net(X.flip(-1)) if record.get("tta") else 0)  # chapter 12 adds the mirrored view
        expected = torch.softmax(scores, dim=1).numpy()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    pixels = images.unsqueeze(1).float().numpy()
    probabilities, features = session.run(None, {"pixels": pixels})
    assert probabilities.shape == (len(images), 10)
    assert features.shape[:2] == (len(images), export.Pixels2Probabilities(net).first_conv.out_channels)
    np.testing.assert_allclose(probabilities.sum(1), 1, atol=1e-5)
    assert (probabilities.argmax(1) == expected.argmax(1)).all(), f"{chapter}: a different top class"
    return float(np.abs(probabilities - expected).max())


@pytest.fixture(scope="module")
def samples():
    images, labels, indices = export.sample_images()
    assert len(images) >= 20 and sorted(set(labels)) == list(range(10))
    return images


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory):
    """Every chapter's network after a few training steps, as stand-in shipped weights."""
    from tiny_weights import train_tiny

    folder = tmp_path_factory.mktemp("weights")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CNNBOOK_WEIGHTS_DIR", str(folder))
        train_tiny(steps=5)
    return folder


@pytest.mark.parametrize("chapter", list(NETWORKS))
def test_export_matches_pytorch(chapter, tiny_weights, samples, tmp_path, monkeypatch):
    monkeypatch.setenv("CNNBOOK_WEIGHTS_DIR", str(tiny_weights))
    info = export.export_network(chapter, tmp_path / f"{chapter}.onnx")
    assert info["sha256"] == weights.manifest()[chapter]["sha256"]
    assert largest_difference(chapter, tmp_path / f"{chapter}.onnx", samples) <= TOLERANCE


def test_site_files(tiny_weights, tmp_path, monkeypatch):
    monkeypatch.setenv("CNNBOOK_WEIGHTS_DIR", str(tiny_weights))
    report = export.write_site_files(tmp_path)
    assert not report["skipped"] and not report["missing_runtime"], report
    data = json.loads((tmp_path / "try-data.json").read_text())
    assert [n["key"] for n in data["networks"]] == list(NETWORKS)
    assert len(data["samples"]) == 30 and data["classes"][0] == "T-shirt/top"
    for name in export.ORT_FILES:
        assert (tmp_path / "ort" / name).is_file(), name
    assert (tmp_path / "try-data.json").stat().st_size < 100_000


def test_an_edited_network_is_left_out_with_the_reason(tiny_weights, tmp_path, monkeypatch):
    monkeypatch.setenv("CNNBOOK_WEIGHTS_DIR", str(tmp_path / "w"))
    weights.save(torch.nn.Sequential(torch.nn.Conv2d(1, 3, 3)), "lenet", {})
    report = export.write_site_files(tmp_path / "site")
    assert list(report["skipped"]) == ["lenet"]
    assert "train it, the shipped weights are for the book's network" in report["skipped"]["lenet"]


def test_shipped_networks_match_pytorch(samples, tmp_path, monkeypatch):
    """Every network shipped in cnnbook/weights, exported as the site build does."""
    monkeypatch.delenv("CNNBOOK_WEIGHTS_DIR", raising=False)
    shipped = weights.available()
    if not shipped:
        pytest.skip("no weights shipped yet in cnnbook/weights (the chapters' cpu-profile runs save them)")
    differences = {}
    for chapter in shipped:
        export.export_network(chapter, tmp_path / f"{chapter}.onnx")
        differences[chapter] = largest_difference(chapter, tmp_path / f"{chapter}.onnx", samples)
    print("largest probability difference, ONNX vs PyTorch:", differences)
    assert max(differences.values()) <= TOLERANCE, differences
