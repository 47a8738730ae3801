"""Chapter 9 (ResNet): the checked exercises."""
from torch import nn

from .core import (Check, Choice, Code, Count, OutputSize, adds_its_input, all_of, conv_params,
                   output_shape, parameter_count, right, runs, wrong)
from .reference import computes_like


class _Block(nn.Module):
    """The reference: ReLU(BN(conv(ReLU(BN(conv(X))))) + X), each layer a module of its own."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1, self.relu1 = nn.BatchNorm2d(channels), nn.ReLU()
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2, self.relu2 = nn.BatchNorm2d(channels), nn.ReLU()

    def forward(self, X):
        Y = self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(X)))))
        return self.relu2(Y + X)


def _test_residual_block(build) -> Check:
    channels, size = 16, (2, 16, 8, 8)
    expected = 2 * conv_params(channels, channels, 3, bias=False) + 2 * 2 * channels

    def shape() -> Check:
        got = output_shape(build(), size)
        if got == size:
            return right("")
        return wrong(f"Your block returns shape {got}; it should keep its input's {size}: "
                     f"3 × 3 convolutions with padding 1, stride 1, channels in = channels out.")

    def count() -> Check:
        n = parameter_count(build())
        if n == expected:
            return right("")
        if n == expected + 2 * channels:
            return wrong("Your convolutions have biases: the BatchNorm after each has a shift β that "
                         "makes them redundant; use bias=False.")
        if n == expected - 4 * channels:
            return wrong("Your block has no BatchNorm2d: put one after each convolution.")
        return wrong(f"Your block has {n:,} parameters: it should hold two 3 × 3 convolutions "
                     f"(bias=False) and two BatchNorm2d, nothing else.")

    return all_of(lambda: runs(build(), size, "your block"), shape,
                  lambda: adds_its_input(build(), size), count,
                  lambda: computes_like(build(), _Block(channels), size),
                  lambda: right(f"Your block keeps the shape, adds its input and has "
                                f"2·3·3·{channels}·{channels} + 2·2·{channels} = {expected:,} parameters."))


EXERCISES = {
    "resnet/basic-block-params": Count(
        "parameters of a basic block with 64 channels in and out",
        2 * conv_params(64, 64, 3, bias=False) + 2 * 2 * 64,
        "two 3 × 3 convolutions without biases (k·k·c_in·c_out each), plus a scale and a shift per "
        "channel for each of the two BNs; the identity shortcut has none",
        "2 · 3·3·64·64 weights (no biases) + 2 BNs · 2·64 (scale and shift)",
        mistakes={2 * conv_params(64, 64, 3) + 2 * 2 * 64:
                  "The convolutions have no biases here (the BN's shift replaces them).",
                  2 * conv_params(64, 64, 3, bias=False):
                  "Add the two BatchNorms: a scale and a shift per channel each.",
                  2 * conv_params(64, 64, 3, bias=False) + 2 * 64:
                  "Each BatchNorm has two parameters per channel, and there are two BatchNorms.",
                  2 * conv_params(64, 64, 3, bias=False) + 2 * 4 * 64:
                  "The BN's running mean and variance are buffers, not parameters.",
                  conv_params(64, 64, 3, bias=False) + 2 * 64:
                  "A basic block has two convolutions, each with its BatchNorm."}),
    "resnet/bottleneck-params": Count(
        "parameters of a bottleneck block 256 → 64 → 64 → 256",
        conv_params(256, 64, 1, bias=False) + conv_params(64, 64, 3, bias=False)
        + conv_params(64, 256, 1, bias=False) + 2 * (64 + 64 + 256),
        "1 × 1, 3 × 3 and 1 × 1 convolutions without biases (k·k·c_in·c_out each), plus a scale "
        "and a shift per output channel of each of the three BNs",
        "1·1·256·64 + 3·3·64·64 + 1·1·64·256 weights + 2·(64 + 64 + 256) BN",
        mistakes={conv_params(256, 64, 1, bias=False) + conv_params(64, 64, 3, bias=False)
                  + conv_params(64, 256, 1, bias=False):
                  "Add the three BatchNorms: a scale and a shift per channel each.",
                  conv_params(256, 64, 1) + conv_params(64, 64, 3) + conv_params(64, 256, 1)
                  + 2 * (64 + 64 + 256): "The convolutions have no biases here (the BN's shift replaces them).",
                  conv_params(256, 64, 1, bias=False) + conv_params(64, 64, 3, bias=False)
                  + conv_params(64, 256, 1, bias=False) + 2 * (64 + 64 + 64):
                  "The last BatchNorm follows the 1 × 1 that expands to 256 channels."}),
    "resnet/projection-params": Count(
        "parameters of a projection shortcut from 128 to 256 channels",
        conv_params(128, 256, 1, bias=False) + 2 * 256,
        "a 1 × 1 convolution without bias (c_in·c_out weights) plus its BN's scale and shift per "
        "output channel",
        "1·1·128·256 weights + 2·256 (BN scale and shift)",
        mistakes={conv_params(128, 256, 1, bias=False): "Add the BatchNorm after the 1 × 1 convolution.",
                  conv_params(128, 256, 1) + 2 * 256: "The convolution has no bias here.",
                  conv_params(128, 256, 1, bias=False) + 2 * 128:
                  "The BatchNorm follows the convolution: it has 256 channels."}),
    "resnet/imagenet-stem-on-28": OutputSize(n=28, kernel_size=7, stride=2, padding=3),
    "resnet/why-degradation": Choice(
        "A 56-layer plain network ends with a higher training error than a 20-layer one. Why is "
        "that neither overfitting nor a lack of capacity?",
        {"a": "Overfitting shows as a low training error and a high test error; here the training "
              "error itself is higher, and the deeper network could copy the shallower one and "
              "compute the identity in its extra layers: the optimiser does not find such a solution.",
         "b": "The deeper network has fewer parameters than the shallower one.",
         "c": "The deeper network's gradients vanish before they reach the early layers.",
         "d": "The deeper network cannot represent the shallower one's function."},
        answer="a",
        explain="The degradation problem is one of optimisation: a solution at least as good exists "
                "(the shallower network plus identity layers), but SGD does not find it.",
        wrong={"b": "It has more: each extra block adds two convolutions (see the experiment's table).",
               "c": "With batch normalisation the gradients do not vanish: the experiment measures "
                    "them reaching the first convolution, larger there than at the last.",
               "d": "It can: copy the 20 layers and make the other 36 compute the identity."}),
    "resnet/why-identity-easy": Choice(
        "Why is the identity easy for a residual block and hard for a plain one?",
        {"a": "The residual block has more parameters to do it with.",
         "b": "A residual block computes F(x) + x: it is the identity as soon as F outputs zero "
              "(e.g. its last BN's scale γ = 0); a plain block must make its convolutions and "
              "ReLUs reproduce x exactly.",
         "c": "A plain block cannot compute the identity with any weights.",
         "d": "Batch normalisation makes every block the identity at the start of training."},
        answer="b",
        explain="Zero is easy to reach (weight decay even pushes towards it); an exact copy of the "
                "input through convolutions and ReLUs needs precisely chosen weights.",
        wrong={"a": "The identity shortcut has no parameters: both blocks have the same layers.",
               "c": "It can, on non-negative inputs (a centred one-hot 3 × 3 kernel per channel), "
                    "but only with exactly those weights, which SGD must find.",
               "d": "BN normalises its input to zero mean and unit variance; it does not pass it on "
                    "unchanged."}),
    "resnet/residual-block": Code(
        "a basic residual block Block(channels): two 3 × 3 convolutions (bias=False) each with a "
        "BatchNorm2d, ReLU between, the input added before the last ReLU",
        _test_residual_block, build_args=(16,)),
}
