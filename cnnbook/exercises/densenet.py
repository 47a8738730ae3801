"""Chapter 10 (DenseNet): the checked exercises."""
import torch
from torch import nn

from .core import (Check, Choice, Code, Count, OutputSize, all_of, concatenates_its_input, conv_params,
                   depends_on_its_input, output_shape, parameter_count, right, runs, wrong)
from .reference import computes_like


class _DenseLayer(nn.Module):
    """The reference: the input followed by conv(ReLU(BN(X))); the exercise leaves the bias open."""

    def __init__(self, in_channels: int, growth_rate: int, bias: bool):
        super().__init__()
        self.bn, self.relu = nn.BatchNorm2d(in_channels), nn.ReLU()
        self.conv = nn.Conv2d(in_channels, growth_rate, 3, padding=1, bias=bias)

    def forward(self, X):
        return torch.cat((X, self.conv(self.relu(self.bn(X)))), dim=1)


def _test_dense_layer(build) -> Check:
    in_channels, growth_rate, size = 16, 8, (2, 16, 8, 8)

    def shape() -> Check:
        got = output_shape(build(), size)
        if got == (2, in_channels + growth_rate, 8, 8):
            return right("")
        if got[1] == growth_rate:
            return wrong("Your layer returns only its new features: concatenate its input in front, "
                         "torch.cat((X, Y), dim=1).")
        if got[2:] != size[2:]:
            return wrong(f"Your layer returns shape {got}: the 3 × 3 convolution needs padding 1 "
                         f"to keep the side.")
        return wrong(f"Your layer returns {got[1]} channels: its input's plus growth_rate new ones.")

    def same() -> Check:
        mine = build()
        with_bias = _DenseLayer(in_channels, growth_rate, bias=True)
        bias = parameter_count(mine) == parameter_count(with_bias)
        reference = with_bias if bias else _DenseLayer(in_channels, growth_rate, bias=False)
        return computes_like(mine, reference, size, "your layer")

    return all_of(lambda: runs(build(), size, "your layer"), shape,
                  lambda: concatenates_its_input(build(), size),
                  lambda: depends_on_its_input(build(), size, slice(in_channels, None), "your layer"),
                  same,
                  lambda: right(f"Your layer returns its {in_channels} input channels followed by "
                                f"{growth_rate} new ones computed from them."))


EXERCISES = {
    "densenet/densenet169-block3-channels": Count(
        "channels out of DenseNet-169's third dense block", 256 + 32 * 32,
        "each dense block adds layers · growth rate channels to its input, and each transition "
        "halves them; follow the channels block by block from the stem's 64",
        "block 1: 64 + 6·32 = 256, halved to 128; block 2: 128 + 12·32 = 512, halved to 256; "
        "block 3: 256 + 32·32",
        mistakes={32 * 32: "A dense block passes its input on too: add the channels it receives.",
                  512 + 32 * 32: "The transition after block 2 halves the channels before block 3.",
                  (256 + 32 * 32) // 2: "That is after the transition; the question asks for the "
                                        "block's own output."}),
    "densenet/dense-layer-params": Count(
        "parameters of the last layer of DenseNet-121's first block",
        2 * 224 + conv_params(224, 128, 1, bias=False) + 2 * 128 + conv_params(128, 32, 3, bias=False),
        "BN (scale and shift per input channel), a 1 × 1 convolution to 4·k channels, BN, a 3 × 3 "
        "convolution to k channels, no biases; first find how many channels this layer reads",
        "2·224 (BN) + 224·128 (1×1) + 2·128 (BN) + 3·3·128·32 (3×3): the layer reads 64 + 5·32 = 224 channels",
        mistakes={2 * 256 + conv_params(256, 128, 1, bias=False) + 2 * 128
                  + conv_params(128, 32, 3, bias=False):
                  "The last of 6 layers reads the input and the 5 layers before it, not 6.",
                  2 * 64 + conv_params(64, 128, 1, bias=False) + 2 * 128
                  + conv_params(128, 32, 3, bias=False):
                  "A dense layer reads its block's input and every earlier layer's output.",
                  conv_params(224, 128, 1, bias=False) + conv_params(128, 32, 3, bias=False):
                  "Add the two BatchNorms: a scale and a shift per channel each."}),
    "densenet/transition-params": Count(
        "parameters of the transition after DenseNet-169's third block",
        2 * 1280 + conv_params(1280, 640, 1, bias=False),
        "BN (scale and shift per input channel) and a 1 × 1 convolution without bias that halves "
        "the channels; pooling has none; first find the block's output channels",
        "2·1280 (BN) + 1·1·1280·640 weights (1,280 channels compressed to 640)",
        mistakes={conv_params(1280, 640, 1, bias=False): "Add the BatchNorm in front of the convolution.",
                  2 * 640 + conv_params(1280, 640, 1, bias=False):
                  "The BatchNorm comes before the convolution: it has the block's channels."}),
    "densenet/transition-pool-output": OutputSize(n=7, kernel_size=2, stride=2),
    "densenet/why-narrow": Choice(
        "Why can a DenseNet's layers be so narrow (k = 12 or 32 new maps, where a ResNet's "
        "layers have 64 to 512)?",
        {"a": "The 1 × 1 bottleneck removes the need for channels.",
         "b": "Each layer reads the maps of every earlier layer of its block, so it only has to "
              "add a few new ones to what is already there.",
         "c": "Concatenation halves the side of the maps, so fewer channels are enough.",
         "d": "The growth rate is chosen small only to save memory; accuracy would rise with "
              "k = 512."},
        answer="b",
        explain="The block's earlier maps stay available to every later layer (the block's "
                "'collective knowledge'), so each layer adds only what is new.",
        wrong={"a": "The bottleneck reduces the input channels of the 3 × 3 convolution, not the "
                    "number of new maps a layer adds.",
               "c": "Concatenation keeps the side: maps can only be stacked if their sides match.",
               "d": "The paper reached state-of-the-art accuracy with k = 12 to 48: small k is "
                    "enough because of the reuse, not only cheaper."}),
    "densenet/why-transitions": Choice(
        "Why does a DenseNet need transition layers between its dense blocks?",
        {"a": "To add the shortcut connections of ResNet.",
         "b": "Concatenation needs maps of the same side, so no layer inside a block can shrink "
              "them: the transitions between blocks halve the side (and compress the channels).",
         "c": "To add nonlinearity, which dense layers lack.",
         "d": "To reset the growth rate to zero."},
        answer="b",
        explain="Inside a block every map is concatenated with every later one, so all must keep "
                "the side; downsampling happens only between blocks, in the transitions.",
        wrong={"a": "DenseNet has no additive shortcuts: it concatenates.",
               "c": "Every dense layer has its BN and ReLU before each convolution.",
               "d": "The growth rate is the same in every layer of every block."}),
    "densenet/dense-layer": Code(
        "a dense layer DenseLayer(in_channels, growth_rate) whose output is its input followed by "
        "growth_rate new channels (BN, ReLU, 3 × 3 convolution)",
        _test_dense_layer, build_args=(16, 8)),
}
