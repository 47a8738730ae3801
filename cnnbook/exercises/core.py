"""The machinery of the checked exercises: the Check result, the kinds of exercise, the helpers.

A check never raises: whatever a reader passes (text, a list, NaN, a module, a function...), it
returns a :class:`Check` that says in one short line what is wrong. A wrong answer's hint names the
method and the mistake it probably comes from; the worked numbers are shown only once it is right.
"""
from __future__ import annotations

import contextlib
import copy
import inspect
import math
import numbers
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import torch
from torch import nn

RIGHT, WRONG = "✓ Right. ", "✗ Not yet. "  # U+2713 / U+2717: shown by every browser, no emoji font


class Check:
    """The outcome of a check: truthy when right; shown as a "✓ Right." / "✗ Not yet." line."""

    def __init__(self, ok: bool, message: str):
        self.ok, self.message = bool(ok), message

    def __bool__(self) -> bool:
        return self.ok

    def __repr__(self) -> str:
        return (RIGHT if self.ok else WRONG) + self.message

    __str__ = __repr__


NO_ANSWER = Check(False, "No answer yet: replace None with your answer and run the cell again.")


def right(message: str) -> Check:
    return Check(True, message)


def wrong(message: str) -> Check:
    return Check(False, message)


# --- formulas ---------------------------------------------------------------------------------


def conv_output_size(n: int, kernel_size: int, stride: int = 1, padding: int = 0) -> int:
    """⌊(n + 2p − k) / s⌋ + 1: the side of a convolution's or pooling layer's output."""
    return (n + 2 * padding - kernel_size) // stride + 1


