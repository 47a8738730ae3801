"""Chapter 8 (batch normalisation): the checked exercises."""
from .core import Count

_VGG11_CHANNELS = (64, 128, 256, 256, 512, 512, 512, 512)

EXERCISES = {
    "batchnorm/bn64-params": Count(
        "learnable parameters of nn.BatchNorm2d(64)", 2 * 64,
        "a learnable scale γ and shift β per channel; the running mean and variance are buffers",
        "a scale γ and a shift β per channel: 2 · 64; the running estimates are buffers",
        mistakes={4 * 64: "The running mean and variance are buffers, updated but not learned.",
                  64: "Each channel has two learnable numbers: a scale γ and a shift β."}),
    "batchnorm/running-mean": Count(
        "the running mean after one update", (1 - 0.1) * 2.0 + 0.1 * 7.0,
        "(1 − momentum) · old + momentum · batch mean, with PyTorch's momentum = 0.1",
        "0.9 · 2.0 + 0.1 · 7.0",
        mistakes={0.1 * 2.0 + 0.9 * 7.0: "In PyTorch the momentum weighs the new batch mean: "
                                         "(1 − momentum) · old + momentum · new.",
                  7.0: "The running mean moves only a step (momentum) towards the batch mean.",
                  (2.0 + 7.0) / 2: "Not a plain average: the momentum sets the step."}),
    "batchnorm/normalised-value": Count(
        "the normalised output for the value 7", 2 * (7 - 4) / 5**0.5 + 1,
        "y = γ · (x − μ) / √σ² + β, with the batch's mean μ and its biased variance σ² (divide by n)",
        "μ = 4, σ² = (9 + 1 + 1 + 9)/4 = 5, y = γ · (7 − μ)/√σ² + β = 2 · 3/√5 + 1",
        mistakes={2 * 3 / (20 / 3) ** 0.5 + 1: "Batch normalisation divides the squares by n, not n − 1.",
                  2 * 3 / 5 + 1: "Divide by the standard deviation √σ², not by the variance.",
                  3 / 5**0.5: "That is x̂ before the scale γ and the shift β.",
                  2 * 3 / 5**0.5: "Add the shift β after scaling.",
                  (3 / 5**0.5 + 1) * 2: "Scale first, then shift: γ · x̂ + β."}),
    "batchnorm/vgg11-extra-params": Count(
        "parameters batch normalisation adds to VGG-11", 2 * sum(_VGG11_CHANNELS),
        "a γ and a β per output channel of each of its convolutions",
        "2 · (64 + 128 + 256 + 256 + 512 + 512 + 512 + 512)",
        mistakes={sum(_VGG11_CHANNELS): "Each channel gets two learnable numbers, γ and β.",
                  4 * sum(_VGG11_CHANNELS): "The running mean and variance are buffers, not parameters."}),
}
