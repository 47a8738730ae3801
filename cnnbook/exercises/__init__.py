"""Self-checks for the chapters' exercises: each says right or wrong, and why.

In a chapter::

    from cnnbook.exercises import check
    print(check("lenet/c3-params", answer_1))   # ✓ Right. ... / ✗ Not yet. ...

A check never raises, whatever it is given: text, a list, NaN or a module each get a one-line
reason. A wrong answer's hint names the method and the probable mistake, never the answer; the
worked numbers are shown once the answer is right. Answers are computed from first principles
(``conv_params``, ``conv_output_size``...) or by testing behaviour, not stored to be looked up.

Kinds of exercise (in ``core.py``):

- ``Count(what, expected, method, worked="", mistakes={})``: a number; ``mistakes`` maps a wrong
  value that a known mistake gives to its hint. ``ConvParams(what, c_in, c_out, k, bias=True,
  copies=1)`` and ``LinearParams(what, in_features, out_features, bias=True)`` build a Count of a
  layer's parameters that already spots the usual mistakes (biases left out or counted twice...).
- ``OutputSize(n, kernel_size, stride=1, padding=0)``: a layer's output side; spots forgotten
  padding or stride, no rounding down, a missing + 1.
- ``Choice(question, options, answer, explain, wrong)``: multiple choice; the reader answers a
  letter (or the option's text); ``wrong`` explains each wrong letter. ``Choices``: select all
  that apply, answered as "ac".
- ``Code(what, test, build_args=(), build_kwargs={})``: a coding exercise; the reader passes a
  class (built with ``build_args``), a function that builds the module, or a module. ``test``
  gets a zero-argument builder and returns a Check; write it with the behaviour helpers
  ``runs``, ``output_shape``, ``parameter_count``, ``adds_its_input``, ``concatenates_its_input``,
  ``depends_on_its_input``, ``branch_channels`` and ``all_of`` (the first failing check), and end
  it with ``computes_like`` or ``check_module`` (in ``reference.py``): a block is right only if,
  given a reference block's random weights, it computes what the reference computes, in training
  and in evaluation mode; a wrong one is told the first layer where the two part.

To add an exercise, add one entry to the ``EXERCISES`` dict of your chapter's module
(``lenet.py``, ``resnet.py``...), named "<chapter>/<short-name>"::

    "lenet/c5-params": ConvParams("parameters of LeNet's C5", 16, 120, 5),
    "nin/why-gap": Choice("Why ...?", {"a": "...", "b": "..."}, answer="b",
                          explain="...", wrong={"a": "..."}),

Each chapter module imports only from ``.core``; ``tests/test_exercises.py`` then checks every
registered exercise (right answer, wrong answers, junk of every type).
"""
from __future__ import annotations

from . import (alexnet, batchnorm, comparison, densenet, fashion_mnist, googlenet, lenet, nin, resnet,
               speedrun, training, vgg)
from .core import (NO_ANSWER, Check, Choice, Choices, Code, ConvParams, Count, Exercise, LinearParams,
                   OutputSize, Runs, adds_its_input, all_of, as_factory, as_number, branch_channels,
                   concatenates_its_input, conv_output_size, conv_params, depends_on_its_input,
                   linear_params, output_channel_groups, output_shape, parameter_count, runs)
from .reference import behaves_like, check_module, computes_like

CHAPTERS = (fashion_mnist, training, lenet, alexnet, vgg, nin, googlenet, batchnorm, resnet, densenet,
            comparison, speedrun)


def _merge() -> dict[str, Exercise]:
    merged: dict[str, Exercise] = {}
    for chapter in CHAPTERS:
        for name, exercise in chapter.EXERCISES.items():
            if name in merged:
                raise ValueError(f"Exercise {name!r} is registered twice (again in {chapter.__name__}).")
            merged[name] = exercise
    return merged


EXERCISES: dict[str, Exercise] = _merge()


def check(name: str, answer) -> Check:
    """Check the answer to the exercise ``name`` (as given in the chapter); never raises for an answer.

    An unknown ``name`` is the chapter's mistake, not the reader's: it raises a KeyError that
    lists the closest known names.
    """
    if not isinstance(name, str) or name not in EXERCISES:
        import difflib

        close = difflib.get_close_matches(str(name), EXERCISES, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise KeyError(f"No checked exercise {name!r}.{hint} Known: {', '.join(EXERCISES)}.")
    try:
        return EXERCISES[name].check(answer)
    except Exception as err:  # noqa: BLE001 - a check must never crash in a reader's notebook
        return Check(False, f"This answer could not be checked ({type(err).__name__}); "
                            f"give one value of the kind the exercise asks for.")


def check_output_size(answer, n: int, kernel_size: int, stride: int = 1, padding: int = 0) -> Check:
    """Check a computed output side length for an input of side ``n``."""
    return OutputSize(n, kernel_size, stride, padding).check(answer)


def check_conv_params(answer, in_channels: int, out_channels: int, kernel_size: int,
                      bias: bool = True) -> Check:
    """Check a Conv2d layer's parameter count."""
    return ConvParams("parameters of the convolution", in_channels, out_channels, kernel_size,
                      bias).check(answer)


__all__ = [
    "EXERCISES", "NO_ANSWER", "Check", "Choice", "Choices", "Code", "ConvParams", "Count", "LinearParams",
    "OutputSize", "adds_its_input", "all_of", "as_factory", "as_number", "behaves_like", "branch_channels",
    "check", "check_conv_params", "check_module", "check_output_size", "computes_like",
    "concatenates_its_input",
    "conv_output_size", "conv_params", "depends_on_its_input", "linear_params", "output_channel_groups",
    "output_shape",
    "parameter_count", "runs",
]
