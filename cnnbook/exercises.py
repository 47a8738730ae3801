"""Self-checks for the exercises: each says right or wrong, and why.

A check computes the expected answer from first principles (the output-size formula, the
parameter count of a layer...) or compares a student's module with a reference, so the
answers are not stored anywhere to be looked up.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from torch import nn


class Check:
    """The outcome of a check: truthy when right; shown as a ✅/❌ line with the reason."""

    def __init__(self, ok: bool, message: str):
        self.ok, self.message = ok, message

    def __bool__(self) -> bool:
        return self.ok

    def __repr__(self) -> str:
        return ("✅ Right. " if self.ok else "❌ Not yet. ") + self.message


NO_ANSWER = Check(False, "No answer yet: replace None with your answer and run the cell again.")


def conv_output_size(n: int, kernel_size: int, stride: int = 1, padding: int = 0) -> int:
    """⌊(n + 2p − k) / s⌋ + 1: the side of a convolution's or pooling layer's output."""
    return (n + 2 * padding - kernel_size) // stride + 1


def check_output_size(answer: int | None, n: int, kernel_size: int, stride: int = 1, padding: int = 0) -> Check:
    """Check a computed output side length for an input of side ``n``."""
    if answer is None:
        return NO_ANSWER
    expected = conv_output_size(n, kernel_size, stride, padding)
    formula = f"⌊({n} + 2·{padding} − {kernel_size}) / {stride}⌋ + 1 = {expected}"
    if answer == expected:
        return Check(True, f"{formula}.")
    hint = ""
    if answer == (n + 2 * padding - kernel_size) / stride + 1:
        hint = " Round the division down before adding 1."
    elif answer == conv_output_size(n, kernel_size, stride, 0):
        hint = " Don't forget the padding, added on both sides."
    return Check(False, f"{answer} is not the output size.{hint} Use ⌊(n + 2p − k) / s⌋ + 1.")


def conv_params(in_channels: int, out_channels: int, kernel_size: int, bias: bool = True, groups: int = 1) -> int:
    """Parameters of a Conv2d: weights k·k·(c_in/groups)·c_out, plus c_out biases."""
    return kernel_size * kernel_size * (in_channels // groups) * out_channels + (out_channels if bias else 0)


def linear_params(in_features: int, out_features: int, bias: bool = True) -> int:
    """Parameters of a Linear layer: in·out weights plus out biases."""
    return in_features * out_features + (out_features if bias else 0)


def check_count(answer: float | None, expected: int, what: str, how: str) -> Check:
    """Compare a counted number with the expected one; ``how`` explains the count."""
    if answer is None:
        return NO_ANSWER
    shown = f"{expected:,.2f}" if isinstance(expected, float) else f"{expected:,}"
    if abs(answer - expected) <= 0.005 * max(1, abs(expected)) if isinstance(expected, float) else answer == expected:
        return Check(True, f"{what} = {shown} ({how}).")
    return Check(False, f"{answer:,} is not the number of {what}. Count it as {how}.")


def check_conv_params(answer: int | None, in_channels: int, out_channels: int, kernel_size: int, bias: bool = True) -> Check:
    """Check a Conv2d layer's parameter count."""
    k, ci, co = kernel_size, in_channels, out_channels
    how = f"{k}·{k}·{ci}·{co} weights" + (f" + {co} biases" if bias else "")
    return check_count(answer, conv_params(ci, co, k, bias), "parameters of the convolution", how)


def check_module(build: Callable[[], nn.Module], reference: Callable[[], nn.Module],
                 input_size: Sequence[int], name: str = "your module") -> Check:
    """Check a module built by a student against a reference: output shape and parameter count.

    Args:
        build: makes the student's module.
        reference: makes the expected module.
        input_size: the shape of a test input, e.g. (2, 1, 28, 28).
    """
    mine, ref = build(), reference()
    X = torch.randn(*input_size)
    try:
        with torch.no_grad():
            out = mine.eval()(X)
    except Exception as err:  # noqa: BLE001 - any failure is the student's to see
        return Check(False, f"{name} fails on an input of shape {tuple(input_size)}: {err}")
    with torch.no_grad():
        expected = ref.eval()(X)
    if out.shape != expected.shape:
        return Check(False, f"{name} returns shape {tuple(out.shape)}, expected {tuple(expected.shape)}.")
    n_mine = sum(p.numel() for p in mine.parameters())
    n_ref = sum(p.numel() for p in ref.parameters())
    if n_mine != n_ref:
        return Check(False, f"{name} has {n_mine:,} parameters, expected {n_ref:,}: check the layers' sizes.")
    return Check(True, f"{name} maps {tuple(input_size)} to {tuple(out.shape)} with {n_ref:,} parameters.")