def conv_params(in_channels: int, out_channels: int, kernel_size: int, bias: bool = True,
                groups: int = 1) -> int:
    """Parameters of a Conv2d: weights k·k·(c_in/groups)·c_out, plus c_out biases."""
    weights = kernel_size * kernel_size * (in_channels // groups) * out_channels
    return weights + (out_channels if bias else 0)


def linear_params(in_features: int, out_features: int, bias: bool = True) -> int:
    """Parameters of a Linear layer: in·out weights plus out biases."""
    return in_features * out_features + (out_features if bias else 0)


# --- reading an answer of any type ------------------------------------------------------------


def shown(value: Any, limit: int = 40) -> str:
    """A short one-line rendering of any value, for messages."""
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 - a broken __repr__ is still an answer to describe
        text = f"<{type(value).__name__}>"
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _number_text(number: float) -> str:
    return f"{int(number)}" if float(number).is_integer() else f"{number:g}"


def _parse_number(text: str) -> float | None:
    cleaned = text.strip().replace("_", "").replace(" ", "").replace("\u202f", "")
    if re.fullmatch(r"[+-]?\d{1,3}(,\d{3})+(\.\d*)?", cleaned):
        cleaned = cleaned.replace(",", "")
    try:
        value = float(cleaned)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def what_it_is(value: Any) -> str:
    """A few words naming the kind of a value a reader passed: "a tuple", "a function"..."""
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {tuple(value.shape)}"
    if isinstance(value, nn.Module):
        return f"a module ({type(value).__name__})"
    if inspect.isclass(value):
        return f"a class ({value.__name__})"
    if callable(value):
        return f"a function ({getattr(value, '__name__', type(value).__name__)})"
    article = "an" if type(value).__name__[:1].lower() in "aeiou" else "a"
    return f"{article} {type(value).__name__}"


def as_number(answer: Any, integer: bool = False) -> float | int | Check:
    """The number in ``answer``, or a :class:`Check` that says why it is not one.

    Accepts ints, floats, numpy scalars, fractions and one-element tensors or arrays; a whole float
    such as 2416.0 counts as 2416. Text, lists, NaN, booleans, modules... get a one-line reason.

    Args:
        answer: whatever the reader passed.
        integer: a whole number is expected (a count, a side): say so for a fractional answer.
    """
    if answer is None:
        return NO_ANSWER
    if isinstance(answer, bool):
        return wrong(f"{answer} is a yes/no value, not a number: write the number itself.")
    if isinstance(answer, str):
        number = _parse_number(answer)
        if number is not None:
            return wrong(f"{shown(answer)} is text; write the number without quotes: "
                         f"{_number_text(number)}")
        return wrong(f"{shown(answer)} is text, not a number: write a number, without quotes.")
    if isinstance(answer, torch.Tensor) or type(answer).__module__ == "numpy":
        size = answer.numel() if isinstance(answer, torch.Tensor) else getattr(answer, "size", 0)
        if size == 1:
            try:
                return as_number(answer.item(), integer)
            except Exception:  # noqa: BLE001
                pass
        return wrong(f"That is {what_it_is(answer)} with {size} values; one number is expected here.")
    if isinstance(answer, (list, tuple, set, frozenset, dict, range)):
        kind = what_it_is(answer)
        items = list(answer)
        if len(items) == 1 and not isinstance(answer, dict):
            return wrong(f"{shown(answer)} is {kind} of one value; one number is expected here: "
                         f"give the value alone, without brackets.")
        return wrong(f"{shown(answer)} is {kind}; one number is expected here, not several.")
    if isinstance(answer, complex) or not isinstance(answer, numbers.Real):
        return wrong(f"That is {what_it_is(answer)}; this exercise wants one number.")
    try:
        number = float(answer)
    except Exception:  # noqa: BLE001
        return wrong(f"That is {what_it_is(answer)}; this exercise wants one number.")
    if math.isnan(number):
        return wrong("nan is not a number: the calculation that made it went wrong (0/0, inf − inf?).")
    if math.isinf(number):
        return wrong(f"{number} is infinite: check for a division by zero in your calculation.")
    if isinstance(answer, numbers.Integral):
        return int(answer)
    if integer and number.is_integer():
        return int(number)
    return number


# --- the kinds of exercise --------------------------------------------------------------------


@dataclass(frozen=True)
class Count:
    """An exercise whose answer is a number.

    Args:
        what: what the number is, e.g. "parameters of LeNet's C3".
        expected: the right answer (computed with the formulas above, not typed in).
        method: how to get it, in general terms, shown with a wrong answer; no numbers that give
            the answer away, e.g. "weights k·k·c_in·c_out plus one bias per output channel".
        worked: the worked calculation, shown only with the right answer.
        mistakes: wrong answers that come from a known mistake, each with its hint,
            e.g. {conv_params(6, 16, 5, bias=False): "That leaves out the biases."}.
        tolerance: relative tolerance for a fractional expected value (0.5 %).
    """

    what: str
    expected: float
    method: str
    worked: str = ""
    mistakes: Mapping[float, str] = field(default_factory=dict)
    tolerance: float = 0.005

    @property
    def integer(self) -> bool:
        return isinstance(self.expected, numbers.Integral)

    def matches(self, value: float, target: float) -> bool:
        if self.integer:
            return value == target
        return abs(value - target) <= self.tolerance * max(1.0, abs(target))

    def check(self, answer: Any) -> Check:
        value = as_number(answer, self.integer)
        if isinstance(value, Check):
            return value
        if self.matches(value, self.expected):
            shown_expected = f"{self.expected:,}" if self.integer else f"{self.expected:,.4g}"
            worked = f" ({self.worked})" if self.worked else ""
            return right(f"{_cap(self.what)} = {shown_expected}{worked}.")
        given = f"{value:,}" if isinstance(value, int) else f"{value:,.6g}"
        for mistake, hint in self.mistakes.items():
            if mistake != self.expected and self.matches(value, mistake):
                return wrong(f"{given} is not right. {hint} Method: {self.method}.")
        if self.integer and isinstance(value, float):
            return wrong(f"{given} is not a whole number; a count is. Method: {self.method}.")
        return wrong(f"{given} is not right. Method: {self.method}.")


def first_wins(pairs: Sequence[tuple[float, str]]) -> dict[float, str]:
    """A ``mistakes`` dict from (wrong value, hint) pairs; where two mistakes give the same value,
    the first pair's hint is kept."""
    mistakes: dict[float, str] = {}
    for value, hint in pairs:
        mistakes.setdefault(value, hint)
    return mistakes


def ConvParams(what: str, in_channels: int, out_channels: int, kernel_size: int, bias: bool = True,
               copies: int = 1) -> Count:
    """A Count of a convolution's parameters (``copies`` identical ones), with its usual mistakes.

    Spots: biases left out, biases counted twice or per input channel, biases where there are none,
    c_in or c_out left out, k instead of k·k.
    """
    k, ci, co, n = kernel_size, in_channels, out_channels, copies
    weights, biases = k * k * ci * co, (co if bias else 0)
    mistakes = first_wins([
        (n * weights, "That is the weights alone: add one bias per output channel."),
        (n * (weights + 2 * co), "That counts the biases twice: one bias per output channel."),
        (n * (weights + ci), "One bias per output channel (filter), not per input channel."),
        (n * (k * k * co + biases), "Each filter spans every input channel: multiply by c_in too."),
        (n * (k * k * ci + biases), "There is one filter per output channel: multiply by c_out."),
        (n * (k * ci * co + biases), "A k × k kernel has k·k weights per pair of channels, not k."),
    ] if bias else [
        (n * (weights + co), "This convolution has no biases (bias=False): count the weights only."),
        (n * k * k * co, "Each filter spans every input channel: multiply by c_in too."),
        (n * k * ci * co, "A k × k kernel has k·k weights per pair of channels, not k."),
    ])
    if n > 1:
        mistakes.setdefault(weights + biases, f"That is one of the {n}; count them all.")
    method = "weights k·k·c_in·c_out" + (" plus one bias per output channel" if bias else ", no biases")
    worked = f"{k}·{k}·{ci}·{co}" + (f" + {co}" if bias else "")
    worked = f"{n} · ({worked})" if n > 1 else f"{worked}"
    return Count(what, n * (weights + biases), method + (f", times {n}" if n > 1 else ""), worked,
                 mistakes)


def LinearParams(what: str, in_features: int, out_features: int, bias: bool = True) -> Count:
    """A Count of a linear layer's parameters, with its usual mistakes."""
    i, o = in_features, out_features
    weights = i * o
    mistakes = first_wins([
        (weights, "That is the weights alone: add one bias per output."),
        (weights + 2 * o, "That counts the biases twice: one bias per output."),
        (weights + i, "One bias per output, not per input."),
    ] if bias else [(weights + o, "This layer has no biases (bias=False): count the weights only.")])
    method = "in_features · out_features weights" + (" plus one bias per output" if bias else "")
    return Count(what, linear_params(i, o, bias), method, f"{i:,}·{o:,}" + (f" + {o:,}" if bias else ""),
                 mistakes)


@dataclass(frozen=True)
class OutputSize:
    """An exercise whose answer is a layer's output side for an input side ``n``.

    Spots: padding forgotten or put on one side only, no rounding down, stride forgotten, the
    ``+ 1`` forgotten, rounding up.
    """

    n: int
    kernel_size: int
    stride: int = 1
    padding: int = 0
    what: str = "the output side"

    @property
    def expected(self) -> int:
        return conv_output_size(self.n, self.kernel_size, self.stride, self.padding)

    method = "⌊(n + 2p − k) / s⌋ + 1"

    def mistakes(self) -> list[tuple[float, str]]:
        """(wrong value, hint) for the usual mistakes, the likeliest first."""
        n, k, s, p = self.n, self.kernel_size, self.stride, self.padding
        return [
            ((n + 2 * p - k) / s + 1, "Round the division down before adding 1."),
            (-(-(n + 2 * p - k) // s) + 1, "Round the division down, not up, before adding 1."),
            (conv_output_size(n, k, s, 0), "Don't forget the padding, added on both sides (2p)."),
            ((n + p - k) // s + 1, "The padding goes on both sides: add 2p, not p."),
            ((n + 4 * p - k) // s + 1, "Add p on each side, 2p in all, not 4p."),
            (conv_output_size(n, k, 1, p), "Don't forget the stride: divide by s."),
            ((n + 2 * p - k) // s, "Don't forget the + 1 (the first position of the window)."),
            (n, "That is the input side; the window fits in fewer positions unless padded."),
        ]

    def check(self, answer: Any) -> Check:
        if (isinstance(answer, (tuple, list)) and len(answer) == 2
                and all(isinstance(a, numbers.Real) for a in answer) and answer[0] == answer[1]):
            return wrong(f"{shown(answer)} is a {type(answer).__name__}; the output is square: "
                         f"give its side as one number.")
        value = as_number(answer, integer=True)
        if isinstance(value, Check):
            return value
        n, k, s, p = self.n, self.kernel_size, self.stride, self.padding
        if value == self.expected:
            return right(f"⌊({n} + 2·{p} − {k}) / {s}⌋ + 1 = {self.expected}.")
        hint = next((h for m, h in self.mistakes() if m != self.expected and value == m), "")
        if not hint and isinstance(value, float):
            hint = "A side is a whole number of pixels: round down."
        given = f"{value:,}" if isinstance(value, int) else f"{value:,.6g}"
        return wrong(f"{given} is not {self.what}. {hint + ' ' if hint else ''}Use {self.method}.")


def _letters(options: Mapping[str, str]) -> str:
    letters = list(options)
    return ", ".join(letters[:-1]) + " or " + letters[-1] if len(letters) > 1 else letters[0]


# What a page shows differently from what a reader types: typographic quotes and dashes, markdown.
_TYPOGRAPHY = str.maketrans({"‘": "'", "’": "'", "“": '"', "”": '"', "−": "-", "–": "-", "—": "-",
                             "×": "x", "*": None, "`": None})


def _normal(text: str) -> str:
    return " ".join(str(text).translate(_TYPOGRAPHY).lower().split()).strip(" .)(")


def _labelled(text: str) -> tuple[str, str] | None:
    """("b", "its text") for an answer written "(b) its text", "b) its text" or "b. its text"."""
    match = re.fullmatch(r"\s*\(?\s*([A-Za-z])\s*[).:]\s*(.+)", text, re.DOTALL)
    return (match.group(1).lower(), match.group(2)) if match else None


@dataclass(frozen=True)
class Choice:
    """A multiple-choice question: the reader answers a letter, or the option's text as the chapter
    shows it (with or without its "(b)" label; case, spacing, typographic quotes and dashes aside).

    Args:
        question: the question, as in the chapter.
        options: letter => option text, e.g. {"a": "...", "b": "..."}.
        answer: the right letter.
        explain: why the right option is right (shown when right).
        wrong: letter => why that option is wrong (shown when that letter is chosen).
    """

    question: str
    options: Mapping[str, str]
    answer: str
    explain: str
    wrong: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:  # the chapter author's mistakes, caught by the tests
        unknown = [letter for letter in [*self.answer, *self.wrong] if letter not in self.options]
        if unknown or not self.answer:
            raise ValueError(f"Choice {self.question!r}: {unknown or 'no answer'} not among the "
                             f"options {list(self.options)}.")

    def letter(self, answer: Any) -> str | Check:
        """The letter the reader chose, or a Check saying how to answer."""
        if answer is None:
            return NO_ANSWER
        example = next(iter(self.options))
        how = f"Answer with one of {_letters(self.options)}, in quotes: e.g. \"{example}\"."
        if not isinstance(answer, str):
            return wrong(f"That is {what_it_is(answer)}. {how}")
        letter = self._by_text(answer)
        labelled = _labelled(answer)
        if letter is None and labelled and labelled[0] in self.options:
            label, letter = labelled[0], self._by_text(labelled[1])
            if letter is None:
                return wrong(f"{shown(answer)}: the text after ({label}) is not option ({label})'s as "
                             f"the chapter shows it; answer with the letter alone, \"{label}\".")
            if letter != label:
                return wrong(f"{shown(answer)} puts the label ({label}) on option ({letter})'s text: "
                             f"answer with one letter.")
        if letter is None:
            return wrong(f"{shown(answer)} is not one of the options. {how}")
        return letter

    def _by_text(self, text: str) -> str | None:
        """The letter whose label or option text ``text`` is (any case, spacing, quotes or dashes)."""
        text = _normal(text)
        return next((letter for letter, option in self.options.items()
                     if text in (_normal(letter), _normal(option))), None)

    def check(self, answer: Any) -> Check:
        letter = self.letter(answer)
        if isinstance(letter, Check):
            return letter
        if letter == self.answer:
            return right(f"({letter}) {self.explain}")
        reason = self.wrong.get(letter, "That option does not hold; read the others again.")
        return wrong(f"({letter}) {reason}")


@dataclass(frozen=True)
class Choices(Choice):
    """Select all that apply: the answer is the right letters, e.g. "ac", "a, c" or {"a", "c"}."""

    def check(self, answer: Any) -> Check:
        if answer is None:
            return NO_ANSWER
        how = f"Answer with the letters that apply, e.g. \"{''.join(list(self.options)[:2])}\"."
        if isinstance(answer, str):
            parts = [p for p in re.split(r"[\s,;/+]+", answer.strip().lower()) if p]
            if len(parts) == 1 and all(ch in self.options for ch in parts[0]):
                parts = list(parts[0])
        elif isinstance(answer, (list, tuple, set, frozenset)) and all(isinstance(a, str) for a in answer):
            parts = [self._by_text(a) or _normal(a) for a in answer]
        else:
            return wrong(f"That is {what_it_is(answer)}. {how}")
        if not parts or any(p not in self.options for p in parts):
            return wrong(f"{shown(answer)} is not a set of the options' letters. {how}")
        chosen, expected = set(parts), set(self.answer)
        if chosen == expected:
            return right(self.explain)
        reasons = [f"({p}) {self.wrong.get(p, 'does not apply.')}" for p in sorted(chosen - expected)]
        missing = len(expected - chosen)
        if missing:
            reasons.append("1 more option applies." if missing == 1 else f"{missing} more options apply.")
        return wrong(" ".join(reasons))


# --- modules: building what the reader passed, and checking its behaviour ---------------------


@dataclass(frozen=True)
class Runs:
    """An exercise whose answer is a set of timed runs: the list ``cnnbook.speedrun.run_seeds`` returns, a
    dict per run with its ``seed``, ``seconds`` and ``accuracy`` (a fraction). Right when the runs meet the
    goal: at least ``min_seeds`` different seeds, every run within ``seconds``, mean accuracy >= ``accuracy``.
    A wrong answer is told which condition fails, with its figure.
    """

    what: str
    accuracy: float
    seconds: float
    min_seeds: int = 5

    def runs(self, answer: Any) -> list[tuple[Any, float, float]] | Check:
        """(seed, seconds, accuracy) of each run, or a Check that says what is wrong with the answer."""
        if answer is None:
            return NO_ANSWER
        how = ("Pass the list run_seeds returned, e.g. [{'seed': 0, 'seconds': 51.2, 'accuracy': 0.9161}, "
               "...].")
        if isinstance(answer, dict) and "runs" in answer:  # a benchmark record: its runs
            answer = answer["runs"]
        if isinstance(answer, (str, bytes)) or not isinstance(answer, (list, tuple)) or not answer:
            return wrong(f"That is {what_it_is(answer)}. {how}")
        runs = []
        for i, run in enumerate(answer):
            if not isinstance(run, Mapping) or not {"seed", "seconds", "accuracy"} <= set(run):
                return wrong(f"Run {i + 1} is {what_it_is(run)}, not a dict with 'seed', 'seconds' and "
                             f"'accuracy'. {how}")
            seconds, accuracy = as_number(run["seconds"]), as_number(run["accuracy"])
            for name, value in (("seconds", seconds), ("accuracy", accuracy)):
                if isinstance(value, Check):
                    return wrong(f"Run {i + 1}'s {name}: {value.message}")
            if not (math.isfinite(seconds) and seconds > 0):
                return wrong(f"Run {i + 1} took {seconds} s: a run's time is a positive number of seconds.")
            if 1 < accuracy <= 100:
                return wrong(f"Run {i + 1}'s accuracy {accuracy:g} looks like a percentage: give it as a "
                             f"fraction ({accuracy / 100:g}), as run_seeds does.")
            if not 0 <= accuracy <= 1:
                return wrong(f"Run {i + 1}'s accuracy {accuracy:g} is not a fraction between 0 and 1.")
            runs.append((run["seed"], float(seconds), float(accuracy)))
        return runs

    def check(self, answer: Any) -> Check:
        runs = self.runs(answer)
        if isinstance(runs, Check):
            return runs
        answer = answer["runs"] if isinstance(answer, dict) else answer
        splits = {run.get("split", "test") for run in answer}
        if splits != {"test"}:
            return wrong(f"These runs were evaluated on the {', '.join(sorted(splits - {'test'}))} split: the "
                         f"goal is the test accuracy. Choose on split='val', then run the test set once per seed.")
        devices = {run.get("device", "cpu") for run in answer}
        if devices != {"cpu"}:
            return wrong(f"These runs trained on {', '.join(sorted(devices - {'cpu'}))}: the goal is "
                         f"{self.seconds:.0f} s on a CPU. Run the chapter on a CPU runtime for this exercise.")
        seeds = [seed for seed, _, _ in runs]
        if len(set(map(repr, seeds))) < len(seeds):
            return wrong(f"The seeds repeat ({', '.join(map(repr, seeds))}): each run needs its own seed.")
        if len(runs) < self.min_seeds:
            return wrong(f"{len(runs)} run{'s' if len(runs) > 1 else ''}: the goal is a mean over at least "
                         f"{self.min_seeds} seeds (seeds=range({self.min_seeds})).")
        slow = [(seed, s) for seed, s, _ in runs if s > self.seconds]
        mean = sum(a for _, _, a in runs) / len(runs)
        if slow:
            listed = ", ".join(f"seed {seed}: {s:.1f} s" for seed, s in slow)
            return wrong(f"Over the {self.seconds:.0f} s limit ({listed}); the mean accuracy was "
                         f"{100 * mean:.2f} %. Trade accuracy for time: fewer epochs, smaller images early.")
        if mean < self.accuracy:
            return wrong(f"Mean accuracy {100 * mean:.2f} % over {len(runs)} seeds, under "
                         f"{100 * self.accuracy:.1f} % (every run within {self.seconds:.0f} s). The ablation says "
                         f"which ideas matter; choose on split='val', then run the test set.")
        return right(f"{_cap(self.what)}: mean accuracy {100 * mean:.2f} % over {len(runs)} seeds, the slowest "
                     f"run {max(s for _, s, _ in runs):.1f} s. A new record for your machine: note its CPU, "
                     f"threads and precision with it.")


def _signature(build: Callable) -> inspect.Signature | None:
    try:
        return inspect.signature(build)
    except (TypeError, ValueError):
        return None


def _call_text(name: str, args: Sequence, kwargs: Mapping) -> str:
    parts = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()]
    return f"{name}({', '.join(parts)})"


class ReturnsNone(TypeError):
    """A builder returned None: the exercise's placeholder (``return None``) left as it is, or a
    forgotten ``return``."""


def returns_none(err: ReturnsNone) -> Check:
    """The verdict on a builder that returns None: not answered yet (the placeholder's own result)."""
    return wrong(f"No answer yet: {err}. Build your module and return it (replace the placeholder's "
                 f"`return None`; if you did, is a `return` missing?).")


def as_factory(answer: Any, args: Sequence = (), kwargs: Mapping | None = None,
               name: str = "your module") -> Callable[[], nn.Module] | Check:
    """A zero-argument function that builds a fresh copy of the reader's module, or a Check saying why not.

    ``answer`` may be a module (copied each time), a class (built with ``args`` and ``kwargs``) or
    a function (called with no arguments, or with ``args`` if it needs them).
    """
    kwargs = dict(kwargs or {})
    if answer is None:
        return NO_ANSWER
    if isinstance(answer, nn.Module):
        return lambda: copy.deepcopy(answer)
    if inspect.isclass(answer) and not issubclass(answer, nn.Module):
        return wrong(f"{answer.__name__} is a class but not an nn.Module: subclass nn.Module.")
    if not callable(answer):
        return wrong(f"That is {what_it_is(answer)}. Pass your class, a function that builds your "
                     f"module (e.g. lambda: ...), or the module itself.")
    label = getattr(answer, "__name__", "your function")
    expected_call = _call_text(label, args, kwargs)
    sig = _signature(answer)
    call: tuple[Sequence, Mapping] | None
    if sig is None:
        call = (args, kwargs) if inspect.isclass(answer) else ((), {})
    else:
        def binds(a: Sequence, k: Mapping) -> bool:
            try:
                sig.bind(*a, **k)
                return True
            except TypeError:
                return False

        # A class is built the exercise's way; a function is a builder, called as it is if it can be.
        ways = [(args, kwargs), ((), {})] if inspect.isclass(answer) else [((), {}), (args, kwargs)]
        call = next((way for way in ways if binds(*way)), None)
        if call is None:
            return wrong(f"This exercise builds yours as {expected_call}, but {label}{sig} takes "
                         f"other arguments.")

    def build() -> nn.Module:
        module = answer(*call[0], **call[1])
        if module is None:
            raise ReturnsNone(f"{_call_text(label, *call)} returns None")
        if not isinstance(module, nn.Module):
            raise TypeError(f"{_call_text(label, *call)} returned {what_it_is(module)}, not an nn.Module")
        return module

    return build


def _cap(name: str) -> str:
    return name[:1].upper() + name[1:]


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    line = text[0] if text else ""
    line = line if len(line) <= 160 else line[:159] + "…"
    return f"{type(err).__name__}: {line}" if line else type(err).__name__


def parameter_count(module: nn.Module) -> int:
    """The number of learnable parameters of ``module``."""
    return sum(p.numel() for p in module.parameters())


def _run(module: nn.Module, X: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        out = module.eval()(X.clone())  # a copy: an in-place ReLU on X must not change our X
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"it returns {what_it_is(out)}, not a tensor")
    return out


def output_shape(module: nn.Module, input_size: Sequence[int]) -> tuple[int, ...]:
    """The shape of ``module``'s output (in eval mode) for a random input of ``input_size``."""
    return tuple(_run(module, torch.randn(*input_size)).shape)


def runs(module: nn.Module, input_size: Sequence[int], name: str = "your module") -> Check:
    """Whether ``module`` runs on a random input of ``input_size`` and returns a tensor."""
    try:
        shape = output_shape(module, input_size)
    except Exception as err:  # noqa: BLE001 - any failure is the reader's to see
        return wrong(f"{_cap(name)} fails on an input of shape {tuple(input_size)}: {_first_line(err)}")
    return right(f"{_cap(name)} maps {tuple(input_size)} to {shape}.")


def adds_its_input(block: nn.Module, input_size: Sequence[int], name: str = "your block") -> Check:
    """Whether a residual block with an identity shortcut adds its input.

    With the scale (and shift) of its last BatchNorm2d set to zero, the residual branch gives 0, so
    ReLU(0 + X) = X for a non-negative X. Without a BatchNorm2d, the last convolution is zeroed.
    """
    block = copy.deepcopy(block)
    layers = [m for m in block.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    layers = layers or [m for m in block.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    if not layers:
        return wrong(f"{_cap(name)} has no BatchNorm2d or convolution to zero: "
                     f"is the residual branch there?")
    with torch.no_grad():
        for p in layers[-1].parameters():
            p.zero_()
    X = torch.rand(*input_size)
    try:
        out = _run(block, X)
    except Exception as err:  # noqa: BLE001
        return wrong(f"{_cap(name)} fails on an input of shape {tuple(input_size)}: {_first_line(err)}")
    if out.shape != X.shape:
        return wrong(f"{_cap(name)} returns shape {tuple(out.shape)}; "
                     f"an identity shortcut keeps {tuple(X.shape)}.")
    if not torch.allclose(out, X, atol=1e-5):
        if torch.allclose(out, torch.zeros_like(out), atol=1e-6):
            return wrong(f"{_cap(name)} does not add its input: with the residual branch silenced it "
                         f"returns zeros. Add the shortcut: ReLU(F(X) + X).")
        return wrong(f"{_cap(name)} does not pass its input through when the residual branch gives 0: "
                     f"return ReLU(F(X) + X), adding X itself.")
    return right(f"{_cap(name)} adds its input: with the branch silenced, it returns X.")


def concatenates_its_input(layer: nn.Module, input_size: Sequence[int],
                           name: str = "your layer") -> Check:
    """Whether a dense layer's output starts with its input: output[:, :C_in] == X."""
    X = torch.randn(*input_size)
    try:
        out = _run(copy.deepcopy(layer), X)
    except Exception as err:  # noqa: BLE001
        return wrong(f"{_cap(name)} fails on an input of shape {tuple(input_size)}: {_first_line(err)}")
    c_in = X.shape[1]
    if out.dim() != X.dim() or out.shape[2:] != X.shape[2:]:
        return wrong(f"{_cap(name)} returns shape {tuple(out.shape)}; a dense layer keeps the side "
                     f"of its input {tuple(X.shape)}.")
    if out.shape[1] <= c_in:
        return wrong(f"{_cap(name)} returns {out.shape[1]} channels: only the new features? Concatenate "
                     f"the input in front: torch.cat((X, Y), dim=1).")
    if torch.allclose(out[:, :c_in], X):
        return right(f"{_cap(name)} returns its input followed by {out.shape[1] - c_in} new channels.")
    if torch.allclose(out[:, -c_in:], X):
        return wrong(f"{_cap(name)} puts its input last; the book's order is the input first: "
                     f"torch.cat((X, Y), dim=1).")
    return wrong(f"{_cap(name)}'s first {c_in} channels are not its input: concatenate X itself, "
                 f"unchanged, in front of the new features.")


@contextlib.contextmanager
def _leaky_relus(slope: float = 0.2):
    """For a probe only: every ReLU (module, F.relu, torch.relu, X.relu()) lets negatives through."""
    import torch.nn.functional as F

    def leaky(input, inplace=False):  # noqa: A002 - F.relu's own argument names
        return F.leaky_relu(input, slope)

    saved = (F.relu, torch.relu, torch.Tensor.relu, nn.ReLU.forward)
    F.relu, torch.relu, torch.Tensor.relu = leaky, leaky, leaky
    nn.ReLU.forward = lambda self, input: leaky(input)
    try:
        yield
    finally:
        F.relu, torch.relu, torch.Tensor.relu, nn.ReLU.forward = saved


def depends_on_its_input(module: nn.Module, input_size: Sequence[int], channels: slice = slice(None),
                         name: str = "your module") -> Check:
    """Whether the output ``channels`` change with the input (they are computed from it)."""
    module = copy.deepcopy(module)
    try:
        a, b = _run(module, torch.randn(*input_size)), _run(module, torch.randn(*input_size))
    except Exception as err:  # noqa: BLE001
        return wrong(f"{_cap(name)} fails on an input of shape {tuple(input_size)}: {_first_line(err)}")
    if a[:, channels].numel() and torch.allclose(a[:, channels], b[:, channels]):
        return wrong(f"{_cap(name)}'s output does not change with its input: compute it from X.")
    return right(f"{_cap(name)}'s output is computed from its input.")


def output_channel_groups(module: nn.Module, input_size: Sequence[int]) -> list[int]:
    """The sizes of the runs of output channels that depend on the same parameters, in order.

    For a block that stacks branches along the channels (Inception), these are its branches'
    channels: each parameter tensor is perturbed in turn, and the channels it changes are noted.
    """
    module = copy.deepcopy(module).eval()
    X = torch.randn(*input_size)
    with _leaky_relus(), torch.no_grad():  # a ReLU dead on the whole input would hide a dependency
        base = _run(module, X)
        keys: list[set[int]] = [set() for _ in range(base.shape[1])]
        for index, p in enumerate(module.parameters()):
            saved = p.detach().clone()
            p.add_(torch.randn_like(p) + 0.5)
            changed = (_run(module, X) - base).abs().flatten(2).amax(dim=(0, 2)) > 1e-6
            p.copy_(saved)
            for c in torch.nonzero(changed).flatten().tolist():
                keys[c].add(index)
    groups: list[int] = []
    for c, key in enumerate(keys):
        if c > 0 and key == keys[c - 1]:
            groups[-1] += 1
        else:
            groups.append(1)
    return groups


def branch_channels(module: nn.Module, input_size: Sequence[int], expected: Sequence[int],
                    name: str = "your block") -> Check:
    """Whether a block's output stacks its branches with ``expected`` channels, in that order."""
    try:
        groups = output_channel_groups(module, input_size)
    except Exception as err:  # noqa: BLE001
        return wrong(f"{_cap(name)} fails on an input of shape {tuple(input_size)}: {_first_line(err)}")
    expected = list(expected)
    if groups == expected:
        return right(f"{_cap(name)} stacks branches of {' + '.join(map(str, groups))} "
                     f"= {sum(groups)} channels.")
    if sum(groups) != sum(expected):
        return wrong(f"{_cap(name)} returns {sum(groups)} channels; its branches should add up to "
                     f"{sum(expected)}: check each branch's output channels.")
    if sorted(groups) == sorted(expected):
        return wrong(f"{_cap(name)}'s branches come in another order "
                     f"({', '.join(map(str, groups))} channels); "
                     f"concatenate them in the table's order ({', '.join(map(str, expected))}).")
    return wrong(f"{_cap(name)}'s output channels do not split into branches of "
                 f"{', '.join(map(str, expected))} channels (yours: {', '.join(map(str, groups))}): "
                 f"each branch should see the block's input and end in its own convolution.")


@contextlib.contextmanager
def _one_thread():
    """The checks run small tensors: one thread is fastest, and far faster on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@dataclass(frozen=True)
class Code:
    """A coding exercise: the reader passes a class, a function that builds a module, or a module.

    Args:
        what: what to write, e.g. "a basic residual block Block(channels)".
        test: takes a zero-argument function that builds a fresh copy of the reader's module and
            returns a Check naming the first difference it finds (use the helpers above).
        build_args, build_kwargs: how the exercise builds a class the reader passes.
    """

    what: str
    test: Callable[[Callable[[], nn.Module]], Check]
    build_args: tuple = ()
    build_kwargs: Mapping[str, Any] = field(default_factory=dict)

    def check(self, answer: Any) -> Check:
        factory = as_factory(answer, self.build_args, self.build_kwargs)
        if isinstance(factory, Check):
            return factory
        try:
            factory()
        except ReturnsNone as err:
            return returns_none(err)
        except Exception as err:  # noqa: BLE001
            return wrong(f"Building your module fails: {_first_line(err)}")
        try:
            with _one_thread():
                result = self.test(factory)
        except Exception as err:  # noqa: BLE001 - the reader's module may fail anywhere
            result = wrong(f"Your module fails while being tested: {_first_line(err)}")
        if not isinstance(result, Check):
            return wrong("The test gave no verdict.")
        if not result and " fails " in result.message and isinstance(answer, nn.Module) and self.build_args:
            built = _call_text(type(answer).__name__, self.build_args, self.build_kwargs)
            result = wrong(f"{result.message} This exercise builds it as {built}: pass your class.")
        return result


def all_of(*checks: Callable[[], Check]) -> Check:
    """The first failing check among ``checks`` (called in order), or the last one if all pass."""
    result = wrong("Nothing was checked.")
    for make in checks:
        result = make()
        if not result:
            return result
    return result


Exercise = Count | OutputSize | Choice | Code | Runs
