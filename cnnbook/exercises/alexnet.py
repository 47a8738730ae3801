"""Chapter 4 (AlexNet): the checked exercises."""
from .core import ConvParams, LinearParams, OutputSize

EXERCISES = {
    "alexnet/conv1-output": OutputSize(n=227, kernel_size=11, stride=4),
    "alexnet/fc6-params": LinearParams("parameters of AlexNet's first fully connected layer",
                                       256 * 6 * 6, 4096),
    "alexnet/conv2-two-gpus": ConvParams("parameters of AlexNet's conv2 split over two GPUs",
                                         48, 128, 5, copies=2),
}
