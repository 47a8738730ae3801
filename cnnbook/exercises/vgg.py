"""Chapter 5 (VGG): the checked exercises."""
from .core import ConvParams, Count, LinearParams

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
}
