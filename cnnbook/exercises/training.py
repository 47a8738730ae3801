"""Chapter 2 (training a CNN): the checked exercises."""
from .core import ConvParams, OutputSize

EXERCISES = {
    "training/conv5-output": OutputSize(n=28, kernel_size=5),
    "training/pool-output": OutputSize(n=28, kernel_size=3, stride=2, padding=1),
    "training/conv-params": ConvParams("parameters of a 3 × 3 convolution from 16 to 32 channels",
                                       16, 32, 3),
}
