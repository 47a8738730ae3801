"""Chapter 5 (VGG): the chapter's model, checked against torchvision and for every profile's form."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from cnnbook import count_params, settings
from cnnbook.book import chapter_code
from cnnbook.profiles import PROFILE_NAMES

CHAPTER = Path(__file__).resolve().parents[1] / "chapters" / "05_vgg.ipynb"


@pytest.fixture(scope="module")
def code():
    return chapter_code(CHAPTER)


@pytest.mark.parametrize("name, expected", [("vgg11", 132_863_336), ("vgg16", 138_357_544)])
def test_paper_configuration_matches_torchvision(code, name, expected):
    torchvision = pytest.importorskip("torchvision")
    net = code.vgg(config=name)
    assert count_params(net) == expected
    reference = getattr(torchvision.models, name)(weights=None)
    assert count_params(net) == count_params(reference)
    # the same layers in the same order: the parameter shapes agree one by one
    assert [p.shape for p in net.parameters()] == [p.shape for p in reference.parameters()]


def test_paper_vgg11_maps_an_imagenet_image_to_1000_scores(code):
    net = code.vgg().eval()  # the defaults: the paper's VGG-11
    with torch.no_grad():
        assert net(torch.zeros(1, 3, 224, 224)).shape == (1, 1000)


@pytest.mark.parametrize("profile", PROFILE_NAMES)
def test_fashion_mnist_form_of_each_profile_trains(code, profile):
    S = settings("vgg", profile)
    side = S.resize or 28
    m = S.model
    net = code.vgg(1, 10, image_size=side, **m)
    X = torch.randn(2, 1, side, side)
    out = net(X)
    assert out.shape == (2, 10)
    out.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())


def test_cpu_form_is_deeper_than_alexnets():
    S = settings("vgg", "cpu")
    from cnnbook.book import build_network
    net = build_network("vgg", "cpu")
    layers = sum(isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)) for m in net.modules())
    assert layers > 8, f"the trained VGG has {layers} weight layers, AlexNet 8"


@pytest.mark.parametrize("name, right, wrong", [
    ("vgg/why-double-channels", "a", "b"), ("vgg/smallest-input", "a", "b")])
def test_why_exercises(name, right, wrong):
    from cnnbook.exercises import check

    assert check(name, right) and not check(name, wrong)


def test_block_exercise_accepts_the_chapter_block_and_rejects_wrong_ones(code):
    from cnnbook.exercises import check

    assert check("vgg/block", lambda i, o, n: code.vgg_block(i, [o] * n))
    assert not check("vgg/block", lambda i, o, n: code.vgg_block(i, [o] * (n + 1)))
    assert not check("vgg/block", lambda i, o, n: torch.nn.Sequential(*code.vgg_block(i, [o] * n)[:-1]))
    assert not check("vgg/block", None)
