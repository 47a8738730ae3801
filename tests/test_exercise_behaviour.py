"""The coding exercises judge what a block computes, and the multiple-choice ones take an option's text.

Each wrong block below has the right shape and parameter count; before the reference comparison
(weights loaded into the reader's module, outputs compared in both modes) the checks accepted most
of them. Each right block is written differently from the reference and must pass.
"""
from __future__ import annotations

import json
import re
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cnnbook.exercises import EXERCISES, Choice, Code, check
from cnnbook.exercises.googlenet import _3A

ROOT = Path(__file__).resolve().parents[1]


def seq(*layers: nn.Module) -> nn.Sequential:
    return nn.Sequential(*layers)


class Lambda(nn.Module):
    """A block whose forward is a function of its named layers (``layers`` registered in order)."""

    def __init__(self, forward, **layers: nn.Module):
        super().__init__()
        for name, layer in layers.items():
            self.add_module(name, layer)
        self.body = forward

    def forward(self, X):
        return self.body(self, X)


# --- chapters 3 to 6: Sequential blocks -------------------------------------------------------


class SeparateBias(nn.Module):
    """LeNet's block with the convolution's bias registered first, and no ReLU."""

    def __init__(self, c_in, c_out):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(c_out))
        self.conv = nn.Conv2d(c_in, c_out, 5, bias=False)

    def forward(self, X):
        return F.max_pool2d(self.conv(X) + self.bias[:, None, None], 2)


LENET_RIGHT = {
    "F.relu in forward": lambda i, o: Lambda(lambda m, X: m.pool(F.relu(m.conv(X))),
                                             conv=nn.Conv2d(i, o, 5), pool=nn.MaxPool2d(2)),
    "inplace ReLU": lambda i, o: seq(nn.Conv2d(i, o, 5), nn.ReLU(inplace=True), nn.MaxPool2d(2, 2)),
    "named Sequential": lambda i, o: nn.Sequential(OrderedDict(
        conv=nn.Conv2d(i, o, kernel_size=(5, 5)), act=nn.ReLU(), pool=nn.MaxPool2d((2, 2)))),
    "pooling before the ReLU (they commute)":
        lambda i, o: seq(nn.Conv2d(i, o, 5), nn.MaxPool2d(2), nn.ReLU()),
}
LENET_WRONG = {  # variant: (builder, what the check must say)
    "ReLU6 instead of ReLU": (lambda i, o: seq(nn.Conv2d(i, o, 5), nn.ReLU6(), nn.MaxPool2d(2)),
                              "from layer 2 (ReLU expected after the Conv2d, found ReLU6)"),
    "an extra Dropout": (lambda i, o: seq(nn.Conv2d(i, o, 5), nn.ReLU(), nn.Dropout(0.5), nn.MaxPool2d(2)),
                         "in training mode, the output differs from the reference's from layer 3 "
                         "(MaxPool2d expected after the ReLU, found Dropout)"),
    "no ReLU, its bias registered first": (  # its Conv2d leaves the bias out: the first to part
        SeparateBias, "from layer 1 (the Conv2d on the block's input computes something else in yours)"),
}

ALEXNET_RIGHT = {
    "F.relu and F.max_pool2d": lambda i, o: Lambda(lambda m, X: F.max_pool2d(F.relu(m.conv(X)), 3, 2),
                                                   conv=nn.Conv2d(i, o, 3, padding=1)),
    "inplace ReLU": lambda i, o: seq(nn.Conv2d(i, o, 3, 1, 1), nn.ReLU(True), nn.MaxPool2d(3, stride=2)),
}
ALEXNET_WRONG = {
    "ReLU6 instead of ReLU": (lambda i, o: seq(nn.Conv2d(i, o, 3, padding=1), nn.ReLU6(), nn.MaxPool2d(3, 2)),
                              "from layer 2 (ReLU expected after the Conv2d, found ReLU6)"),
    "an extra Dropout2d at the end": (
        lambda i, o: seq(nn.Conv2d(i, o, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, 2), nn.Dropout2d()),
        "in training mode, the output differs from the reference's (after the MaxPool2d, yours has an "
        "extra Dropout2d)"),
}


