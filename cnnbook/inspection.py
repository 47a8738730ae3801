"""Look inside a network: layer-by-layer shapes (torchinfo), parameter and multiply-add counts."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

COLUMNS = ("output_size", "num_params", "mult_adds")


def check_forward(net: nn.Module, input_size: Sequence[int], num_classes: int | None = None) -> None:
    """Run one forward pass of zeros and turn a shape mismatch into an error that says what to fix.

    Raises:
        ValueError: the network cannot take ``input_size`` or does not return ``num_classes`` scores.
    """
    device = next(net.parameters()).device if any(True for _ in net.parameters()) else torch.device("cpu")
    X = torch.zeros(*input_size, device=device)
    was_training = net.training
    net.eval()
    try:
        with torch.no_grad():
            out = net(X)
    except RuntimeError as err:
        raise ValueError(
            f"{type(net).__name__} cannot process an input of shape {tuple(input_size)} "
            f"(batch, channels, height, width):\n  {str(err).splitlines()[0]}\n"
            "Check the first convolution's in_channels (Fashion-MNIST images have 1 channel), the input "
            "resolution the network was designed for (see the profile's 'resize'), and the in_features of "
            "the first Linear layer after Flatten. cnnbook.summary(net, input_size) shows the shapes "
            "layer by layer, up to the layer that fails."
        ) from None
    finally:
        net.train(was_training)
    if num_classes is not None and tuple(out.shape) != (input_size[0], num_classes):
        raise ValueError(
            f"{type(net).__name__} returns shape {tuple(out.shape)} for a batch of {input_size[0]}, "
            f"expected ({input_size[0]}, {num_classes}): one score per class. Check the last layer's "
            f"output size (num_classes={num_classes})."
        )


def summary(net: nn.Module, input_size: Sequence[int] = (1, 1, 28, 28), depth: int = 3, **kwargs):
    """torchinfo's table: per layer the output shape, parameters and multiply-adds.

    Args:
        net: the network.
        input_size: (batch, channels, height, width) of the input, e.g. (1, 3, 224, 224).
        depth: how many levels of nested modules to show.
        **kwargs: passed on to ``torchinfo.summary`` (e.g. ``col_names``).

    Returns:
        torchinfo's ``ModelStatistics``: shown as the table, with ``total_params`` and
        ``total_mult_adds`` as numbers.
    """
    import torchinfo

    device = next(net.parameters()).device if any(True for _ in net.parameters()) else "cpu"
    options = dict(col_names=COLUMNS, depth=depth, verbose=0, device=device, row_settings=("var_names",))
    options.update(kwargs)
    try:
        return torchinfo.summary(net, input_size=tuple(input_size), **options)
    except RuntimeError as err:  # torchinfo wraps the layer's error; say what to do about it
        check_forward(net, input_size)  # raises the actionable ValueError when the shapes are wrong
        raise err


def count_params(net: nn.Module, trainable_only: bool = False) -> int:
    """The number of parameters (weights and biases) of ``net``."""
    return sum(p.numel() for p in net.parameters() if p.requires_grad or not trainable_only)


def count_macs(net: nn.Module, input_size: Sequence[int] = (1, 1, 28, 28)) -> int:
    """Multiply-accumulate operations of one forward pass at ``input_size``.

    torchinfo's convention: a convolution counts one per parameter, bias included, per output position.
    """
    return int(summary(net, input_size, depth=1).total_mult_adds)
