"""Chapter 6 (Network in Network): the checked exercises."""
from .core import Choice, ConvParams, LinearParams, OutputSize

EXERCISES = {
    "nin/conv1x1-params": ConvParams("parameters of a 1 × 1 convolution from 96 to 96 channels", 96, 96, 1),
    "nin/first-conv-output": OutputSize(n=227, kernel_size=11, stride=4),
    "nin/fc-params": LinearParams("parameters of a linear layer from 384·5·5 inputs to 4096 outputs",
                                  384 * 5 * 5, 4096),
    "nin/why-1x1": Choice(
        "Why does a NiN block end in two 1 × 1 convolutions?",
        {"a": "They shrink the feature map's height and width.",
         "b": "Each is a fully connected layer applied at every pixel across the channels: with their "
              "ReLUs, the block becomes a small MLP per position (the paper's mlpconv).",
         "c": "They look at a wider neighbourhood, enlarging the receptive field.",
         "d": "They replace the ReLUs, so the block stays linear."},
        answer="b",
        explain="A 1 × 1 convolution mixes the channels of each pixel with the same weights everywhere, "
                "like a linear layer per position; two of them with ReLUs add nonlinearity without "
                "mixing pixels and with few parameters (c_in·c_out each).",
        wrong={"a": "A 1 × 1 convolution with stride 1 keeps the height and width: one output per pixel.",
               "c": "A 1 × 1 window sees one pixel: it mixes channels, not neighbouring pixels.",
               "d": "Each 1 × 1 convolution is followed by a ReLU: they add nonlinearity."}),
}