class VGGReversed(nn.Module):
    """VGG's block with the second convolution registered first, and no ReLUs."""

    def __init__(self, c_in, c_out, num_convs):
        super().__init__()
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)

    def forward(self, X):
        return F.max_pool2d(self.conv2(self.conv1(X)), 2)


def vgg_block(c_in, c_out, num_convs, relu=nn.ReLU, between=()):
    layers = []
    for _ in range(num_convs):
        layers += [nn.Conv2d(c_in, c_out, 3, padding=1), relu(), *between]
        c_in = c_out
    return seq(*layers, nn.MaxPool2d(2, 2))


class VGGRightReversed(VGGReversed):
    def forward(self, X):
        return F.max_pool2d(F.relu(self.conv2(F.relu(self.conv1(X)))), 2)


VGG_RIGHT = {
    "a loop with inplace ReLUs": lambda i, o, n: vgg_block(i, o, n, relu=lambda: nn.ReLU(inplace=True)),
    "second convolution registered first, F.relu": VGGRightReversed,
}
VGG_WRONG = {
    "no ReLUs, second convolution registered first": (
        VGGReversed, "from layer 2 (ReLU expected after the first Conv2d, found Conv2d)"),
    "a Dropout after each ReLU": (lambda i, o, n: vgg_block(i, o, n, between=(nn.Dropout(0.3),)),
                                  "in training mode, the output differs from the reference's from "
                                  "layer 3 (Conv2d expected after the first ReLU, found Dropout)"),
}


class NiNLast(nn.Module):
    """NiN's block with the k × k convolution registered after the 1 × 1 ones."""

    def __init__(self, c_in, c_out, k, padding, relus=(True, True, True)):
        super().__init__()
        self.mlp1, self.mlp2 = nn.Conv2d(c_out, c_out, 1), nn.Conv2d(c_out, c_out, 1)
        self.conv = nn.Conv2d(c_in, c_out, k, padding=padding)
        self.relus = relus

    def forward(self, X):
        for layer, relu in zip((self.conv, self.mlp1, self.mlp2), self.relus):
            X = F.relu(layer(X)) if relu else layer(X)
        return X


NIN_RIGHT = {
    "k × k registered last, F.relu": NiNLast,
    "inplace ReLUs": lambda i, o, k, p: seq(nn.Conv2d(i, o, k, padding=p), nn.ReLU(True), nn.Conv2d(o, o, 1),
                                            nn.ReLU(True), nn.Conv2d(o, o, (1, 1)), nn.ReLU(True)),
}
NIN_WRONG = {
    "no ReLU after the 1 × 1s, k × k registered last": (
        lambda i, o, k, p: NiNLast(i, o, k, p, (True, False, False)),
        "from layer 4 (ReLU expected after the second Conv2d, found Conv2d)"),
    "a Dropout in the middle": (
        lambda i, o, k, p: seq(nn.Conv2d(i, o, k, padding=p), nn.ReLU(), nn.Dropout(), nn.Conv2d(o, o, 1),
                               nn.ReLU(), nn.Conv2d(o, o, 1), nn.ReLU()),
        "in training mode, the output differs from the reference's from layer 3 "
        "(Conv2d expected after the first ReLU, found Dropout)"),
}


# --- chapter 7: Inception ---------------------------------------------------------------------


def conv_relu(c_in, c_out, k, padding=0, relu=True):
    return seq(nn.Conv2d(c_in, c_out, k, padding=padding), *([nn.ReLU()] if relu else []))


