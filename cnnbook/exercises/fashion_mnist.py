"""Chapter 1 (Fashion-MNIST): the checked exercises."""
from .core import Count

EXERCISES = {
    "fashion-mnist/batch-bytes": Count(
        "bytes in a float32 batch of 256 images", 256 * 1 * 28 * 28 * 4,
        "images · channels · height · width · bytes per float32 (4)", "256 · 1 · 28 · 28 · 4",
        mistakes={256 * 28 * 28: "That counts one byte per value; a float32 takes 4.",
                  256 * 28 * 28 * 32: "That counts bits; a float32 takes 32 bits = 4 bytes."}),
    "fashion-mnist/pixels-96": Count(
        "times more pixels at 96 × 96", 96**2 / 28**2,
        "the ratio of the pixel counts, side² / side²", "96² / 28²",
        mistakes={96 / 28: "That is the ratio of the sides; the pixels grow with the side squared."}),
}