# --- the book's checked exercises, by name ------------------------------------------------


@dataclass(frozen=True)
class Count:
    """An exercise whose answer is a number: ``what`` it is and ``how`` to count it."""

    what: str
    expected: float
    how: str

    def check(self, answer) -> Check:
        return check_count(answer, self.expected, self.what, self.how)


@dataclass(frozen=True)
class OutputSize:
    """An exercise whose answer is a layer's output side for an input side ``n``."""

    n: int
    kernel_size: int
    stride: int = 1
    padding: int = 0

    @property
    def expected(self) -> int:
        return conv_output_size(self.n, self.kernel_size, self.stride, self.padding)

    def check(self, answer) -> Check:
        return check_output_size(answer, self.n, self.kernel_size, self.stride, self.padding)


EXERCISES: dict[str, Count | OutputSize] = {
    "fashion-mnist/batch-bytes": Count("bytes in a float32 batch of 256 images", 256 * 1 * 28 * 28 * 4,
                                       "256 · 1 · 28 · 28 · 4 bytes"),
    "fashion-mnist/pixels-96": Count("times more pixels at 96 × 96", 96**2 / 28**2, "96² / 28²"),
    "training/conv5-output": OutputSize(n=28, kernel_size=5),
    "training/pool-output": OutputSize(n=28, kernel_size=3, stride=2, padding=1),
    "training/conv-params": Count("parameters of a 3 × 3 convolution from 16 to 32 channels",
                                  conv_params(16, 32, 3), "3·3·16·32 weights + 32 biases"),
    # --- LeNet (chapter 3) ---
    "lenet/c3-params": Count("parameters of LeNet's C3, a 5 × 5 convolution from 6 to 16 channels",
                             conv_params(6, 16, 5), "5·5·6·16 weights + 16 biases"),
    "lenet/c1-output-unpadded": OutputSize(n=28, kernel_size=5),
    "lenet/s4-side-unpadded": Count("the side after S4 for a 28 × 28 input without padding",
                                    conv_output_size(conv_output_size(conv_output_size(conv_output_size(
                                        28, 5), 2, 2), 5), 2, 2),
                                    "C1: ⌊(28 − 5)/1⌋ + 1 = 24, S2: 12, C3: 8, S4: 4"),
    # --- AlexNet (chapter 4) ---
    "alexnet/conv1-output": OutputSize(n=227, kernel_size=11, stride=4),
    "alexnet/fc6-params": Count("parameters of AlexNet's first fully connected layer",
                                linear_params(256 * 6 * 6, 4096), "256·6·6·4096 weights + 4096 biases"),
    "alexnet/conv2-two-gpus": Count("parameters of AlexNet's conv2 split over two GPUs",
                                    2 * conv_params(48, 128, 5), "2 · (5·5·48·128 weights + 128 biases)"),
    # --- VGG (chapter 5) ---
    "vgg/conv512-params": Count("parameters of a 3 × 3 convolution from 512 to 512 channels",
                                conv_params(512, 512, 3), "3·3·512·512 weights + 512 biases"),
    "vgg/fc6-params": Count("parameters of VGG-16's first linear layer", linear_params(512 * 7 * 7, 4096),
                            "512·7·7·4096 weights + 4096 biases"),
    "vgg/receptive-field-4": Count("pixels on the side of the receptive field of four stacked 3 × 3 convolutions",
                                   1 + 4 * (3 - 1), "1 + 4·(3 − 1): each layer adds k − 1 = 2"),
    # --- NiN (chapter 6) ---
    "nin/conv1x1-params": Count("parameters of a 1 × 1 convolution from 96 to 96 channels",
                                conv_params(96, 96, 1), "1·1·96·96 weights + 96 biases"),
    "nin/first-conv-output": OutputSize(n=227, kernel_size=11, stride=4),
    "nin/fc-params": Count("parameters of a linear layer from 384·5·5 inputs to 4096 outputs",
                           linear_params(384 * 5 * 5, 4096), "384·5·5·4096 weights + 4096 biases"),
    # --- GoogLeNet (chapter 7) ---
    "googlenet/3a-channels": Count("output channels of Inception block 3a", 64 + 128 + 32 + 32,
                                   "64 + 128 + 32 + 32: the four branches' outputs, stacked"),
    "googlenet/conv1-output": OutputSize(n=224, kernel_size=7, stride=2, padding=3),
    "googlenet/3a-5x5-branch-params": Count("parameters of block 3a's 5 × 5 branch",
                                            conv_params(192, 16, 1) + conv_params(16, 32, 5),
                                            "1·1·192·16 + 16 for the reduction, 5·5·16·32 + 32 for the 5 × 5"),
    "googlenet/3a-5x5-no-reduction-params": Count("parameters of a 5 × 5 convolution from 192 to 32 channels",
                                                  conv_params(192, 32, 5), "5·5·192·32 weights + 32 biases"),
    # --- Batch normalization (chapter 8) ---
    "batchnorm/bn64-params": Count("learnable parameters of nn.BatchNorm2d(64)", 2 * 64,
                                   "a scale γ and a shift β per channel: 2 · 64; the running estimates are buffers"),
    "batchnorm/running-mean": Count("the running mean after one update", (1 - 0.1) * 2.0 + 0.1 * 7.0,
                                    "(1 − momentum) · old + momentum · batch mean = 0.9 · 2.0 + 0.1 · 7.0"),
    "batchnorm/normalised-value": Count("the normalised output for the value 7", 2 * (7 - 4) / 5**0.5 + 1,
                                        "μ = 4, σ² = (9 + 1 + 1 + 9)/4 = 5, y = γ · (7 − μ)/√σ² + β = 2 · 3/√5 + 1"),
    "batchnorm/vgg11-extra-params": Count("parameters batch normalisation adds to VGG-11",
                                          2 * (64 + 128 + 256 + 256 + 512 + 512 + 512 + 512),
                                          "a γ and a β per output channel of its 8 convolutions: "
                                          "2 · (64 + 128 + 256 + 256 + 512 + 512 + 512 + 512)"),
    # --- ResNet (chapter 9) ---
    "resnet/basic-block-params": Count("parameters of a basic block with 64 channels in and out",
                                       2 * conv_params(64, 64, 3, bias=False) + 2 * 2 * 64,
                                       "2 · 3·3·64·64 weights (no biases) + 2 BNs · 2·64 (scale and shift)"),
    "resnet/bottleneck-params": Count("parameters of a bottleneck block 256 → 64 → 64 → 256",
                                      conv_params(256, 64, 1, bias=False) + conv_params(64, 64, 3, bias=False)
                                      + conv_params(64, 256, 1, bias=False) + 2 * (64 + 64 + 256),
                                      "1·1·256·64 + 3·3·64·64 + 1·1·64·256 weights + 2·(64 + 64 + 256) BN"),
    "resnet/projection-params": Count("parameters of a projection shortcut from 128 to 256 channels",
                                      conv_params(128, 256, 1, bias=False) + 2 * 256,
                                      "1·1·128·256 weights + 2·256 (BN scale and shift)"),
    "resnet/imagenet-stem-on-28": OutputSize(n=28, kernel_size=7, stride=2, padding=3),
    # --- DenseNet (chapter 10) ---
    "densenet/densenet169-block3-channels": Count("channels out of DenseNet-169's third dense block", 256 + 32 * 32,
                                                  "block 1: 64 + 6·32 = 256, halved to 128; block 2: 128 + 12·32 "
                                                  "= 512, halved to 256; block 3: 256 + 32·32"),
    "densenet/dense-layer-params": Count("parameters of the last layer of DenseNet-121's first block",
                                         2 * 224 + conv_params(224, 128, 1, bias=False) + 2 * 128
                                         + conv_params(128, 32, 3, bias=False),
                                         "2·224 (BN) + 224·128 (1×1) + 2·128 (BN) + 3·3·128·32 (3×3): the layer "
                                         "reads 64 + 5·32 = 224 channels"),
    "densenet/transition-params": Count("parameters of the transition after DenseNet-169's third block",
                                        2 * 1280 + conv_params(1280, 640, 1, bias=False),
                                        "2·1280 (BN) + 1·1·1280·640 weights (1,280 channels compressed to 640)"),
    "densenet/transition-pool-output": OutputSize(n=7, kernel_size=2, stride=2),
}


def check(name: str, answer) -> Check:
    """Check the answer to the exercise ``name`` (as given in the chapter)."""
    if name not in EXERCISES:
        raise KeyError(f"No checked exercise {name!r}. Known: {', '.join(EXERCISES)}.")
    return EXERCISES[name].check(answer)