class Inception(nn.Module):
    """Right unless told otherwise; ``pool_first`` registers the pooling branch first."""

    def __init__(self, in_channels, widths, relu=True, pool=nn.MaxPool2d, pool_first=False):
        super().__init__()
        c1, c3r, c3, c5r, c5, cp = widths
        branches = [conv_relu(in_channels, c1, 1, relu=relu),
                    seq(conv_relu(in_channels, c3r, 1, relu=relu), conv_relu(c3r, c3, 3, 1, relu=relu)),
                    seq(conv_relu(in_channels, c5r, 1, relu=relu), conv_relu(c5r, c5, 5, 2, relu=relu)),
                    seq(pool(3, 1, 1), conv_relu(in_channels, cp, 1, relu=relu))]
        self.order = [3, 0, 1, 2] if pool_first else [0, 1, 2, 3]
        for index in self.order:
            self.add_module(f"b{index}", branches[index])

    def forward(self, X):
        return torch.cat([getattr(self, f"b{i}")(X) for i in range(4)], dim=1)


class InceptionF(nn.Module):
    """The block with F.relu after each convolution, written branch by branch."""

    def __init__(self, in_channels, widths):
        super().__init__()
        c1, c3r, c3, c5r, c5, cp = widths
        self.p1 = nn.Conv2d(in_channels, c1, 1)
        self.p2_1, self.p2_2 = nn.Conv2d(in_channels, c3r, 1), nn.Conv2d(c3r, c3, 3, padding=1)
        self.p3_1, self.p3_2 = nn.Conv2d(in_channels, c5r, 1), nn.Conv2d(c5r, c5, 5, padding=2)
        self.p4_2 = nn.Conv2d(in_channels, cp, 1)

    def forward(self, X):
        p1 = F.relu(self.p1(X))
        p2 = F.relu(self.p2_2(F.relu(self.p2_1(X))))
        p3 = F.relu(self.p3_2(F.relu(self.p3_1(X))))
        p4 = F.relu(self.p4_2(F.max_pool2d(X, 3, 1, 1)))
        return torch.cat((p1, p2, p3, p4), dim=1)


INCEPTION_RIGHT = {
    "F.relu, branch by branch (d2l's)": InceptionF,
    "pooling branch registered first": lambda c, w: Inception(c, w, pool_first=True),
}
INCEPTION_WRONG = {
    "no ReLUs": (lambda c, w: Inception(c, w, relu=False),
                 "from layer 2 (ReLU expected after the first Conv2d: not found in yours)"),
    "average pooling": (lambda c, w: Inception(c, w, pool=nn.AvgPool2d),
                        "(MaxPool2d expected on the block's input, found AvgPool2d)"),
    "branches concatenated in another order": (  # the branch check names it before the comparison
        lambda c, w: Lambda(lambda m, X: torch.cat([m.b1(X), m.b0(X), m.b2(X), m.b3(X)], dim=1),
                            **dict(Inception(c, w).named_children())),
        "another order"),
}


# --- chapter 8: batch normalisation ------------------------------------------------------------


class MyBatchNorm(nn.Module):
    """Right unless told otherwise."""

    def __init__(self, num_features, affine_in_forward=True, buffers=True, shape=(-1,), shift_first=False):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(num_features).view(*shape))
        self.beta = nn.Parameter(torch.zeros(num_features).view(*shape))
        mean, var = torch.zeros(num_features).view(*shape), torch.ones(num_features).view(*shape)
        if buffers:
            self.register_buffer("running_mean", mean)
            self.register_buffer("running_var", var)
        else:
            self.running_mean, self.running_var = mean, var
        self.affine, self.shift_first = affine_in_forward, shift_first

    def forward(self, X):
        if self.training:
            mean, var = X.mean(dim=(0, 2, 3)), X.var(dim=(0, 2, 3), unbiased=False)
            n = X.numel() / X.shape[1]
            with torch.no_grad():
                self.running_mean.mul_(0.9).add_(0.1 * mean.view_as(self.running_mean))
                self.running_var.mul_(0.9).add_(0.1 * (var * n / (n - 1)).view_as(self.running_var))
        else:
            mean, var = self.running_mean.flatten(), self.running_var.flatten()
        X_hat = (X - mean[None, :, None, None]) / torch.sqrt(var[None, :, None, None] + 1e-5)
        if not self.affine:
            return X_hat
        gamma, beta = self.gamma.view(1, -1, 1, 1), self.beta.view(1, -1, 1, 1)
        return gamma * (X_hat + beta) if self.shift_first else gamma * X_hat + beta


