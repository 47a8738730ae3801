"""The paragraphs every chapter writes after training, written once: how the run went, what it gets wrong.

    cnnbook.describe_run(result)                         # accuracy with its noise, speed, precision
    cnnbook.describe_mistakes(result, previous="lenet")  # confusions, and what changed since LeNet

Both return Markdown that a notebook shows as formatted text (and plain text elsewhere). The numbers
come from the results record, so the sentences stay true whatever the run.
"""
from __future__ import annotations

import math

from .data import CLASSES
from .results import (PER_CLASS_Z, Result, difference_is_noise, load_result, plural, standard_error,
                      within_noise)


class Markdown:
    """Markdown text: formatted in a notebook, plain in a terminal."""

    def __init__(self, text: str):
        self.text = text

    def _repr_markdown_(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return self.text

    def __str__(self) -> str:
        return self.text


def _pct(p: float) -> str:
    return f"{100 * p:.1f} %"


def interruption_note(result: Result) -> str | None:
    """One sentence when the run did not finish (what happened, which cell to run again), else None."""
    planned = result.settings.get("num_epochs", result.num_epochs)
    if result.status == "finished" and result.num_epochs:
        return None
    if result.num_epochs == 0:
        return (f"**Training was {result.status} before its first epoch ended**: the network is untrained, "
                "so the figures below mean nothing yet. Run the training cell again.")
    return (f"**Training was {result.status} after {result.num_epochs} of {plural(planned, 'epoch')}**: what "
            "follows describes a partly trained network, and the chapter's record was not replaced. Run "
            "the training cell again to finish it.")


NOT_LEARNED = ("**The network did not learn**: its accuracy stayed near chance (10 % for ten classes). "
               "Usually the learning rate is far too high — the first steps push the ReLUs to output zero "
               "for every image, a *dead* network whose gradients vanish — or far too low; try lr ten "
               "times smaller (or larger), and check that the loss falls in the first epoch.")


def describe_run(result: Result) -> Markdown:
    """A paragraph on a training run: accuracy (with its standard error), speed, device and precision."""
    parts = []
    note = interruption_note(result)
    if note:
        parts.append(note)
    if result.num_epochs:
        if result.test_acc is not None:
            se = result.test_acc_se or 0.0
            n = result.test_size or 10_000
            parts.append(
                f"After {plural(result.num_epochs, 'epoch')} the network classifies **{_pct(result.test_acc)}** "
                f"of the {n:,} test images correctly, ± {100 * se:.2f} points (one standard error; a "
                f"difference between two such results is beyond noise only if it reaches twice the standard "
                f"error of the difference, about {200 * math.sqrt(2) * se:.2f} points for two runs this "
                f"precise).")
            seen = []
            if result.val_acc is not None:
                seen.append(f"{_pct(result.val_acc)} of the validation images")
            seen.append(f"{_pct(result.train_acc)} of the training images (averaged over the last epoch, "
                        "while the weights were still changing)")
            parts.append("It got " + " and ".join(seen) + ".")
        elif result.val_acc is not None:
            parts.append(f"After {plural(result.num_epochs, 'epoch')} the network classifies "
                         f"**{_pct(result.val_acc)}** of the validation images correctly "
                         f"({_pct(result.train_acc)} of the training images).")
        parts.append(
            f"It has {result.parameters:,} parameters and needs {result.macs:,} multiply-adds per image; "
            f"training took {result.wall_time_s:.0f} s on {result.device_name} in {result.precision}, at "
            f"{result.examples_per_s:,.0f} images per second.")
        if not result.learned:
            parts.append(NOT_LEARNED)
    return Markdown(" ".join(parts))


def _a(word: str) -> str:
    return "an" if word[0].lower() in "aeiou" else "a"


def _confusion(result: Result) -> list[list[int]] | None:
    return result.confusion if result.confusion and len(result.confusion) == len(CLASSES) else None


def describe_mistakes(result: Result, previous: str | None = None, classes=CLASSES) -> Markdown:
    """What the network confuses most, its hardest and easiest classes, and -- with ``previous``, another
    chapter's results key such as ``"lenet"`` -- which classes got better or worse since that chapter."""
    cm = _confusion(result)
    if cm is None or not result.per_class_acc:
        return Markdown(interruption_note(result) or "This run has no test evaluation to describe (the test "
                        "set is evaluated at the end of a chapter's run: `cnnbook.train(..., save=True)`).")
    k = len(classes)
    true_c, pred_c = max(((i, j) for i in range(k) for j in range(k) if i != j), key=lambda ij: cm[ij[0]][ij[1]])
    acc = result.per_class_acc
    hardest, easiest = min(range(k), key=acc.__getitem__), max(range(k), key=acc.__getitem__)
    text = [f"The most frequent mistake is {_a(classes[true_c])} **{classes[true_c]}** taken for "
            f"{_a(classes[pred_c])} **{classes[pred_c]}** "
            f"({cm[true_c][pred_c]} test images). The hardest class is {classes[hardest]} "
            f"({_pct(acc[hardest])} correct), the easiest {classes[easiest]} ({_pct(acc[easiest])})."]
    note = interruption_note(result)
    if note:
        text.insert(0, note)
    if previous:
        text.append(_compare(result, previous, classes))
    return Markdown(" ".join(text))


def _compare(result: Result, previous: str, classes) -> str:
    """The change in test accuracy since another chapter's record, overall and per class, each judged
    against its noise: twice the standard error of a difference of two accuracies overall, and
    PER_CLASS_Z (2.81) times it per class, since ten classes are judged at once (a class has about 1,000
    test images, so a per-class change needs about 1.5 to 5.5 points, by the class's accuracy).
    ``result`` has a confusion matrix (``describe_mistakes`` checks)."""
    other = load_result(previous)
    if other is None or not other.per_class_acc or other.test_acc is None:
        return f"(No finished record of the `{previous}` chapter with per-class accuracies to compare with.)"
    overall = 100 * (result.test_acc - other.test_acc)
    verdict = ("within twice the combined standard error, so overall a tie" if difference_is_noise(result, other)
               else "more than twice the combined standard error")
    sentence = (f"Compared with {other.architecture} (its chapter's record), the test accuracy changes by "
                f"{overall:+.2f} points, {verdict}")
    counts = [sum(row) for row in _confusion(result)]  # test images per class
    changes = []  # (class, change in points, its noise in points, within it)
    for c, (a, b, n) in enumerate(zip(result.per_class_acc, other.per_class_acc, counts)):
        se_a, se_b = standard_error(a, n), standard_error(b, n)
        changes.append((c, 100 * (a - b), 100 * PER_CLASS_Z * math.hypot(se_a, se_b),
                        within_noise(a, se_a, b, se_b, z=PER_CLASS_Z)))
    real = sorted((ch[:3] for ch in changes if not ch[3]), key=lambda ch: -ch[1])
    gains = [f"{classes[c]} {d:+.1f}" for c, d, _ in real if d > 0]
    losses = [f"{classes[c]} {d:+.1f}" for c, d, _ in reversed(real) if d < 0]
    if gains:
        sentence += "; per class (points), beyond noise: better on " + ", ".join(gains)
    if losses:
        sentence += ("; worse on " if gains else "; per class (points), beyond noise: worse on ") + ", ".join(losses)
    noise = sorted(width for _, _, width, _ in changes)
    band = f"±{noise[0]:.1f} to ±{noise[-1]:.1f}" if f"{noise[0]:.1f}" != f"{noise[-1]:.1f}" else f"±{noise[0]:.1f}"
    c, d, _ = max((ch[:3] for ch in changes if ch[3]), key=lambda ch: abs(ch[1]), default=(None, 0, 0))
    if not real:
        sentence += (f"; no class changes by more than its noise ({band} points on its ~1,000 test images, "
                     f"{PER_CLASS_Z:.1f} standard errors since ten classes are compared at once; "
                     f"the largest change, {classes[c]} {d:+.1f}, is within it)")
    elif c is not None:
        sentence += (f" (the other classes' changes are within their noise, {band} points: "
                     f"{PER_CLASS_Z:.1f} standard errors, since ten classes are compared at once)")
    return sentence + "."
