"""Figures: image grids, learning curves (live while training), confusion matrix, mistakes."""
from __future__ import annotations

import os
from typing import Iterable, Sequence

import matplotlib.pyplot as plt
import torch
from torch import Tensor

from .data import CLASSES


def in_notebook() -> bool:
    """True inside a Jupyter kernel (where figures can be updated in place)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ in ("ZMQInteractiveShell", "Shell")


def show_images(images: Tensor, labels: Sequence[int] | Tensor | None = None, ncols: int = 8,
                classes: Sequence[str] = CLASSES, titles: Sequence[str] | None = None, scale: float = 1.3):
    """A grid of grey images (N, 28, 28) or (N, 1, H, W), titled with their class names.

    Returns:
        The matplotlib figure.
    """
    images = images.detach().cpu().float()
    if images.dim() == 4:
        images = images[:, 0]
    if titles is None and labels is not None:
        titles = [classes[int(c)] for c in labels]
    nrows = -(-len(images) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * scale, nrows * (scale + 0.25)), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < len(images):
            ax.imshow(images[i], cmap="gray_r")
            if titles is not None:
                ax.set_title(titles[i], fontsize=8)
    fig.tight_layout()
    return fig


def plot_history(history: Sequence[dict], title: str = "", fig=None):
    """Learning curves: training loss, and training and test accuracy, per epoch."""
    if fig is None:
        fig = plt.figure(figsize=(9, 3.2))
    fig.clear()
    ax_loss, ax_acc = fig.subplots(1, 2)
    epochs = [h["epoch"] for h in history]
    ax_loss.plot(epochs, [h["train_loss"] for h in history], "o-", label="train loss")
    ax_loss.set(xlabel="epoch", ylabel="loss", title="training loss")
    ax_acc.plot(epochs, [h["train_acc"] for h in history], "o-", label="train")
    ax_acc.plot(epochs, [h["test_acc"] for h in history], "s-", label="test")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    ax_acc.legend(loc="lower right")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        if epochs:
            ax.set_xlim(0.8, max(epochs) + 0.2)
            ax.xaxis.get_major_locator().set_params(integer=True)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def compare_histories(histories: dict[str, Sequence[dict]], key: str = "test_acc", ylabel: str | None = None):
    """One curve per run, e.g. ``{"sigmoid": r1.history, "ReLU": r2.history}``, for the value ``key``."""
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    for label, history in histories.items():
        ax.plot([h["epoch"] for h in history], [h[key] for h in history], "o-", label=label)
    ax.set(xlabel="epoch", ylabel=ylabel or key.replace("_", " "))
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig


class TrainingReport:
    """While training: a progress bar per epoch, and in a notebook a figure and a log updated in place,
    leaving one final figure in the saved output. Outside a notebook: one printed line per epoch."""

    def __init__(self, title: str, num_epochs: int, live: bool = True):
        self.title, self.num_epochs = title, num_epochs
        self.live = live and in_notebook()
        self.figure_handle = self.log_handle = None
        self.lines: list[str] = []

    def progress(self, batches: Iterable, total: int, epoch: int) -> Iterable:
        from tqdm.auto import tqdm

        hidden = os.environ.get("CNNBOOK_PROGRESS") == "0"  # set when chapters are executed for the book
        return tqdm(batches, total=total, desc=f"epoch {epoch}/{self.num_epochs}", leave=False, disable=hidden)

    def update(self, history: Sequence[dict]) -> None:
        h = history[-1]
        line = (f"epoch {h['epoch']:>2}/{self.num_epochs}  loss {h['train_loss']:.4f}  train acc "
                f"{h['train_acc']:.4f}  test acc {h['test_acc']:.4f}  {h['examples_per_s']:>8,.0f} examples/s  "
                f"{h['seconds']:.1f} s")
        if not self.live:
            print(line, flush=True)
            return
        from IPython.display import display

        self.lines.append(line)
        fig = plot_history(history, self.title)
        if self.figure_handle is None:
            self.figure_handle = display(fig, display_id=True)
            self.log_handle = display(_Text("\n".join(self.lines)), display_id=True)
        else:
            self.figure_handle.update(fig)
            self.log_handle.update(_Text("\n".join(self.lines)))
        plt.close(fig)

class _Text:
    """Plain text that a display handle can update in place."""

    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        return self.text


def confusion_matrix(probs: Tensor, labels: Tensor, num_classes: int = 10) -> Tensor:
    """Counts (true class, predicted class) as a (num_classes, num_classes) tensor."""
    predicted = probs.argmax(dim=1)
    return torch.bincount(labels * num_classes + predicted, minlength=num_classes**2).reshape(num_classes, -1)


def plot_confusion_matrix(probs: Tensor, labels: Tensor, classes: Sequence[str] = CLASSES):
    """The confusion matrix as a heat map with counts; the diagonal holds the correct predictions."""
    cm = confusion_matrix(probs, labels, len(classes))
    fig, ax = plt.subplots(figsize=(6.2, 5.4))
    ax.imshow(cm / cm.sum(dim=1, keepdim=True).clamp(min=1), cmap="Blues")
    for i in range(len(classes)):
        for j in range(len(classes)):
            value = int(cm[i, j])
            if value:
                ax.text(j, i, value, ha="center", va="center", fontsize=7,
                        color="white" if i == j else "black")
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(classes)), classes, fontsize=8)
    ax.set(xlabel="predicted class", ylabel="true class")
    fig.tight_layout()
    return fig


def show_mistakes(images: Tensor, probs: Tensor, labels: Tensor, k: int = 16, ncols: int = 8,
                  classes: Sequence[str] = CLASSES):
    """The ``k`` wrong predictions made with the highest confidence: "predicted (confidence) / true"."""
    confidence, predicted = probs.max(dim=1)
    wrong = torch.nonzero(predicted != labels).flatten()
    worst = wrong[confidence[wrong].argsort(descending=True)[:k]]
    titles = [f"{classes[predicted[i]]} ({confidence[i]:.0%})\ntrue: {classes[labels[i]]}" for i in worst]
    return show_images(images[worst.to(images.device)], titles=titles, ncols=ncols, scale=1.5)


_COLORS = {"conv": "#4C72B0", "pool": "#DD8452", "linear": "#55A868", "norm": "#8172B3", "other": "#937860"}


def _kind(module) -> str:
    name = type(module).__name__.lower()
    for kind, words in (("conv", ("conv",)), ("pool", ("pool",)), ("linear", ("linear",)),
                        ("norm", ("norm",))):
        if any(w in name for w in words):
            return kind
    # a block: colour it by the first layer it contains that has a kind, passing over normalisation
    # (a pre-activation block, BN-ReLU-conv, is a convolution block)
    kinds = [_kind(child) for child in module.children()]
    return next((k for k in kinds if k not in ("norm", "other")), "norm" if "norm" in kinds else "other")


def plot_network(net, input_size: Sequence[int] = (1, 1, 28, 28), labels: Sequence[str] | None = None,
                 title: str = "", skip: Sequence[str] = ("ReLU", "Sigmoid", "Tanh", "Dropout", "Flatten")):
    """Draw a network as a row of boxes, one per top-level layer or block, with its output shape.

    A box's height grows with the feature map's side, its width with the number of channels, so
    the picture shows resolution shrinking and channels growing. Activations, dropout and flatten
    (``skip``) are left out to keep the picture readable. Shapes are measured by a forward pass.

    Args:
        net: the network; its direct children are the boxes (write blocks as child modules).
        input_size: the input's (batch, channels, height, width).
        labels: one label per drawn box (default: the layer's class name).

    Returns:
        The matplotlib figure.
    """
    import math

    from matplotlib.patches import FancyBboxPatch

    children = [(name, m) for name, m in net.named_children() if type(m).__name__ not in skip]
    shapes: dict[str, tuple] = {}
    hooks = [m.register_forward_hook(lambda mod, inp, out, n=name: shapes.__setitem__(n, tuple(out.shape)))
             for name, m in children]
    device = next(net.parameters()).device
    was_training = net.training
    net.eval()
    try:
        with torch.no_grad():
            net(torch.zeros(*input_size, device=device))
    finally:
        net.train(was_training)
        for h in hooks:
            h.remove()
    boxes = [("input", None, tuple(input_size))] + [(n, m, shapes[n]) for n, m in children]
    labels = ["input"] + list(labels or [type(m).__name__ for _, m, _ in boxes[1:]])
    if len(labels) != len(boxes):
        raise ValueError(f"{len(labels) - 1} labels given for {len(boxes) - 1} drawn layers")
    def side(shape: tuple) -> int:  # a feature map's side; 1 for a vector
        return shape[2] if len(shape) == 4 else 1

    largest = max(side(shape) for _, _, shape in boxes)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.05 * len(boxes)), 3.0))
    x = 0.0
    for (name, module, shape), label in zip(boxes, labels):
        channels = shape[1]
        height = 0.6 + 2.2 * math.sqrt(side(shape) / largest)
        width = 0.25 + 0.12 * math.log2(max(channels, 1))
        color = "#BBBBBB" if module is None else _COLORS[_kind(module)]
        ax.add_patch(FancyBboxPatch((x, -height / 2), width, height, boxstyle="round,pad=0.02",
                                    facecolor=color, edgecolor="black", linewidth=0.6, alpha=0.85))
        dims = "×".join(str(d) for d in shape[1:])
        ax.text(x + width / 2, -height / 2 - 0.12, f"{label}\n{dims}", ha="center", va="top", fontsize=7)
        x += width + 0.35
    ax.set_xlim(-0.2, x)
    ax.set_ylim(-2.4, 1.7)
    ax.axis("off")
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in _COLORS.values()]
    ax.legend(handles, list(_COLORS), loc="upper center", ncol=5, fontsize=7, frameon=False)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_tradeoffs(records):
    """Test accuracy against parameters, MACs per image and training time: one point per results record.

    Points from a profile other than most records' are drawn hollow (they are not comparable).
    """
    from .results import in_book_order, main_profile

    records = in_book_order(list(records))
    main = main_profile(records)
    panels = [("parameters", lambda r: r.parameters, "log"),
              ("multiply-accumulates per image", lambda r: r.macs, "log"),
              ("training time (minutes)", lambda r: r.wall_time_s / 60, "linear")]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), sharey=True)
    for ax, (label, value, scale) in zip(axes, panels):
        for i, r in enumerate(records):
            color = plt.cm.tab10(i % 10)
            hollow = r.profile != main
            ax.scatter(value(r), r.test_acc, s=60, color=color, facecolors="none" if hollow else color,
                       linewidths=1.5, zorder=3)
            ax.annotate(r.architecture.split(" (")[0] + (" †" if hollow else ""), (value(r), r.test_acc),
                        textcoords="offset points", xytext=(5, 4), fontsize=8)
        ax.set(xscale=scale, xlabel=label)
        ax.grid(alpha=0.3)
        ax.margins(x=0.2, y=0.15)
    axes[0].set_ylabel("test accuracy")
    fig.suptitle(f"Accuracy and cost of each chapter's network ({main} profile"
                 + (", † another profile)" if any(r.profile != main for r in records) else ")"))
    fig.tight_layout()
    return fig
