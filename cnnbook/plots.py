"""Figures: image grids, learning curves (live while training), confusion matrix, mistakes, networks.

Every figure says what it shows: :func:`describe` attaches an alt text to a figure, the functions here
describe theirs, and in a notebook the text travels with the figure's PNG output (its metadata
``{"image/png": {"alt": ...}}``), where the book's site puts it on the ``<img>``. A figure that nobody
described gets one made from its titles and axis labels.

Figures are drawn for a page about 750 pixels wide: at most about 8 inches at 100 dpi, text at 8 points
or more, so that nothing is shown much smaller than drawn.
"""
from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from torch import Tensor

from .data import CLASSES

MAX_WIDTH = 8.0  # inches: a figure wider than this is shown shrunk on a 750-pixel page


def describe(fig: Figure, text: str) -> Figure:
    """Attach an alt text to a figure: what it shows, for a reader who cannot see it.

    Example: ``cnnbook.describe(fig, "Training loss of three learning rates over 5 epochs")``.

    Returns:
        The same figure.
    """
    fig.cnnbook_alt = " ".join(text.split())
    return fig


def alt_text(fig: Figure) -> str:
    """The figure's alt text: the one given to :func:`describe`, else one made from its titles and labels."""
    given = getattr(fig, "cnnbook_alt", None)
    if given:
        return given
    parts = []
    if fig._suptitle is not None and fig._suptitle.get_text():
        parts.append(fig._suptitle.get_text())
    for ax in fig.axes:
        if not ax.get_visible() or not ax.axison and not ax.get_title():
            continue
        words = ax.get_title()
        if ax.get_ylabel() or ax.get_xlabel():
            words += (": " if words else "") + f"{ax.get_ylabel() or 'value'} against {ax.get_xlabel() or 'x'}"
        if words:
            parts.append(words)
    return "Figure: " + "; ".join(parts) if parts else "Figure"


def _register_alt_text() -> None:
    """In IPython, every figure's PNG output carries its alt text in the output's metadata. The hook sits
    on the mime-bundle formatter, which matplotlib's inline backend leaves alone when it (re)configures
    its PNG formatter."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is None:
        return
    shell.display_formatter.mimebundle_formatter.for_type(
        Figure, lambda fig, include=None, exclude=None: ({}, {"image/png": {"alt": alt_text(fig)}}))


_register_alt_text()


def in_notebook() -> bool:
    """True inside a Jupyter kernel (where figures can be updated in place)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ in ("ZMQInteractiveShell", "Shell")


