"""Inspection: counts checked by hand and against torchvision, for small and paper-sized inputs."""
from __future__ import annotations

import pytest
import torch
from torch import nn

import cnnbook


def test_counts_of_a_conv_net_match_a_hand_count():
    net = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                        nn.Linear(6 * 14 * 14, 10))
    conv_params = 5 * 5 * 1 * 6 + 6
    linear_params = 6 * 14 * 14 * 10 + 10
    assert cnnbook.count_params(net) == conv_params + linear_params
    # torchinfo's convention: one multiply-add per parameter (bias included) per output position
    expected_macs = conv_params * 28 * 28 + linear_params
    assert cnnbook.count_macs(net, (1, 1, 28, 28)) == expected_macs


def test_summary_shows_shapes_params_and_mult_adds():
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4 * 14 * 14, 10))
    stats = cnnbook.summary(net, (1, 1, 28, 28))
    table = str(stats)
    for column in ("Output Shape", "Param #", "Mult-Adds"):
        assert column in table
    assert "[1, 4, 14, 14]" in table
    assert stats.total_params == cnnbook.count_params(net)


def test_paper_configuration_matches_torchvision():
    torchvision = pytest.importorskip("torchvision")
    net = torchvision.models.resnet18(num_classes=1000)
    stats = cnnbook.summary(net, (1, 3, 224, 224), depth=1)
    assert stats.total_params == cnnbook.count_params(net) == 11_689_512
    assert stats.summary_list[0].output_size == [1, 1000]


def test_summary_of_a_mismatched_network_says_what_to_check():
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten(), nn.Linear(100, 10))
    with pytest.raises(cnnbook.NetworkError, match="first Linear's in_features") as err:
        cnnbook.summary(net, (1, 1, 28, 28))
    assert len(str(err.value).splitlines()) <= 3


def test_summary_names_the_unit_and_fits_a_code_box():
    torchvision = pytest.importorskip("torchvision")
    table = str(cnnbook.summary(torchvision.models.resnet18(num_classes=1000), (1, 3, 224, 224), depth=2))
    assert "Units." not in table and "Total mult-adds: 1.81 G" in table
    assert max(map(len, table.splitlines())) <= 90


def test_count_params_trainable_only():
    net = nn.Linear(3, 2)
    net.bias.requires_grad_(False)
    assert cnnbook.count_params(net) == 8 and cnnbook.count_params(net, trainable_only=True) == 6
