"""AlexNet (chapter 4): the paper configuration's parameter count, and the trained forms' shapes."""
from pathlib import Path

import pytest
import torch
import torchvision
from torch import nn

import cnnbook
from cnnbook.book import chapter_code

CHAPTER = Path(__file__).resolve().parents[1] / "chapters" / "04_alexnet.ipynb"
SINGLE_TOWER_PARAMS = 62_378_344  # paper widths 96-256-384-384-256, FC 4096-4096-1000, last map 256x6x6


@pytest.fixture(scope="module")
def code():
    return chapter_code(CHAPTER)


def test_paper_configuration_parameter_count(code):
    net = code.alexnet()
    assert sum(p.numel() for p in net.parameters()) == SINGLE_TOWER_PARAMS
    with torch.no_grad():
        assert net.eval()(torch.zeros(1, 3, 224, 224)).shape == (1, 1000)


def test_single_tower_count_matches_torchvision_with_paper_widths():
    # torchvision's AlexNet (the "one weird trick" variant: 64-192-384-256-256) with its convolutions
    # replaced by the paper's widths gives the same count, an independent reference.
    ref = torchvision.models.AlexNet(num_classes=1000)
    widths, kernels = (96, 256, 384, 384, 256), (11, 5, 3, 3, 3)
    convs = [i for i, m in enumerate(ref.features) if isinstance(m, nn.Conv2d)]
    c_in = 3
    for i, c_out, k in zip(convs, widths, kernels):
        old = ref.features[i]
        ref.features[i] = nn.Conv2d(c_in, c_out, k, old.stride, old.padding)
        c_in = c_out
    assert sum(p.numel() for p in ref.parameters()) == SINGLE_TOWER_PARAMS
    assert ref.features(torch.zeros(1, 3, 224, 224)).shape == (1, 256, 6, 6)


@pytest.mark.parametrize("profile", ["smoke", "cpu", "gpu"])
def test_fashion_mnist_configuration_forward_backward(code, profile):
    S = cnnbook.settings("alexnet", profile)
    side = S.resize or 28
    net = code.alexnet(1, 10, image_size=side, **S.model)
    X = torch.randn(2, 1, side, side)
    y_hat = net(X)
    assert y_hat.shape == (2, 10)
    y_hat.sum().backward()
    assert all(p.grad is not None for p in net.parameters())


@pytest.mark.parametrize("name, right, wrong", [
    ("alexnet/conv1-output", 55, 54), ("alexnet/fc6-params", 37_752_832, 37_748_736),
    ("alexnet/conv2-two-gpus", 307_456, 614_656), ("alexnet/why-dropout-scales", "a", "b"),
    ("alexnet/why-small-first-conv", "a", "d")])
def test_exercises_accept_right_and_reject_wrong(name, right, wrong):
    from cnnbook.exercises import check

    assert check(name, right) and not check(name, wrong)


def test_block_exercise_accepts_the_chapter_block_and_rejects_wrong_ones(code):
    from cnnbook.exercises import check

    assert check("alexnet/block", lambda i, o: code.alexnet_block(i, o, 3, padding=1, pool=True))
    assert not check("alexnet/block", lambda i, o: code.alexnet_block(i, o, 3, padding=1))
    assert not check("alexnet/block", lambda i, o: code.alexnet_block(i, o, 3, pool=True))
    assert not check("alexnet/block", None)


def test_gpu_profile_is_the_papers_network_but_for_the_classes(code):
    S = cnnbook.settings("alexnet", "gpu")
    paper = code.alexnet(1, 10)
    ours = code.alexnet(1, 10, image_size=S.resize, **S.model)
    assert cnnbook.count_params(ours) == cnnbook.count_params(paper)


def test_lrn_computes_the_papers_formula(code):
    """The paper's LRN (section 3.3): b_i = a_i / (k + alpha * sum_j a_j^2)^beta, the sum over the n = 5
    channels j from max(0, i - n/2) to min(N - 1, i + n/2), with k = 2, alpha = 1e-4, beta = 0.75. PyTorch's
    nn.LocalResponseNorm divides its alpha by n, so the chapter's layer must say alpha=5e-4."""
    lrns = [m for m in code.alexnet().modules() if isinstance(m, nn.LocalResponseNorm)]
    assert len(lrns) == 2  # after conv1 and conv2
    n, k, alpha, beta = 5, 2.0, 1e-4, 0.75
    a = 60 * torch.rand(2, 12, 4, 4, generator=torch.Generator().manual_seed(0))  # alpha*sum ~ k
    channels = a.shape[1]
    expected = torch.empty_like(a)
    for i in range(channels):
        window = a[:, max(0, i - n // 2):min(channels - 1, i + n // 2) + 1]
        expected[:, i] = a[:, i] / (k + alpha * (window ** 2).sum(dim=1)) ** beta
    for lrn in lrns:
        torch.testing.assert_close(lrn(a), expected)


def test_dropout_is_on_the_outputs_of_fc6_and_fc7(code):
    """The paper drops hidden units of the first two fully connected layers (Caffe's reference model: fc6,
    ReLU, dropout, fc7, ReLU, dropout, fc8); torchvision drops their inputs instead."""
    for net in (code.alexnet(), code.alexnet(1, 10, image_size=28, **cnnbook.settings("alexnet", "cpu").model)):
        head = [type(m) for m in net[5:]]  # after the five blocks
        assert head == [nn.Flatten, nn.Linear, nn.ReLU, nn.Dropout, nn.Linear, nn.ReLU, nn.Dropout, nn.Linear]
        assert all(m.p == 0.5 for m in net.modules() if isinstance(m, nn.Dropout))