def show_images(images: Tensor, labels: Sequence[int] | Tensor | None = None, ncols: int = 8,
                classes: Sequence[str] = CLASSES, titles: Sequence[str] | None = None, scale: float = 1.0,
                description: str | None = None):
    """A grid of grey images (N, 28, 28) or (N, 1, H, W), titled with their class names.

    Args:
        scale: inches per image; the grid is kept within :data:`MAX_WIDTH` (more rows, not smaller
            labels, when ``ncols`` images would not fit).
        description: the alt text (default: how many images, and their titles).

    Returns:
        The matplotlib figure.
    """
    images = images.detach().cpu().float()
    if images.dim() == 4:
        images = images[:, 0]
    if titles is None and labels is not None:
        titles = [classes[int(c)] for c in labels]
    ncols = max(1, min(ncols, len(images), int(MAX_WIDTH // scale)))
    nrows = -(-len(images) // ncols)
    lines = max((str(t).count("\n") + 1 for t in titles), default=0) if titles is not None else 0
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * scale, nrows * (scale + 0.18 * lines)),
                             squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < len(images):
            ax.imshow(images[i], cmap="gray_r")
            if titles is not None:
                ax.set_title(titles[i], fontsize=9)
    fig.tight_layout()
    if description is None:
        shown = f": {', '.join(str(t).replace(chr(10), ' ') for t in titles[:len(images)])}" if titles is not None else ""
        description = f"A grid of {len(images)} grey images{shown}"
    return describe(fig, description[:600])


_NAMES = {"val_acc": "validation accuracy", "test_acc": "test accuracy", "train_acc": "training accuracy",
          "train_loss": "training loss"}


def _value(entry: dict, key: str):
    """``entry[key]``; validation accuracy falls back to test accuracy (records made before the split)."""
    if key == "val_acc" and entry.get("val_acc") is None:
        return entry.get("test_acc")
    return entry.get(key)


def _epoch_axis(ax, epochs: Sequence[float]) -> None:
    """Whole epochs only on the x axis."""
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if epochs:
        ax.set_xlim(min(epochs) - 0.2, max(epochs) + 0.2)


def plot_history(history: Sequence[dict], title: str = "", fig=None):
    """Learning curves: training loss, and training and validation accuracy, per epoch."""
    if fig is None:
        fig = plt.figure(figsize=(7.8, 3.0))
    fig.clear()
    ax_loss, ax_acc = fig.subplots(1, 2)
    epochs = [h["epoch"] for h in history]
    ax_loss.plot(epochs, [h["train_loss"] for h in history], "o-", label="train loss")
    ax_loss.set(xlabel="epoch", ylabel="loss", title="training loss")
    ax_acc.plot(epochs, [h["train_acc"] for h in history], "o-", label="train")
    validation = [_value(h, "val_acc") for h in history]
    uses_test = any(h.get("val_acc") is None for h in history)
    ax_acc.plot(epochs, validation, "s-", label="test" if uses_test else "validation")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    ax_acc.legend(loc="lower right")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        _epoch_axis(ax, epochs)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    text = f"Learning curves{' of ' + title if title else ''} over {len(epochs)} epochs: training loss"
    if history:
        last = history[-1]
        held = "test" if uses_test else "validation"
        text += (f" from {history[0]['train_loss']:.3f} to {last['train_loss']:.3f}; training accuracy "
                 f"{last['train_acc']:.1%} and {held} accuracy {validation[-1]:.1%} after the last epoch")
    return describe(fig, text)


def compare_histories(histories: dict[str, Sequence[dict]], key: str = "val_acc", ylabel: str | None = None):
    """One curve per run, e.g. ``{"sigmoid": r1.history, "ReLU": r2.history}``, for the value ``key``
    (validation accuracy by default; records without it show their test accuracy)."""
    fig, ax = plt.subplots(figsize=(6.0, 3.4))
    epochs = []
    for label, history in histories.items():
        ax.plot([h["epoch"] for h in history], [_value(h, key) for h in history], "o-", label=label)
        epochs += [h["epoch"] for h in history]
    name = ylabel or _NAMES.get(key, key.replace("_", " "))
    ax.set(xlabel="epoch", ylabel=name)
    ax.grid(alpha=0.3)
    _epoch_axis(ax, epochs)
    ax.legend()
    fig.tight_layout()
    finals = ", ".join(f"{label} {_value(h[-1], key):.3g}" for label, h in histories.items() if h)
    return describe(fig, f"{name.capitalize()} per epoch of {len(histories)} runs; after the last epoch: {finals}")


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
                ax.text(j, i, value, ha="center", va="center", fontsize=8,
                        color="white" if i == j else "black")
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right", fontsize=9)
    ax.set_yticks(range(len(classes)), classes, fontsize=9)
    ax.set(xlabel="predicted class", ylabel="true class")
    fig.tight_layout()
    off = cm.clone()
    off.fill_diagonal_(0)
    i, j = divmod(int(off.argmax()), len(classes))
    return describe(fig, f"Confusion matrix of {int(cm.sum()):,} test images, true class against predicted "
                         f"class: {int(cm.trace()):,} on the diagonal (correct); the largest mistake is "
                         f"{classes[i]} taken for {classes[j]} ({int(off[i, j])} images)")


def show_mistakes(images: Tensor, probs: Tensor, labels: Tensor, k: int = 16, ncols: int = 6,
                  classes: Sequence[str] = CLASSES):
    """The ``k`` wrong predictions made with the highest confidence: "predicted (confidence) / true"."""
    confidence, predicted = probs.max(dim=1)
    wrong = torch.nonzero(predicted != labels).flatten()
    worst = wrong[confidence[wrong].argsort(descending=True)[:k]]
    titles = [f"{classes[predicted[i]]} ({confidence[i]:.0%})\ntrue: {classes[labels[i]]}" for i in worst]
    pairs = ", ".join(f"{classes[labels[i]]} taken for {classes[predicted[i]]}" for i in worst[:8])
    return show_images(images[worst.to(images.device)], titles=titles, ncols=ncols, scale=1.3,
                       description=f"The {len(worst)} test images the network gets wrong with the highest "
                                   f"confidence, each titled with its prediction and true class: {pairs}")


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
    sizes = [(0.25 + 0.12 * math.log2(max(shape[1], 1)), 0.6 + 2.2 * math.sqrt(side(shape) / largest))
             for _, _, shape in boxes]
    # a long network wraps onto several rows instead of shrinking: at most `per_row` boxes a row
    per_row = max(2, int((MAX_WIDTH - 0.4) // 1.05))
    rows = [list(range(i, min(i + per_row, len(boxes)))) for i in range(0, len(boxes), per_row)]
    row_height = 3.7
    fig, ax = plt.subplots(figsize=(max(6.0, 1.05 * max(len(r) for r in rows)),
                                    0.6 + 2.35 * len(rows) + (0.25 if title else 0)))
    right = 0.0
    for r, row in enumerate(rows):
        x, y = 0.0, -r * row_height
        for i in row:
            (name, module, shape), label, (width, height) = boxes[i], labels[i], sizes[i]
            color = "#BBBBBB" if module is None else _COLORS[_kind(module)]
            ax.add_patch(FancyBboxPatch((x, y - height / 2), width, height, boxstyle="round,pad=0.02",
                                        facecolor=color, edgecolor="black", linewidth=0.6, alpha=0.85))
            dims = "×".join(str(d) for d in shape[1:])
            ax.text(x + width / 2, y - height / 2 - 0.12, f"{label}\n{dims}", ha="center", va="top", fontsize=8)
            x += width + 0.35
        if r < len(rows) - 1:  # the row goes on below
            ax.annotate("", xy=(x - 0.05, y), xytext=(x - 0.33, y),
                        arrowprops=dict(arrowstyle="->", color="#555555", lw=1))
            ax.text(x, y, "…", ha="left", va="center", fontsize=10, color="#555555")
        right = max(right, x)
    ax.set_xlim(-0.2, max(right, 1.05 * per_row if len(rows) > 1 else right))
    ax.set_ylim(-(len(rows) - 1) * row_height - 2.4, 1.7)
    ax.set_aspect("auto")
    ax.axis("off")
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in _COLORS.values()]
    ax.legend(handles, list(_COLORS), loc="upper center", ncol=5, fontsize=8, frameon=False)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    path = ", ".join(f"{label} {'×'.join(str(d) for d in shape[1:])}"
                     for (_, _, shape), label in zip(boxes, labels))
    return describe(fig, f"Network drawing{': ' + title if title else ''}. {len(boxes) - 1} layers or blocks "
                         f"in order, with their output shapes: {path}")


def _spread_labels(ax, texts, gap: float = 2.0) -> None:
    """Move point labels apart vertically (in pixels) where they overlap, keeping their order."""
    fig = ax.figure
    renderer = fig.canvas.get_renderer()
    for _ in range(30):
        moved = False
        boxes = [t.get_window_extent(renderer) for t in texts]
        order = sorted(range(len(texts)), key=lambda i: boxes[i].y0)
        for a, b in zip(order, order[1:]):
            A, B = boxes[a], boxes[b]
            if A.x1 > B.x0 and B.x1 > A.x0 and A.y1 + gap > B.y0:  # overlap: push the upper one up
                shift = (A.y1 + gap - B.y0) / 2 + 0.5
                for index, sign in ((a, -1), (b, 1)):
                    x, y = texts[index].get_position()
                    texts[index].set_position((x, y + sign * shift * 72 / fig.dpi))
                moved = True
                boxes = [t.get_window_extent(renderer) for t in texts]
        if not moved:
            return


def plot_tradeoffs(records):
    """Test accuracy against parameters, MACs per image and training time: one point per results record.

    Points from a profile other than most records' are drawn hollow (they are not comparable). The three
    panels are stacked, and labels that would overlap are moved apart, with a line to their point.
    """
    from .results import in_book_order, main_profile

    records = [r for r in in_book_order(list(records)) if r.test_acc is not None]
    main = main_profile(records)
    panels = [("parameters", lambda r: r.parameters, "log"),
              ("multiply-accumulates per image", lambda r: r.macs, "log"),
              ("training time (minutes)", lambda r: r.wall_time_s / 60, "linear")]
    fig, axes = plt.subplots(3, 1, figsize=(7.5, 9.0))
    for ax, (label, value, scale) in zip(axes, panels):
        texts = []
        for i, r in enumerate(records):
            color = plt.cm.tab10(i % 10)
            hollow = r.profile != main
            ax.scatter(value(r), r.test_acc, s=60, color=color, facecolors="none" if hollow else color,
                       linewidths=1.5, zorder=3)
            texts.append(ax.annotate(r.architecture.split(" (")[0] + (" †" if hollow else ""),
                                     (value(r), r.test_acc), textcoords="offset points", xytext=(7, 0),
                                     va="center", fontsize=9,
                                     arrowprops=dict(arrowstyle="-", color="#999999", lw=0.6,
                                                     shrinkA=0, shrinkB=3)))
        ax.set(xscale=scale, xlabel=label, ylabel="test accuracy")
        ax.grid(alpha=0.3)
        ax.margins(x=0.25, y=0.2)
    fig.suptitle(f"Accuracy and cost of each chapter's network ({main} profile"
                 + (", † another profile)" if any(r.profile != main for r in records) else ")"))
    fig.tight_layout()
    fig.canvas.draw()
    for ax in axes:
        _spread_labels(ax, [t for t in ax.texts])
    best = max(records, key=lambda r: r.test_acc) if records else None
    text = (f"Three scatter plots of test accuracy against parameters, multiply-accumulates per image and "
            f"training time, one point per network ({len(records)} networks)")
    if best:
        text += f"; the most accurate is {best.architecture} at {best.test_acc:.1%}"
    return describe(fig, text)
