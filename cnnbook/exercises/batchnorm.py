"""Chapter 8 (batch normalisation): the checked exercises."""
import torch
from torch import nn

from .core import Check, Choice, Code, Count, right, wrong
from .reference import difference

_VGG11_CHANNELS = (64, 128, 256, 256, 512, 512, 512, 512)

# What differs once γ, β and the running estimates hold values other than their first ones (1, 0).
_WITH_RANDOM_STATE = {
    "": "With γ, β and the running estimates changed, your output in evaluation mode differs from "
        "nn.BatchNorm2d's: normalise with the running estimates, then scale by γ and shift by β "
        "(γ · x̂ + β).",
    "training": "With γ and β changed, your output in training mode differs from nn.BatchNorm2d's: "
                "normalise with the batch's statistics, then scale by γ and shift by β (γ · x̂ + β).",
    "after training": "After a training step from changed running estimates, your output in evaluation "
                      "mode differs from nn.BatchNorm2d's: update them with momentum 0.1, "
                      "(1 − 0.1) · old + 0.1 · batch (the variance unbiased).",
}


def _test_batch_norm(build) -> Check:
    """Training mode: the batch's statistics; evaluation mode: the running estimates."""
    torch.manual_seed(0)
    X = torch.randn(8, 4, 5, 5) * 3 + 2
    try:
        mine, ref = build(), nn.BatchNorm2d(4)
        mine.train()
        out = mine(X)
    except Exception as err:  # noqa: BLE001 - the reader's mistake, shown in one line
        return wrong(f"Your layer fails on a batch of shape (8, 4, 5, 5): {type(err).__name__}: {err}")
    if not isinstance(out, torch.Tensor) or out.shape != X.shape:
        return wrong("Your layer should return a tensor of its input's shape.")
    n = sum(p.numel() for p in mine.parameters() if p.requires_grad)
    if n != 8:
        return wrong(f"Your layer has {n} learnable parameters; it needs a scale γ and a shift β "
                     "per channel (nn.Parameter), 2 · 4 = 8 here.")
    expected = ref.train()(X)
    if not torch.allclose(out, expected, atol=1e-4):
        return wrong("In training mode your output differs from nn.BatchNorm2d's: normalise each "
                     "channel with the mean and the biased variance over the batch and the pixels "
                     "(dimensions 0, 2 and 3), then scale by γ and shift by β.")
    mine.eval(), ref.eval()
    Y = torch.randn(2, 4, 5, 5)
    if not torch.allclose(mine(Y), ref(Y), atol=1e-4):
        return wrong("In evaluation mode your output differs from nn.BatchNorm2d's: normalise with "
                     "the running estimates, updated in training with momentum 0.1 (the running "
                     "variance from the unbiased batch variance).")
    found = difference(build(), nn.BatchNorm2d(4), (8, 4, 5, 5))
    if found is not None:
        return wrong(_WITH_RANDOM_STATE.get(found.mode, "Your layer's tensors do not pair up with "
                                                        "nn.BatchNorm2d's: {}.").format(found.where))
    return right("Your layer normalises with the batch's statistics in training and with its "
                 "running estimates in evaluation, as nn.BatchNorm2d does.")


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
    "batchnorm/why-eval-mode": Choice(
        "Why must a network with batch normalisation be switched to net.eval() before testing?",
        {"a": "To switch off the gradient computation.",
         "b": "In training mode each image is normalised with its batch's statistics, so its "
              "prediction depends on the other images of the batch; evaluation mode uses the fixed "
              "running estimates instead.",
         "c": "Because γ and β are only learned in evaluation mode.",
         "d": "To make the network run faster on the GPU."},
        answer="b",
        explain="The running estimates make the layer a fixed affine map: every image gets the same "
                "answer whatever its companions (the chapter's demo shows both modes).",
        wrong={"a": "That is torch.no_grad(); eval() changes what BN and dropout compute.",
               "c": "γ and β are learned in training, like every other parameter.",
               "d": "Speed is not the reason: the outputs themselves differ between the modes."}),
    "batchnorm/why-noise-regularises": Choice(
        "Why does batch normalisation act as a regulariser?",
        {"a": "It adds parameters, which always reduces overfitting.",
         "b": "In training, an example is normalised with statistics of a randomly drawn "
              "mini-batch, so its activations carry noise that changes from epoch to epoch.",
         "c": "It keeps the weights small, like weight decay.",
         "d": "It removes the need for a validation split."},
        answer="b",
        explain="The batch's mean and variance depend on the other examples drawn with it: a "
                "noise, as with dropout, and the paper found dropout could be reduced or removed.",
        wrong={"a": "BN adds very few parameters, and more parameters do not regularise.",
               "c": "The normalisation divides the scale of the weights away; it does not shrink them.",
               "d": "Settings must still be chosen on data the network did not train on."}),
    "batchnorm/batch-norm-layer": Code(
        "a batch normalisation layer BatchNorm(num_features) for convolution outputs, with the "
        "same results as nn.BatchNorm2d in training and in evaluation mode",
        _test_batch_norm, build_args=(4,)),
}
