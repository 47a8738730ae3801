"""Chapter 7 (GoogLeNet): the checked exercises."""
import torch
from torch import nn

from .core import (Check, Choice, Code, ConvParams, Count, OutputSize, all_of, branch_channels, conv_params,
                   output_shape, parameter_count, right, runs, wrong)
from .reference import computes_like

# Block 3a: (1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool proj), from the paper's table 1.
_3A = (64, 96, 128, 16, 32, 32)


def _conv_relu(c_in: int, c_out: int, k: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, k, padding=k // 2), nn.ReLU()]


class _Inception(nn.Module):
    """The reference: four branches on the same input, concatenated in the table's order."""

    def __init__(self, in_channels: int, widths: tuple):
        super().__init__()
        c1, c3r, c3, c5r, c5, cp = widths
        self.branches = nn.ModuleList([
            nn.Sequential(*_conv_relu(in_channels, c1, 1)),
            nn.Sequential(*_conv_relu(in_channels, c3r, 1), *_conv_relu(c3r, c3, 3)),
            nn.Sequential(*_conv_relu(in_channels, c5r, 1), *_conv_relu(c5r, c5, 5)),
            nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1), *_conv_relu(in_channels, cp, 1))])

    def forward(self, X):
        return torch.cat([branch(X) for branch in self.branches], dim=1)


def _test_inception(build) -> Check:
    size = (2, 192, 8, 8)
    c1, c3r, c3, c5r, c5, cp = _3A
    params = (conv_params(192, c1, 1) + conv_params(192, c3r, 1) + conv_params(c3r, c3, 3)
              + conv_params(192, c5r, 1) + conv_params(c5r, c5, 5) + conv_params(192, cp, 1))

    def shape() -> Check:
        got = output_shape(build(), size)
        if got == (2, c1 + c3 + c5 + cp, 8, 8):
            return right("")
        if got[2:] != size[2:]:
            return wrong(f"Your block returns shape {got}: every branch must keep the 8 × 8 side "
                         f"(padding k // 2, and stride 1 with padding 1 for the 3 × 3 pooling).")
        return wrong(f"Your block returns {got[1]} channels: the four branches' outputs, stacked "
                     f"along dim 1, should give c1 + c3 + c5 + pool proj.")

    def count() -> Check:
        n = parameter_count(build())
        if n == params:
            return right("")
        return wrong(f"Your block has {n:,} parameters, not the paper's: check each branch's "
                     f"convolutions (1 × 1 reductions before the 3 × 3 and 5 × 5, a 1 × 1 after the pooling).")

    return all_of(lambda: runs(build(), size, "your block"), shape,
                  lambda: branch_channels(build(), size, [c1, c3, c5, cp]), count,
                  lambda: computes_like(build(), _Inception(192, _3A), size),
                  lambda: right("Your Inception block stacks branches of 64, 128, 32 and 32 channels "
                                "in the table's order, with the paper's parameter count."))


EXERCISES = {
    "googlenet/3a-channels": Count(
        "output channels of Inception block 3a", 64 + 128 + 32 + 32,
        "add up the four branches' output channels (1 × 1, 3 × 3, 5 × 5, pool proj); "
        "the reductions' channels stay inside their branches",
        "64 + 128 + 32 + 32: the four branches' outputs, stacked",
        mistakes={64 + 96 + 128 + 16 + 32 + 32: "That adds the reductions too; they stay inside "
                                                "their branches, only the branches' last layers stack.",
                  192 + 64 + 128 + 32 + 32: "The block's input is not passed on: only the branches stack."}),
    "googlenet/conv1-output": OutputSize(n=224, kernel_size=7, stride=2, padding=3),
    "googlenet/3a-5x5-branch-params": Count(
        "parameters of block 3a's 5 × 5 branch", conv_params(192, 16, 1) + conv_params(16, 32, 5),
        "the 1 × 1 reduction's weights and biases plus the 5 × 5 convolution's, "
        "each k·k·c_in·c_out + c_out",
        "1·1·192·16 + 16 for the reduction, 5·5·16·32 + 32 for the 5 × 5",
        mistakes={conv_params(192, 16, 1, bias=False) + conv_params(16, 32, 5, bias=False):
                  "That leaves out the biases: one per output channel of each convolution.",
                  conv_params(16, 32, 5): "That is the 5 × 5 alone: add the 1 × 1 reduction in front.",
                  conv_params(192, 32, 5): "That is a 5 × 5 on all 192 channels; this branch reduces "
                                           "them first with a 1 × 1 convolution."}),
    "googlenet/3a-5x5-no-reduction-params": ConvParams(
        "parameters of a 5 × 5 convolution from 192 to 32 channels", 192, 32, 5),
    "googlenet/why-same-side": Choice(
        "Why does every branch of an Inception block keep the side of its input (padding "
        "(k − 1)/2, and stride 1 even for the max pooling)?",
        {"a": "To save multiply-adds.",
         "b": "The four outputs are concatenated along the channels, which needs maps of the "
              "same height and width.",
         "c": "Pooling with stride 2 would remove the need for the 1 × 1 projection.",
         "d": "Padding makes the 5 × 5 convolution as cheap as the 3 × 3 one."},
        answer="b",
        explain="torch.cat along dim 1 stacks maps pixel by pixel: every branch must produce "
                "the same side.",
        wrong={"a": "Keeping the side costs multiply-adds (more output pixels); it does not save any.",
               "c": "The projection keeps the pooling branch's channels few, whatever its stride.",
               "d": "Padding does not change a convolution's cost per output pixel: a 5 × 5 "
                    "kernel still costs 25 multiply-adds per input channel."}),
    "googlenet/why-reduction": Choice(
        "What does the 1 × 1 convolution in front of the 5 × 5 one change?",
        {"a": "It enlarges the receptive field of the branch.",
         "b": "It makes the 5 × 5 convolution read a few channels instead of all the block's input "
              "channels, which cuts its multiply-adds and parameters by about the ratio of the two "
              "channel counts.",
         "c": "It replaces the ReLU.",
         "d": "It halves the side of the maps."},
        answer="b",
        explain="Block 3a's 5 × 5 reads 16 channels instead of 192: about 12 times fewer "
                "weights and multiply-adds for that convolution.",
        wrong={"a": "A 1 × 1 convolution sees one pixel: the receptive field stays 5 × 5.",
               "c": "The 1 × 1 convolution has its own ReLU; nothing is replaced.",
               "d": "It has stride 1: the side stays."}),
    "googlenet/inception-block": Code(
        "an Inception block Inception(in_channels, widths), widths = (1x1, 3x3 reduce, 3x3, "
        "5x5 reduce, 5x5, pool proj), built here as block 3a",
        _test_inception, build_args=(192, _3A)),
}