BATCHNORM_RIGHT = {
    "vectors of shape (C,)": MyBatchNorm,
    "γ, β and the estimates of shape (1, C, 1, 1)": lambda c: MyBatchNorm(c, shape=(1, -1, 1, 1)),
}
BATCHNORM_WRONG = {
    "γ and β left out of forward": (lambda c: MyBatchNorm(c, affine_in_forward=False), "scale by γ"),
    "β added before scaling": (lambda c: MyBatchNorm(c, shift_first=True), "scale by γ"),
    "running estimates not registered as buffers": (lambda c: MyBatchNorm(c, buffers=False), "register_buffer"),
}


# --- chapter 9: the residual block -------------------------------------------------------------


class Block(nn.Module):
    """A basic residual block; ``body`` says what forward does with conv1, bn1, conv2, bn2."""

    def __init__(self, channels, body="right", order=("conv1", "bn1", "conv2", "bn2")):
        super().__init__()
        layers = {"conv1": nn.Conv2d(channels, channels, 3, padding=1, bias=False),
                  "bn1": nn.BatchNorm2d(channels),
                  "conv2": nn.Conv2d(channels, channels, 3, padding=1, bias=False),
                  "bn2": nn.BatchNorm2d(channels)}
        for name in order:
            self.add_module(name, layers[name])
        self.relu, self.body = nn.ReLU(inplace=True), body

    def forward(self, X):
        c1, b1, c2, b2, relu = self.conv1, self.bn1, self.conv2, self.bn2, self.relu
        return {
            "right": lambda: F.relu(b2(c2(relu(b1(c1(X))))) + X),
            "no ReLUs": lambda: b2(c2(b1(c1(X)))) + X,
            "ReLU before the addition": lambda: relu(b2(c2(relu(b1(c1(X)))))) + X,
            "no ReLU in the middle": lambda: relu(b2(c2(b1(c1(X)))) + X),
            "no ReLU after the addition": lambda: b2(c2(relu(b1(c1(X))))) + X,
            "BN before the first convolution": lambda: relu(b2(c2(relu(c1(b1(X))))) + X),
        }[self.body]()


