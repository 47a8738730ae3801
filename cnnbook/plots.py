"""Figures: image grids, learning curves (live while training), confusion matrix, mistakes."""
from __future__ import annotations

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

        return tqdm(batches, total=total, desc=f"epoch {epoch}/{self.num_epochs}", leave=False)

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

    def close(self) -> None:
        pass


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
