"""Look inside a network: layer-by-layer shapes (torchinfo), parameter and multiply-add counts."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from .errors import NetworkError

COLUMNS = ("output_size", "num_params", "mult_adds")


def check_forward(net: nn.Module, input_size: Sequence[int], num_classes: int | None = None) -> None:
    """Run one forward pass of zeros and turn a shape mismatch into an error that says what to fix.

    Raises:
        NetworkError: the network cannot take ``input_size`` or does not return ``num_classes`` scores.
    """
    device = next(net.parameters()).device if any(True for _ in net.parameters()) else torch.device("cpu")
    X = torch.zeros(*input_size, device=device)
    was_training = net.training
    net.eval()
    try:
        with torch.no_grad():
            out = net(X)
    except RuntimeError as err:
        raise NetworkError(
            f"{type(net).__name__} cannot take images of shape {tuple(input_size)}: "
            f"{str(err).splitlines()[0][:160]}\n"
            "Check the first convolution's in_channels (1 for Fashion-MNIST), the profile's resize, and the "
            "first Linear's in_features; cnnbook.summary(net, input_size) shows the shapes layer by layer."
        ) from None
    finally:
        net.train(was_training)
    if not isinstance(out, torch.Tensor):
        raise NetworkError(
            f"{type(net).__name__} returns a {type(out).__name__}, not one tensor of class scores. Return only "
            "the scores from forward (e.g. GoogLeNet's auxiliary outputs: return them only when training "
            "them, or drop them)."
        )
    if num_classes is not None and tuple(out.shape) != (input_size[0], num_classes):
        raise NetworkError(
            f"{type(net).__name__} returns shape {tuple(out.shape)} for a batch of {input_size[0]}, "
            f"expected ({input_size[0]}, {num_classes}): one score per class. Check the last layer's "
            f"output size (num_classes={num_classes})."
        )


class Summary:
    """torchinfo's table, fitted to a ~90-character code box, with the multiply-adds' unit spelled right.

    Attributes such as ``total_params`` and ``total_mult_adds`` are torchinfo's ``ModelStatistics``'.
    """

    def __init__(self, stats):
        self.stats = stats

    def __getattr__(self, name):
        return getattr(self.stats, name)

    def __repr__(self) -> str:
        # torchinfo prints its unit as "Units.MEGABYTES" for mult-adds (a known bug): write the unit ourselves
        lines = []
        for line in str(self.stats).splitlines():
            if line.startswith("Total mult-adds"):
                macs = self.stats.total_mult_adds
                line = (f"Total mult-adds: {macs / 1e9:,.2f} G" if macs >= 1e9 else
                        f"Total mult-adds: {macs / 1e6:,.2f} M")
            lines.append(line)
        return "\n".join(lines)

    __str__ = __repr__


def summary(net: nn.Module, input_size: Sequence[int] = (1, 1, 28, 28), depth: int = 3, **kwargs) -> Summary:
    """torchinfo's table: per layer the output shape, parameters and multiply-adds.

    Args:
        net: the network.
        input_size: (batch, channels, height, width) of the input, e.g. (1, 3, 224, 224).
        depth: how many levels of nested modules to show.
        **kwargs: passed on to ``torchinfo.summary`` (e.g. ``col_names``).

    Returns:
        A :class:`Summary`: shown as the table, with ``total_params`` and ``total_mult_adds`` as numbers.
        Multiply-adds count convolutions and linear layers only; element-wise work (ReLU, pooling,
        batch norm at inference) is left out, as in most papers.
    """
    import torchinfo

    device = next(net.parameters()).device if any(True for _ in net.parameters()) else "cpu"
    options = dict(col_names=COLUMNS, depth=depth, verbose=0, device=device, row_settings=("var_names",),
                   col_width=16)
    options.update(kwargs)
    try:
        return Summary(torchinfo.summary(net, input_size=tuple(input_size), **options))
    except RuntimeError as err:  # torchinfo wraps the layer's error; say what to do about it
        check_forward(net, input_size)  # raises the actionable NetworkError when the shapes are wrong
        raise err


def count_params(net: nn.Module, trainable_only: bool = False) -> int:
    """The number of parameters (weights and biases) of ``net``."""
    return sum(p.numel() for p in net.parameters() if p.requires_grad or not trainable_only)


def count_macs(net: nn.Module, input_size: Sequence[int] = (1, 1, 28, 28)) -> int:
    """Multiply-accumulate operations of one forward pass at ``input_size``.

    torchinfo's convention: a convolution counts one per parameter, bias included, per output position.
    """
    return int(summary(net, input_size, depth=1).total_mult_adds)
