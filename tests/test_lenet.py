"""LeNet (chapter 3): the paper configuration's parameter count, and the trained forms' shapes."""
import re
from pathlib import Path

import nbformat
import pytest
import torch
from torch import nn

import cnnbook
from cnnbook.book import chapter_code

CHAPTER = Path(__file__).resolve().parents[1] / "chapters" / "03_lenet.ipynb"


@pytest.fixture(scope="module")
def code():
    return chapter_code(CHAPTER)


def test_paper_configuration_parameter_count(code):
    # LeNet-5 on 1x32x32, counted layer by layer: (k*k*c_in + 1) * c_out for a convolution,
    # (n_in + 1) * n_out for a linear layer.
    c1 = (5 * 5 * 1 + 1) * 6  # 156
    c3 = (5 * 5 * 6 + 1) * 16  # 2,416 (all S2 maps connected to every C3 map)
    c5 = (16 * 5 * 5 + 1) * 120  # 48,120
    f6 = (120 + 1) * 84  # 10,164
    out = (84 + 1) * 10  # 850
    expected = c1 + c3 + c5 + f6 + out
    assert expected == 61_706
    net = code.lenet()  # the defaults are the paper's network
    assert sum(p.numel() for p in net.parameters()) == expected
    assert net(torch.zeros(2, 1, 32, 32)).shape == (2, 10)


def test_padding_two_gives_the_paper_shapes_on_28x28(code):
    paper, ours = code.lenet(), code.lenet(padding=2)
    a = paper[:2](torch.zeros(1, 1, 32, 32))
    b = ours[:2](torch.zeros(1, 1, 28, 28))
    assert a.shape == b.shape == (1, 16, 5, 5)


@pytest.mark.parametrize("profile", ["smoke", "cpu", "gpu"])
def test_fashion_mnist_configuration_forward_backward(code, profile):
    S = cnnbook.settings("lenet", profile)
    net = code.lenet(1, 10, **S.model)
    X = torch.randn(4, 1, 28, 28)
    y_hat = net(X)
    assert y_hat.shape == (4, 10)
    y_hat.sum().backward()
    assert all(p.grad is not None for p in net.parameters())


@pytest.mark.parametrize("name, right, wrong", [
    ("lenet/c3-params", 2416, 2400), ("lenet/c1-output-unpadded", 24, 28), ("lenet/s4-side-unpadded", 4, 5),
    ("lenet/why-32", "a", "b"), ("lenet/why-c5-params-c1-macs", "a", "d")])
def test_exercises_accept_right_and_reject_wrong(name, right, wrong):
    from cnnbook.exercises import check

    assert check(name, right) and not check(name, wrong)


def test_defaults_are_the_textbook_sigmoid_and_average_pooling(code):
    """The defaults have the paper's layers with the textbook form's logistic sigmoid and plain average
    pooling (LeNet-5 itself used a scaled tanh and trainable subsampling)."""
    net = code.lenet()
    assert isinstance(net[0][1], nn.Sigmoid) and isinstance(net[0][2], nn.AvgPool2d)


# The sigmoid + average pooling form is the textbook's stand-in, not LeNet-5 as of 1998 (which used
# 1.7159 tanh(2a/3)): chapters 3 and 8 once called it "the 1998 form" in code, labels and prose.
SIGMOID_AS_1998 = re.compile(r"1998 form|1998's|form_1998|\(1998\)|LeNet's sigmoid"
                             r"|sigmoid[^.\n]*\b1998\b|\b1998\b[^.\n]*sigmoid", re.IGNORECASE)


@pytest.mark.parametrize("notebook", ["03_lenet.ipynb", "08_batch_norm.ipynb"])
def test_the_sigmoid_form_is_never_called_1998s(notebook):
    cells = nbformat.read(CHAPTER.parent / notebook, as_version=4).cells
    found = [f"cell {i} ({c.cell_type}): {m.group(0)!r}" for i, c in enumerate(cells)
             if c.cell_type in ("code", "markdown") for m in SIGMOID_AS_1998.finditer(c.source)]
    assert not found, f"{notebook} calls the sigmoid + average pooling form 1998's: {found}"


def test_the_1998_pattern_catches_the_old_labels():
    for old in ('"sigmoid + average pooling (1998)"', "the 1998 form reaches", "LeNet's sigmoids",
                "form_1998 = lenet(", "the sigmoid of the 1998 network"):
        assert SIGMOID_AS_1998.search(old), old
    for fine in ("LeNet-5 {cite:p}`lecun1998gradient` used a scaled tanh", "the 1998 paper in details"):
        assert not SIGMOID_AS_1998.search(fine), fine


def test_block_exercise_accepts_the_chapter_block_and_rejects_wrong_ones(code):
    from cnnbook.exercises import check

    assert check("lenet/block", lambda i, o: code.lenet_block(i, o, activation="relu", pool="max"))
    assert not check("lenet/block", lambda i, o: code.lenet_block(i, o))  # sigmoid, average
    assert not check("lenet/block", lambda i, o: code.lenet_block(i, o, 2, "relu", "max"))  # padded
    assert not check("lenet/block", None)
