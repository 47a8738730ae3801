"""Chapter 6 (Network in Network): the chapter's model, against a count derived here, and every profile's form."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from cnnbook import count_params, settings
from cnnbook.book import chapter_code
from cnnbook.profiles import PROFILE_NAMES

CHAPTER = Path(__file__).resolve().parents[1] / "chapters" / "06_nin.ipynb"


@pytest.fixture(scope="module")
def code():
    return chapter_code(CHAPTER)


def conv(c_in: int, c_out: int, k: int) -> int:
    return k * k * c_in * c_out + c_out


def mlpconv(c_in: int, c_out: int, k: int) -> int:
    return conv(c_in, c_out, k) + 2 * conv(c_out, c_out, 1)


def test_imagenet_configuration_parameter_count(code):
    # blocks: 11x11 3->96, 5x5 96->256, 3x3 256->384, 3x3 384->1000, each + two 1x1; pools and GAP have none
    expected = mlpconv(3, 96, 11) + mlpconv(96, 256, 5) + mlpconv(256, 384, 3) + mlpconv(384, 1000, 3)
    assert expected == 7_439_608
    assert count_params(code.nin()) == expected


def test_imagenet_configuration_shapes(code):
    net = code.nin().eval()
    with torch.no_grad():
        assert net[:1](torch.zeros(1, 3, 224, 224)).shape == (1, 96, 54, 54)
        assert net[:6](torch.zeros(1, 3, 224, 224)).shape == (1, 384, 5, 5)
        assert net(torch.zeros(1, 3, 224, 224)).shape == (1, 1000)


@pytest.mark.parametrize("profile", PROFILE_NAMES)
def test_fashion_mnist_form_of_each_profile_trains(code, profile):
    S = settings("nin", profile)
    side = S.resize or 28
    net = code.nin(in_channels=1, num_classes=10, **S.model)
    X = torch.randn(2, 1, side, side)
    out = net(X)
    assert out.shape == (2, 10)
    out.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())


@pytest.mark.parametrize("name, right, wrong", [
    ("nin/block-params", 746_240, 614_656), ("nin/avgpool5-on-6", 25, 36),
    ("nin/why-1x1", "b", "a"), ("nin/why-no-last-relu", "a", "b")])
def test_exercises_accept_right_and_reject_wrong(name, right, wrong):
    from cnnbook.exercises import check

    assert check(name, right) and not check(name, wrong)


def test_block_exercise_accepts_the_chapter_block_and_rejects_wrong_ones(code):
    from cnnbook.exercises import check

    assert check("nin/block", lambda i, o, k, p: code.nin_block(i, o, k, padding=p))
    assert not check("nin/block", lambda i, o, k, p: code.nin_block(i, o, k, padding=p)[:-1])
    assert not check("nin/block", None)


def test_avgpool5_on_6x6_averages_only_the_top_left_window():
    maps = torch.randn(1, 3, 6, 6)
    out = torch.nn.AvgPool2d(5)(maps)
    assert out.shape == (1, 3, 1, 1)
    assert torch.allclose(out, maps[..., :5, :5].mean(dim=(-2, -1), keepdim=True))
