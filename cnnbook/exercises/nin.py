"""Chapter 6 (Network in Network): the checked exercises."""
from torch import nn

from .core import Choice, Code, ConvParams, Count, LinearParams, conv_params
from .reference import check_module


def _reference_block() -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),
                         nn.Conv2d(32, 32, 1), nn.ReLU(), nn.Conv2d(32, 32, 1), nn.ReLU())


def _test_block(build):
    return check_module(build, _reference_block, (2, 16, 6, 6), "your block")


EXERCISES = {
    "nin/conv1x1-params": ConvParams("parameters of a 1 × 1 convolution from 96 to 96 channels", 96, 96, 1),
    "nin/block-params": Count(
        "parameters of an mlpconv block: a 5 × 5 convolution 96 → 256, then two 1 × 1 convolutions "
        "256 → 256, all with biases",
        conv_params(96, 256, 5) + 2 * conv_params(256, 256, 1),
        "(k·k·c_in + 1)·c_out for each of the three convolutions, then add them up",
        "(5·5·96 + 1)·256 + 2·(256 + 1)·256 = 614,656 + 131,584",
        mistakes={conv_params(96, 256, 5): "That is the 5 × 5 convolution alone; add the two 1 × 1 ones.",
                  conv_params(96, 256, 5) + conv_params(256, 256, 1):
                  "An mlpconv block has two 1 × 1 convolutions.",
                  5 * 5 * 96 * 256 + 2 * 256 * 256: "Each convolution also has one bias per output channel."}),
    "nin/fc-params": LinearParams("parameters of a linear layer from 384·5·5 inputs to 4096 outputs",
                                  384 * 5 * 5, 4096),
    "nin/avgpool5-on-6": Count(
        "how many of a 6 × 6 map's 36 values nn.AvgPool2d(5) averages into its output",
        5 * 5,
        "the output side is ⌊(n − k)/s⌋ + 1 with the stride s defaulting to the kernel size k; "
        "count the values under the output's window(s)",
        "⌊(6 − 5)/5⌋ + 1 = 1 window, the top-left 5 × 5 = 25 values; the last row and column "
        "are ignored",
        mistakes={36: "Look at the stride: nn.AvgPool2d(5) has stride 5 by default, so how many "
                      "windows fit, and which values do they cover?",
                  2 * 2 * 25: "With stride 5 (the default), only ⌊(6 − 5)/5⌋ + 1 = 1 window fits "
                              "on each side."}),
    "nin/why-1x1": Choice(
        "Why does a NiN block end in two 1 × 1 convolutions?",
        {"a": "They shrink the feature map's height and width.",
         "b": "Each is a fully connected layer applied at every pixel across the channels: with their "
              "ReLUs, the block becomes a small MLP per position.",
         "c": "They look at a wider neighbourhood, enlarging the receptive field.",
         "d": "They replace the ReLUs, so the block stays linear."},
        answer="b",
        explain="A 1 × 1 convolution mixes the channels of each pixel with the same weights everywhere, "
                "like a linear layer per position; two of them with ReLUs add nonlinearity without "
                "mixing pixels and with few parameters (c_in·c_out each).",
        wrong={"a": "A 1 × 1 convolution with stride 1 keeps the height and width: one output per pixel.",
               "c": "A 1 × 1 window sees one pixel: it mixes channels, not neighbouring pixels.",
               "d": "Each 1 × 1 convolution is followed by a ReLU: they add nonlinearity."}),
    "nin/why-no-last-relu": Choice(
        "Why does our last mlpconv block end without a ReLU?",
        {"a": "With a ReLU, a class whose map is zero (negative before the ReLU) everywhere gets a "
              "zero gradient through it and cannot recover; without it, scores can be negative.",
         "b": "ReLUs have parameters, and the last block must have none.",
         "c": "Global average pooling does not work on non-negative maps.",
         "d": "Cross-entropy requires negative scores."},
        answer="a",
        explain="A ReLU's gradient is zero where its input is negative: a dead class map passes no "
                "learning signal back.",
        wrong={"b": "A ReLU has no parameters.",
               "c": "Averaging works on any numbers.",
               "d": "Cross-entropy takes any real scores; softmax only needs their differences."}),
    "nin/block": Code(
        "my_nin_block(in_channels, out_channels, kernel_size, padding): a convolution and two 1 × 1 "
        "convolutions, each followed by a ReLU",
        _test_block, build_args=(16, 32, 3, 1)),
}