RESNET_RIGHT = {
    "nn.ReLU(inplace=True), one module used twice": Block,
    "BNs registered after both convolutions": lambda c: Block(c, order=("conv1", "conv2", "bn1", "bn2")),
    "a Sequential branch": lambda c: Lambda(
        lambda m, X: F.relu(m.branch(X) + X),
        branch=seq(nn.Conv2d(c, c, 3, 1, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU(),
                   nn.Conv2d(c, c, 3, 1, 1, bias=False), nn.BatchNorm2d(c))),
}
RESNET_WRONG = {
    "no ReLUs": (lambda c: Block(c, "no ReLUs"),
                 "from layer 3 (ReLU expected after the first BatchNorm2d, found Conv2d)"),
    "the last ReLU before the addition": (
        lambda c: Block(c, "ReLU before the addition"),
        "from layer 6 (the second ReLU gets another input in yours"),
    "no ReLU in the middle": (lambda c: Block(c, "no ReLU in the middle"),
                              "from layer 3 (ReLU expected after the first BatchNorm2d, found Conv2d)"),
    "no ReLU after the addition": (lambda c: Block(c, "no ReLU after the addition"),
                                   "from layer 6 (ReLU expected after forward's addition or concatenation: "
                                   "not found in yours)"),
    "BN before the first convolution": (lambda c: Block(c, "BN before the first convolution"),
                                        "from layer 1 (Conv2d expected on the block's input, found BatchNorm2d)"),
}


# --- chapter 10: the dense layer ---------------------------------------------------------------


def dense(body, **layers):
    return Lambda(lambda m, X: torch.cat((X, body(m, X)), dim=1), **layers)


DENSE_RIGHT = {
    "bias=False, Sequential": lambda i, k: dense(lambda m, X: m.f(X), f=seq(
        nn.BatchNorm2d(i), nn.ReLU(inplace=True), nn.Conv2d(i, k, 3, padding=1, bias=False))),
    "with a bias, F.relu": lambda i, k: dense(lambda m, X: m.conv(F.relu(m.bn(X))),
                                              bn=nn.BatchNorm2d(i), conv=nn.Conv2d(i, k, 3, padding=1)),
}
DENSE_WRONG = {
    "a bare 1 × 1 convolution": (lambda i, k: dense(lambda m, X: m.conv(X), conv=nn.Conv2d(i, k, 1)),
                                 "yours has no BatchNorm2d weight of shape (16,)"),
    "a bare 3 × 3 convolution": (lambda i, k: dense(lambda m, X: m.conv(X), conv=nn.Conv2d(i, k, 3, padding=1)),
                                 "yours has no BatchNorm2d weight of shape (16,)"),
    "ReLU before BN": (lambda i, k: dense(lambda m, X: m.f(X), f=seq(
        nn.ReLU(), nn.BatchNorm2d(i), nn.Conv2d(i, k, 3, padding=1))),
        "from layer 1 (BatchNorm2d expected on the block's input, found ReLU)"),
    "no ReLU": (lambda i, k: dense(lambda m, X: m.conv(m.bn(X)), bn=nn.BatchNorm2d(i),
                                   conv=nn.Conv2d(i, k, 3, padding=1)),
                "from layer 2 (ReLU expected after the BatchNorm2d, found Conv2d)"),
    "no concatenation": (lambda i, k: seq(nn.BatchNorm2d(i), nn.ReLU(), nn.Conv2d(i, k, 3, padding=1)),
                         "only its new features"),
    "conv, BN, ReLU (post-activation)": (lambda i, k: dense(lambda m, X: F.relu(m.bn(m.conv(X))),
                                                            conv=nn.Conv2d(i, k, 3, padding=1),
                                                            bn=nn.BatchNorm2d(k)),
                                         "yours has no BatchNorm2d weight of shape (16,)"),
}

RIGHT = {"lenet/block": LENET_RIGHT, "alexnet/block": ALEXNET_RIGHT, "vgg/block": VGG_RIGHT,
         "nin/block": NIN_RIGHT, "googlenet/inception-block": INCEPTION_RIGHT,
         "batchnorm/batch-norm-layer": BATCHNORM_RIGHT, "resnet/residual-block": RESNET_RIGHT,
         "densenet/dense-layer": DENSE_RIGHT}
WRONG = {"lenet/block": LENET_WRONG, "alexnet/block": ALEXNET_WRONG, "vgg/block": VGG_WRONG,
         "nin/block": NIN_WRONG, "googlenet/inception-block": INCEPTION_WRONG,
         "batchnorm/batch-norm-layer": BATCHNORM_WRONG, "resnet/residual-block": RESNET_WRONG,
         "densenet/dense-layer": DENSE_WRONG}


def test_every_coding_exercise_has_right_and_wrong_variants():
    code = {name for name, e in EXERCISES.items() if isinstance(e, Code)}
    assert code == set(RIGHT) == set(WRONG)


@pytest.mark.parametrize("name, variant", [(n, v) for n, vs in RIGHT.items() for v in vs])
def test_a_right_block_written_differently_passes(name, variant):
    result = check(name, RIGHT[name][variant])
    assert result, f"{name}, {variant}: {result}"


@pytest.mark.parametrize("name, variant", [(n, v) for n, vs in WRONG.items() for v in vs])
def test_a_wrong_block_is_told_where_it_parts(name, variant):
    build, reason = WRONG[name][variant]
    result = check(name, build)
    assert not result and reason in repr(result), f"{name}, {variant}: {result}"
    assert "\n" not in repr(result) and len(repr(result)) < 400, repr(result)


def test_a_block_is_compared_in_both_modes_after_loading_the_references_weights():
    from cnnbook.exercises.reference import difference

    bn = nn.BatchNorm2d(4)
    assert difference(nn.BatchNorm2d(4), bn, (4, 4, 3, 3)) is None
    momentum = difference(nn.BatchNorm2d(4, momentum=0.5), bn, (4, 4, 3, 3))
    assert momentum.mode == "after training"  # same in both modes, until the running estimates move
    unpaired = difference(nn.Conv2d(4, 4, 1), bn, (4, 4, 3, 3))
    # the convolution's (4, 4, 1, 1) weight and (4,) bias: no second (4,) tensor for BN's bias
    assert unpaired.mode is None and "yours has no BatchNorm2d bias of shape (4,)" in unpaired.where


# --- multiple choice: an option's text is judged like its letter -------------------------------

CHOICES = [name for name, e in EXERCISES.items() if isinstance(e, Choice)]


def typeset(text: str) -> str:
    """The text as the site shows it: curly apostrophes, an en dash for a minus sign."""
    return text.replace("'", "’").replace("−", "–")


@pytest.mark.parametrize("name", CHOICES)
def test_an_options_text_is_judged_like_its_letter(name):
    exercise = EXERCISES[name]
    for letter, option in exercise.options.items():
        expected = repr(check(name, letter))
        for text in (option, option.upper(), f"  {' '.join(option.split())}  ", f"({letter}) {option}",
                     f"{letter.upper()}) {option}", f"({letter})\n{option}", typeset(option)):
            assert repr(check(name, text)) == expected, (name, text)
    a, b = list(exercise.options)[:2]
    mislabelled = check(name, f"({a}) {exercise.options[b]}")
    assert not mislabelled and f"puts the label ({a}) on option ({b})'s text" in repr(mislabelled)


def chapter_options() -> dict[str, dict[str, str]]:
    """Each checked multiple-choice exercise's options as its chapter shows them (markdown removed),
    found through the chapter's ``check(name, answer_N)`` lines and its numbered exercise list."""
    found: dict[str, dict[str, str]] = {}
    for path in sorted((ROOT / "chapters").glob("*.ipynb")):
        cells = json.loads(path.read_text())["cells"]
        text = {kind: "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == kind)
                for kind in ("markdown", "code")}
        if "## Exercises" not in text["markdown"]:
            continue
        section = re.split(r"<details|\n#", text["markdown"].split("## Exercises", 1)[1])[0]
        items = dict(re.findall(r"^(\d+)\.\s+(.*?)(?=^\d+\.\s|\Z)", section, re.M | re.S))
        for name, number in re.findall(r'check\("([^"]+)",\s*answer_(\d+)\)', text["code"]):
            if isinstance(EXERCISES.get(name), Choice):
                item = " ".join(items[number].replace("*", "").replace("`", "").split())
                parts = re.split(r"\(([a-e])\)\s", item)
                found[name] = {letter: option.strip() for letter, option in zip(parts[1::2], parts[2::2])}
    return found


def test_every_choice_takes_the_options_text_its_chapter_shows():
    """The bug of issue 27: the chapters' options had been reworded and the registry's had not, so
    the text a reader copied from the chapter was 'not one of the options'."""
    shown = chapter_options()
    assert set(shown) == set(CHOICES)
    for name, options in shown.items():
        assert list(options) == list(EXERCISES[name].options), name
        for letter, option in options.items():
            assert repr(check(name, option)) == repr(check(name, letter)), (name, letter, option)
            assert repr(check(name, typeset(option))) == repr(check(name, letter)), (name, letter)


def test_lenet_s4_hints_are_true():
    from cnnbook.exercises import conv_output_size

    def s4_side(c1_padding):
        side = conv_output_size(28, 5, 1, c1_padding)  # C1
        for k, s in ((2, 2), (5, 1), (2, 2)):  # S2, C3, S4
            side = conv_output_size(side, k, s)
        return side

    padded = repr(check("lenet/s4-side-unpadded", s4_side(2)))
    assert s4_side(2) == 5 and "padding of 2 (28 → 28 → 14 → 10 → 5)" in padded
    poolings_only = repr(check("lenet/s4-side-unpadded", 28 // 2 // 2))
    assert "two poolings alone" in poolings_only and "padded network" not in poolings_only
    assert check("lenet/s4-side-unpadded", s4_side(0))
