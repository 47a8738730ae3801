"""Chapter 5 (VGG): the checked exercises."""
from torch import nn

from .core import Choice, Code, ConvParams, Count, LinearParams
from .reference import check_module


def _reference_block() -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),
                         nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(),
                         nn.MaxPool2d(kernel_size=2, stride=2))


def _test_block(build):
    # 16 x 14 x 14 -> 32 x 7 x 7, two convolutions
    return check_module(build, _reference_block, (2, 16, 14, 14), "your block")


EXERCISES = {
    "vgg/conv512-params": ConvParams("parameters of a 3 × 3 convolution from 512 to 512 channels",
                                     512, 512, 3),
    "vgg/fc6-params": LinearParams("parameters of VGG-16's first linear layer", 512 * 7 * 7, 4096),
    "vgg/receptive-field-4": Count(
        "pixels on the side of the receptive field of four stacked 3 × 3 convolutions", 1 + 4 * (3 - 1),
        "start from 1 pixel; each k × k layer (stride 1) widens the field by k − 1",
        "1 + 4·(3 − 1): each layer adds k − 1 = 2",
        mistakes={4 * 3: "Stacked windows overlap: each layer adds k − 1, not k.",
                  4 * (3 - 1): "Start from the 1 pixel a single output sees, then add k − 1 per layer.",
                  3**4: "The field grows by adding, not multiplying: k − 1 more per layer."}),
    "vgg/why-double-channels": Choice(
        "Why does VGG double the channels after each pooling?",
        {"a": "The pooling divides the number of positions by 4; doubling the channels keeps the "
              "multiply-adds of each convolution roughly the same from block to block.",
         "b": "So that the parameter count stays the same in every block.",
         "c": "Because max pooling needs twice as many channels.",
         "d": "To make the receptive field twice as large."},
        answer="a",
        explain="A 3 × 3 convolution costs 9·C_in·C_out per position: a quarter of the positions "
                "times four times the cost per position.",
        wrong={"b": "A convolution's parameters, 9·C_in·C_out, grow four-fold when both channel "
                    "counts double: later blocks hold far more parameters.",
               "c": "Max pooling works on each channel separately and keeps their number.",
               "d": "The receptive field grows with the poolings and the stacked convolutions, "
                    "not with the number of channels."}),
    "vgg/smallest-input": Choice(
        "What is the smallest square input that VGG-11's five blocks take without a map of side 0?",
        {"a": "32 × 32: five halvings of 32 give 1.",
         "b": "224 × 224, the size it was trained on.",
         "c": "7 × 7, the side of its last map.",
         "d": "3 × 3, the size of its kernels."},
        answer="a",
        explain="Each block halves the side, rounding down: 32 → 16 → 8 → 4 → 2 → 1; 31 would "
                "end at 0. (The head, sized for 7 × 7 maps, needs 224 × 224 as built.)",
        wrong={"b": "The convolutions keep any size; only the five halvings limit the input.",
               "c": "7 × 7 is what 224 × 224 becomes after five halvings, not the input.",
               "d": "Padding 1 keeps the side of any input; the poolings are what shrink it."}),
    "vgg/block": Code(
        "my_vgg_block(in_channels, out_channels, num_convs): num_convs 3 × 3 convolutions with "
        "padding 1 and ReLUs, then a 2 × 2 max pooling with stride 2",
        _test_block, build_args=(16, 32, 2)),
}
