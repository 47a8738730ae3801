"""Chapter 4 (AlexNet): the checked exercises."""
from torch import nn

from .core import Choice, Code, ConvParams, LinearParams, OutputSize
from .reference import check_module


def _reference_block() -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(16, 48, 3, padding=1), nn.ReLU(),
                         nn.MaxPool2d(kernel_size=3, stride=2))


def _test_block(build):
    # 16 x 28 x 28 -> 48 x 13 x 13 (overlapping pooling: (28 - 3) // 2 + 1 = 13)
    return check_module(build, _reference_block, (2, 16, 28, 28), "your block")


EXERCISES = {
    "alexnet/conv1-output": OutputSize(n=227, kernel_size=11, stride=4),
    "alexnet/fc6-params": LinearParams("parameters of AlexNet's first fully connected layer",
                                       256 * 6 * 6, 4096),
    "alexnet/conv2-two-gpus": ConvParams("parameters of AlexNet's conv2 split over two GPUs",
                                         48, 128, 5, copies=2),
    "alexnet/why-dropout-scales": Choice(
        "With p = 0.5, nn.Dropout multiplies the values it keeps by 2 during training. Why?",
        {"a": "So that each unit's expected input is the same in training and at test time, "
              "when nothing is dropped.",
         "b": "To make the training loss larger, as a regulariser.",
         "c": "Because half of the weights are removed from the network for good.",
         "d": "To speed up training by a factor of two."},
        answer="a",
        explain="Half the inputs are zero, the others doubled: the expected sum is unchanged, so "
                "the network needs no rescaling at test time (\"inverted dropout\").",
        wrong={"b": "The scaling keeps expectations equal; the regularising comes from the random "
                    "zeros, not from the factor.",
               "c": "Dropout removes a new random half at every step, and nothing at test time; "
                    "no weight is removed.",
               "d": "The zeros are still multiplied on a CPU or GPU: dropout saves no time."}),
    "alexnet/why-small-first-conv": Choice(
        "Why does our form not use the paper's 11 × 11, stride-4 first convolution on 28 × 28 "
        "images?",
        {"a": "It would leave a 6 × 6 map after the first convolution, 2 × 2 after the first "
              "pooling, and the second pooling would have nothing left to pool.",
         "b": "11 × 11 filters cannot be trained on grey images.",
         "c": "A stride larger than 1 is not allowed on small images.",
         "d": "It would have too many parameters for 28 × 28 images."},
        answer="a",
        explain="⌊(28 + 4 − 11)/4⌋ + 1 = 6, then ⌊(6 − 3)/2⌋ + 1 = 2: the paper's first layer "
                "shrinks 224 to 55, which a 28-pixel image cannot afford.",
        wrong={"b": "A filter has one channel per input channel: grey images just need one.",
               "c": "Any stride is allowed; this one just shrinks the image too fast.",
               "d": "A convolution's parameters do not depend on the image size: 11·11·1·c1 + c1."}),
    "alexnet/block": Code(
        "my_alexnet_block(in_channels, out_channels): a 3 × 3 convolution with padding 1, a ReLU "
        "and a 3 × 3 max pooling with stride 2",
        _test_block, build_args=(16, 48)),
}
