"""Chapter 3 (LeNet): the checked exercises."""
from torch import nn

from .core import Choice, Code, ConvParams, Count, OutputSize, conv_output_size
from .reference import check_module


def _reference_block() -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(6, 16, kernel_size=5), nn.ReLU(),
                         nn.MaxPool2d(kernel_size=2, stride=2))


def _test_block(build):
    # 6 x 14 x 14 (S2's output) -> 16 x 5 x 5 (S4's), 2,416 parameters, the same function
    return check_module(build, _reference_block, (2, 6, 14, 14), "your block")


EXERCISES = {
    "lenet/c3-params": ConvParams("parameters of LeNet's C3, a 5 × 5 convolution from 6 to 16 channels",
                                  6, 16, 5),
    "lenet/c1-output-unpadded": OutputSize(n=28, kernel_size=5),
    "lenet/s4-side-unpadded": Count(
        "the side after S4 for a 28 × 28 input without padding",
        conv_output_size(conv_output_size(conv_output_size(conv_output_size(28, 5), 2, 2), 5), 2, 2),
        "apply ⌊(n + 2p − k) / s⌋ + 1 layer by layer: C1, S2, C3, then S4",
        "C1: ⌊(28 − 5)/1⌋ + 1 = 24, S2: 12, C3: 8, S4: 4",
        mistakes={conv_output_size(conv_output_size(28, 5), 2, 2):
                  "That is the side after S2; go on through C3 and S4.",
                  conv_output_size(conv_output_size(conv_output_size(28, 5), 2, 2), 5):
                  "That is the side after C3; S4 halves it once more.",
                  # C1 with the chapter's padding of 2: 28 -> 28 -> 14 -> 10 -> 5
                  conv_output_size(conv_output_size(conv_output_size(conv_output_size(28, 5, 1, 2), 2, 2),
                                                    5), 2, 2):
                  "That is the side with C1's padding of 2 (28 → 28 → 14 → 10 → 5); here C1 has "
                  "no padding.",
                  # 28 -> 14 -> 7: the poolings alone
                  conv_output_size(conv_output_size(28, 2, 2), 2, 2):
                  "That is what the two poolings alone give: without padding, each 5 × 5 convolution "
                  "shrinks the map too, by k − 1."}),
    "lenet/why-32": Choice(
        "Why does LeNet-5 take 32 × 32 inputs when MNIST's digits fit in 20 × 20?",
        {"a": "So that features such as stroke ends and corners can appear in the centre of "
              "the receptive field of the highest-level feature detectors.",
         "b": "Because convolutions only work on sides that are powers of two.",
         "c": "To give the network more parameters.",
         "d": "Because average pooling needs an even side at every stage."},
        answer="a",
        explain="The paper's reason: a stroke at the border of the digit should still fall in the "
                "middle of some C3 and C5 unit's receptive field, not at its edge.",
        wrong={"b": "Any side works; 28 × 28 with a padding of 2 gives the same shapes as 32 × 32.",
               "c": "The convolutions' parameters do not depend on the input size; C5 sees a 5 × 5 "
                    "map either way.",
               "d": "2 × 2 pooling with stride 2 rounds down an odd side; it does not need an even one."}),
    "lenet/why-c5-params-c1-macs": Choice(
        "C5 holds most of LeNet-5's parameters but few of its multiply-adds, and C1 the opposite. Why?",
        {"a": "C1's 156 parameters are applied at each of the 28 × 28 positions, while each of "
              "C5's weights is used once per image.",
         "b": "C5 uses a larger kernel than C1.",
         "c": "C1 has more output channels than C5.",
         "d": "Multiply-adds only count convolutions, not linear layers."},
        answer="a",
        explain="Multiply-adds count how often each weight is used: C1 has 150 weights used 784 "
                "times each (117,600 multiply-adds), C5 48,000 weights used once (48,000).",
        wrong={"b": "Both use 5 × 5 kernels (C5 is a 5 × 5 convolution on a 5 × 5 map).",
               "c": "C1 has 6 output channels, C5 has 120.",
               "d": "A linear layer's multiply-adds are its weights: in_features · out_features."}),
    "lenet/block": Code(
        "my_lenet_block(in_channels, out_channels): a 5 × 5 convolution without padding, a ReLU "
        "and a 2 × 2 max pooling with stride 2",
        _test_block, build_args=(6, 16)),
}
