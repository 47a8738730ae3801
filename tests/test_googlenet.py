"""Chapter 7 (GoogLeNet): the chapter's model against a count derived here from the paper's table 1,
against torchvision's variant, and every profile's Fashion-MNIST form."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from cnnbook import count_params, settings
from cnnbook.book import chapter_code
from cnnbook.exercises import EXERCISES, check
from cnnbook.profiles import PROFILE_NAMES

CHAPTER = Path(__file__).resolve().parents[1] / "chapters" / "07_googlenet.ipynb"

# The paper's table 1, typed in here independently of the chapter:
# (in channels, 1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool proj) of blocks 3a ... 5b.
TABLE_1 = [
    (192, 64, 96, 128, 16, 32, 32), (256, 128, 128, 192, 32, 96, 64),
    (480, 192, 96, 208, 16, 48, 64), (512, 160, 112, 224, 24, 64, 64), (512, 128, 128, 256, 24, 64, 64),
    (512, 112, 144, 288, 32, 64, 64), (528, 256, 160, 320, 32, 128, 128),
    (832, 256, 160, 320, 32, 128, 128), (832, 384, 192, 384, 48, 128, 128),
]


@pytest.fixture(scope="module")
def code():
    return chapter_code(CHAPTER)


def conv(c_in: int, c_out: int, k: int, bias: bool = True) -> int:
    return k * k * c_in * c_out + (c_out if bias else 0)


def bn_conv(c_in: int, c_out: int, k: int) -> int:
    """A convolution without bias and its batch norm (scale and shift per channel)."""
    return conv(c_in, c_out, k, bias=False) + 2 * c_out


def inception(c_in, c1, c3r, c3, c5r, c5, pool, layer=conv, k5: int = 5) -> int:
    return (layer(c_in, c1, 1) + layer(c_in, c3r, 1) + layer(c3r, c3, 3) + layer(c_in, c5r, 1)
            + layer(c5r, c5, k5) + layer(c_in, pool, 1))


def test_paper_configuration_parameter_count(code):
    stem = conv(3, 64, 7) + conv(64, 64, 1) + conv(64, 192, 3)
    blocks = sum(inception(*row) for row in TABLE_1)
    head = 1024 * 1000 + 1000
    expected = stem + blocks + head
    assert expected == 6_998_552  # the table's rounded total is "about 6.8 million"
    assert count_params(code.googlenet()) == expected
    # each block's input is the previous block's output
    outputs = [c1 + c3 + c5 + pool for _, c1, _, c3, _, c5, pool in TABLE_1]
    assert [row[0] for row in TABLE_1[1:]] == outputs[:-1] and outputs[-1] == 1024


def test_torchvision_variant_matches_torchvision(code):
    torchvision = pytest.importorskip("torchvision")
    net = code.googlenet(batch_norm=True, k5=3, dropout=0.2)
    stem = bn_conv(3, 64, 7) + bn_conv(64, 64, 1) + bn_conv(64, 192, 3)
    blocks = sum(inception(*row, layer=bn_conv, k5=3) for row in TABLE_1)
    assert count_params(net) == stem + blocks + 1024 * 1000 + 1000 == 6_624_904
    reference = torchvision.models.googlenet(weights=None, aux_logits=False, init_weights=False)
    assert count_params(reference) == 6_624_904
    assert [p.shape for p in net.parameters()] == [p.shape for p in reference.parameters()]


def test_paper_configuration_shapes(code):
    net = code.googlenet().eval()
    X = torch.zeros(1, 3, 224, 224)
    expected = {"conv1": (64, 112, 112), "pool2": (192, 28, 28), "inception3a": (256, 28, 28),
                "inception3b": (480, 28, 28), "pool3": (480, 14, 14), "inception4e": (832, 14, 14),
                "inception5b": (1024, 7, 7), "fc": (1000,)}
    with torch.no_grad():
        for name, module in net.named_children():
            X = module(X)
            if name in expected:
                assert tuple(X.shape[1:]) == expected[name], name


@pytest.mark.parametrize("reduce", [True, False])
def test_inception_block_concatenates_its_branches(code, reduce):
    block = code.Inception(192, code.INCEPTION_TABLE["3a"], reduce=reduce)
    X = torch.randn(2, 192, 28, 28)
    branches = [getattr(block, f"branch{i}")(X) for i in range(1, 5)]
    assert [b.shape[1] for b in branches] == [64, 128, 32, 32]
    torch.testing.assert_close(block(X), torch.cat(branches, dim=1))
    assert block.out_channels == 256
    no_reduction = conv(192, 64, 1) + conv(192, 128, 3) + conv(192, 32, 5) + conv(192, 32, 1)
    assert count_params(block) == (inception(*TABLE_1[0]) if reduce else no_reduction)


@pytest.mark.parametrize("profile", PROFILE_NAMES)
def test_fashion_mnist_form_of_each_profile_trains(code, profile):
    S = settings("googlenet", profile)
    side = S.resize or 28
    for reduce in (True, False):  # the chapter's experiment trains both
        net = code.googlenet(in_channels=1, num_classes=10, **{**S.model, "reduce": reduce})
        X = torch.randn(2, 1, side, side)
        out = net(X)
        assert out.shape == (2, 10)
        out.sum().backward()
        assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())


@pytest.mark.parametrize("name, right, wrong", [
    ("googlenet/3a-channels", 256, 480),
    ("googlenet/conv1-output", 112, 109),
    ("googlenet/3a-5x5-branch-params", conv(192, 16, 1) + conv(16, 32, 5), conv(16, 32, 5)),
    ("googlenet/3a-5x5-no-reduction-params", 153_632, 153_600),
])
def test_exercise_checks(name, right, wrong):
    assert check(name, right) and not check(name, wrong)


def test_why_exercises_accept_their_answer_and_explain_each_wrong_one():
    for name in ("googlenet/why-same-side", "googlenet/why-reduction"):
        exercise = EXERCISES[name]
        assert check(name, exercise.answer)
        for letter in exercise.options:
            if letter != exercise.answer:
                result = check(name, letter)
                assert not result and exercise.wrong[letter][:20] in str(result)
        assert not check(name, 3)


def test_inception_block_exercise_accepts_the_chapters_block_and_rejects_one_without_reductions(code):
    assert check("googlenet/inception-block", code.Inception)
    assert not check("googlenet/inception-block",
                     lambda c, widths: code.Inception(c, widths, reduce=False))
