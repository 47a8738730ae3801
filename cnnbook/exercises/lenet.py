"""Chapter 3 (LeNet): the checked exercises."""
from .core import ConvParams, Count, OutputSize, conv_output_size

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
                  7: "That is the padded network's side (28 → 14 → 7); here C1 and C3 have no padding."}),
}
