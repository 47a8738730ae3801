"""The checked exercises: right answers pass, wrong ones get a hint without the answer, junk never crashes."""
from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from torch import nn

from cnnbook import exercises
from cnnbook.exercises import (EXERCISES, Check, Choice, Choices, Code, Count, OutputSize, adds_its_input,
                               behaves_like, branch_channels, check, check_module, concatenates_its_input,
                               conv_output_size, conv_params, linear_params, output_shape, parameter_count)

NUMERIC = [name for name, e in EXERCISES.items() if isinstance(e, (Count, OutputSize))]
CHOICES = [name for name, e in EXERCISES.items() if isinstance(e, Choice)]
CODE = [name for name, e in EXERCISES.items() if isinstance(e, Code)]


def shown(expected) -> list[str]:
    """How a number could appear in a message."""
    if isinstance(expected, float):
        return [f"{expected:.2f}", f"{expected:.3g}"]
    return [str(expected), f"{expected:,}"]


# --- every registered exercise ------------------------------------------------------------


@pytest.mark.parametrize("name", NUMERIC)
def test_numeric_exercise_accepts_right_and_rejects_wrong(name):
    expected = EXERCISES[name].expected
    right = check(name, round(expected, 2) if isinstance(expected, float) else expected)
    assert right and repr(right).startswith("✓ Right.")
    wrong = check(name, expected + 1)
    assert not wrong and repr(wrong).startswith("✗ Not yet.")
    assert not check(name, None) and "replace None" in repr(check(name, None))


@pytest.mark.parametrize("name", NUMERIC)
def test_a_wrong_number_gets_a_method_not_the_answer(name):
    expected = EXERCISES[name].expected
    for wrong_answer in (expected + 1, expected * 2 + 3, 1):
        message = repr(check(name, wrong_answer))
        if expected >= 10:  # small numbers turn up in formulas by chance
            assert not any(text in message.replace(f"{wrong_answer:,}", "") for text in shown(expected)), message
        assert "Method:" in message or "Use ⌊" in message


@pytest.mark.parametrize("name", [n for n in NUMERIC if isinstance(EXERCISES[n].expected, int)])
def test_a_whole_float_counts_and_text_is_named_as_text(name):
    expected = EXERCISES[name].expected
    assert check(name, float(expected))
    assert check(name, np.int64(expected)) and check(name, torch.tensor(expected))
    as_text = check(name, str(expected))
    assert not as_text and f"'{expected}' is text; write the number without quotes: {expected}" in repr(as_text)


@pytest.mark.parametrize("name", CHOICES)
def test_choice_exercise_right_and_each_wrong_option(name):
    exercise = EXERCISES[name]
    assert check(name, exercise.answer) and check(name, f"  {exercise.answer.upper()} ")
    assert check(name, exercise.options[exercise.answer])  # the option's text
    for letter in exercise.options:
        if letter != exercise.answer:
            result = check(name, letter)
            assert not result and exercise.wrong[letter] in repr(result)


def junk() -> list:
    """Values a reader might pass by mistake, of every type."""
    rng = random.Random(0)
    values = ["", "abc", "24", " 2,416 ", "1e3", "z)", "nan", (24, 24), [1, 2], [], {}, {"a": 1}, {1, 2},
              float("nan"), float("inf"), -float("inf"), True, False, 1j, -1, 0, 10**30, 1e-300,
              torch.zeros(3), torch.tensor([]), torch.tensor(float("nan")), torch.ones(2, 2),
              np.float32("nan"), np.array([1, 2]), np.int64(-5), np.bool_(True), nn.ReLU(),
              nn.Conv2d(1, 1, 1), nn.Module, nn.Linear, int, print, len, lambda: None, lambda x: x,
              lambda: nn.Linear(3, 3), lambda: 5, object(), Ellipsis, b"24", range(3), type]
    while len(values) < 100:
        values.append(rng.choice([rng.random() * 1e6, -rng.random(), str(rng.random()), [rng.random()] * 3,
                                  (rng.randint(0, 9), "x"), torch.randn(rng.randint(2, 5)),
                                  np.float64(rng.random()), rng.randint(-10**6, 10**6) + 0.5]))
    return values


@pytest.mark.parametrize("name", list(EXERCISES))
def test_every_exercise_survives_junk(name):
    for value in junk():
        result = check(name, value)
        assert isinstance(result, Check) and not result, (name, value)
        assert 0 < len(repr(result).splitlines()) <= 3 and len(repr(result)) < 400, (name, value, result)


def test_unknown_exercise_suggests_a_close_name():
    with pytest.raises(KeyError, match="Did you mean 'lenet/c3-params'"):
        check("lenet/c3-param", 1)


# --- type messages ------------------------------------------------------------------------


@pytest.mark.parametrize("answer, message", [
    ("24", "'24' is text; write the number without quotes: 24"),
    ("abc", "is text, not a number"),
    ((24, 24), "give its side as one number"),
    ([24], "one number is expected here"),
    (float("nan"), "nan is not a number"),
    (float("inf"), "infinite"),
    (True, "yes/no value"),
    (None, "No answer yet: replace None"),
    (nn.Conv2d(1, 1, 3), "a module (Conv2d)"),
    (print, "a function"),
    (torch.ones(3), "one number is expected"),
])
def test_type_messages(answer, message):
    result = check("lenet/c1-output-unpadded", answer)
    assert not result and message in repr(result)


def test_output_size_hints_at_the_usual_mistakes():
    assert "Round the division down" in repr(exercises.check_output_size(14.5, 28, 3, 2, 1))
    assert "padding" in repr(exercises.check_output_size(13, 28, 3, 2, 1))
    assert "stride" in repr(OutputSize(28, 3, 2, 1).check(28))
    assert "+ 1" in repr(OutputSize(28, 5).check(23))
    assert "both sides" in repr(OutputSize(28, 5, 1, 2).check(26))
    assert exercises.check_output_size(14.0, 28, 3, 2, 1)


def test_parameter_counts_name_the_mistake_not_the_answer():
    no_bias = repr(check("lenet/c3-params", 2400))
    assert "weights alone" in no_bias and "2416" not in no_bias and "2,416" not in no_bias
    assert "twice" in repr(check("lenet/c3-params", 2416 + 16))
    assert "input channel" in repr(check("lenet/c3-params", 2400 + 6))
    assert "c_in" in repr(check("lenet/c3-params", 5 * 5 * 16 + 16))
    assert "no biases" in repr(check("resnet/basic-block-params", 2 * conv_params(64, 64, 3) + 256))
    assert "one of the 2" in repr(check("alexnet/conv2-two-gpus", conv_params(48, 128, 5)))
    assert "5·5·6·16" in repr(check("lenet/c3-params", 2416))  # worked numbers only when right
    assert "not a whole number" in repr(check("lenet/c3-params", 2416.5))


def test_formulas():
    assert conv_output_size(28, 5) == 24 and conv_output_size(28, 3, 2, 1) == 14
    assert conv_params(6, 16, 5) == 2416 and conv_params(16, 16, 3, bias=False) == 2304
    assert linear_params(400, 120) == 48_120


# --- multiple choice ----------------------------------------------------------------------

QUIZ = Choice("Which layer has no parameters?", {"a": "Conv2d", "b": "MaxPool2d", "c": "Linear"}, "b",
              "Pooling takes a maximum: nothing to learn.",
              {"a": "A convolution learns its kernels.", "c": "A linear layer learns a weight matrix."})


def test_choice_right_wrong_and_not_a_letter():
    assert QUIZ.check("b") and QUIZ.check(" B. ") and QUIZ.check("maxpool2d")
    assert "learns its kernels" in repr(QUIZ.check("a"))
    assert "weight matrix" in repr(QUIZ.check("c"))
    assert "one of a, b or c" in repr(QUIZ.check("e"))
    assert "one of a, b or c" in repr(QUIZ.check(2))
    assert "replace None" in repr(QUIZ.check(None))


def test_choices_select_all_that_apply():
    quiz = Choices("Which have parameters?", {"a": "Conv2d", "b": "MaxPool2d", "c": "Linear"}, "ac",
                   "Both learn weights.", {"b": "Pooling learns nothing."})
    assert quiz.check("ac") and quiz.check("c, a") and quiz.check({"a", "c"}) and quiz.check(["A", "c"])
    assert "Pooling learns nothing" in repr(quiz.check("abc"))
    assert "1 more option applies" in repr(quiz.check("a"))
    assert not quiz.check("xyz") and not quiz.check(3) and not quiz.check("")


# --- modules: the reader's class, factory or instance -------------------------------------


def reference():
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU())


def test_check_module_compares_shape_parameters_and_behaviour():
    assert check_module(reference, reference, (2, 1, 8, 8))
    assert check_module(reference(), reference, (2, 1, 8, 8))  # an instance
    no_padding = check_module(lambda: nn.Conv2d(1, 4, 3), reference, (2, 1, 8, 8))
    assert not no_padding and "shape (2, 4, 6, 6)" in repr(no_padding)
    broken = check_module(lambda: nn.Conv2d(3, 4, 3, padding=1), reference, (2, 1, 8, 8))
    assert not broken and "fails" in repr(broken)
    no_relu = check_module(lambda: nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.Identity()),
                           reference, (2, 1, 8, 8))
    assert not no_relu and "output differs" in repr(no_relu)


@pytest.mark.parametrize("name", [n for n in CODE if EXERCISES[n].build_args])
def test_a_builder_left_returning_none_is_not_answered_yet(name):
    """Chapters 3-6 hand out `def my_..._block(...): return None`: run as it is, the exercise once said
    "Building your module fails: TypeError: ... returned a NoneType", as if the reader had got it wrong."""
    def placeholder(*args):
        return None

    result = check(name, placeholder)
    assert not result and "\n" not in repr(result)
    assert repr(result).startswith("✗ Not yet. No answer yet: placeholder(")
    assert "returns None" in repr(result) and "return" in repr(result).split("returns None")[1]
    unanswered = check_module(lambda: None, reference, (2, 1, 8, 8))
    assert not unanswered and "No answer yet: <lambda>() returns None" in repr(unanswered)


class Conv(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(1, channels, 3, padding=1)

    def forward(self, X):
        return torch.relu(self.conv(X))


def test_check_module_takes_a_class_and_says_how_it_is_built():
    assert check_module(Conv, reference, (2, 1, 8, 8), args=(4,))
    missing = check_module(Conv, reference, (2, 1, 8, 8), args=())
    assert not missing and "builds yours as Conv()" in repr(missing)
    assert not check_module(lambda: 3, reference, (2, 1, 8, 8))
    assert "not an nn.Module" in repr(check_module(int, reference, (2, 1, 8, 8)))


def test_helpers():
    assert output_shape(reference(), (2, 1, 8, 8)) == (2, 4, 8, 8)
    assert parameter_count(reference()) == conv_params(1, 4, 3)
    assert behaves_like(reference(), reference(), (2, 1, 8, 8))


# --- the registered coding exercises, right and subtly wrong ------------------------------


class Block(nn.Module):
    """A basic residual block, right unless told otherwise."""

    def __init__(self, channels: int, shortcut: bool = True, bias: bool = False):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=bias)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=bias)
        self.bn2 = nn.BatchNorm2d(channels)
        self.shortcut = shortcut

    def forward(self, X):
        Y = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(X)))))
        return torch.relu(Y + X) if self.shortcut else torch.relu(Y)


def test_residual_block_exercise():
    assert check("resnet/residual-block", Block)
    assert check("resnet/residual-block", lambda: Block(16))
    assert check("resnet/residual-block", Block(16))
    assert "does not add its input" in repr(check("resnet/residual-block", lambda: Block(16, shortcut=False)))
    assert "bias=False" in repr(check("resnet/residual-block", lambda: Block(16, bias=True)))
    shrinks = check("resnet/residual-block", lambda: nn.Conv2d(16, 16, 3))
    assert not shrinks and "keep" in repr(shrinks)


class DenseLayer(nn.Module):
    def __init__(self, in_channels: int, growth_rate: int, keep_input: bool = True, input_last: bool = False):
        super().__init__()
        self.net = nn.Sequential(nn.BatchNorm2d(in_channels), nn.ReLU(),
                                 nn.Conv2d(in_channels, growth_rate, 3, padding=1))
        self.keep_input, self.input_last = keep_input, input_last

    def forward(self, X):
        Y = self.net(X)
        if not self.keep_input:
            return Y
        return torch.cat((Y, X) if self.input_last else (X, Y), dim=1)


def test_dense_layer_exercise():
    assert check("densenet/dense-layer", DenseLayer)
    only_new = check("densenet/dense-layer", lambda: DenseLayer(16, 8, keep_input=False))
    assert not only_new and "only its new features" in repr(only_new)
    input_last = check("densenet/dense-layer", lambda: DenseLayer(16, 8, input_last=True))
    assert not input_last and "input last" in repr(input_last)
    assert concatenates_its_input(DenseLayer(4, 2), (1, 4, 5, 5))


def conv_relu(c_in, c_out, k, padding=0):
    return nn.Sequential(nn.Conv2d(c_in, c_out, k, padding=padding), nn.ReLU())


class Inception(nn.Module):
    def __init__(self, in_channels: int, widths: tuple, order=(0, 1, 2, 3)):
        super().__init__()
        c1, c3r, c3, c5r, c5, cp = widths
        self.branches = nn.ModuleList([
            conv_relu(in_channels, c1, 1),
            nn.Sequential(conv_relu(in_channels, c3r, 1), conv_relu(c3r, c3, 3, 1)),
            nn.Sequential(conv_relu(in_channels, c5r, 1), conv_relu(c5r, c5, 5, 2)),
            nn.Sequential(nn.MaxPool2d(3, 1, 1), conv_relu(in_channels, cp, 1))])
        self.order = order

    def forward(self, X):
        return torch.cat([self.branches[i](X) for i in self.order], dim=1)


def test_inception_block_exercise():
    assert check("googlenet/inception-block", Inception)
    swapped = check("googlenet/inception-block", lambda: Inception(192, (64, 96, 128, 16, 32, 32), (1, 0, 2, 3)))
    assert not swapped and "another order" in repr(swapped)
    assert branch_channels(Inception(8, (2, 2, 3, 2, 4, 1)), (1, 8, 6, 6), [2, 3, 4, 1])
    needs_args = check("googlenet/inception-block", lambda widths: None)
    assert not needs_args and "builds yours as <lambda>(192, (64, 96, 128, 16, 32, 32))" in repr(needs_args)


def test_adds_its_input_spots_a_missing_shortcut():
    assert adds_its_input(Block(4), (2, 4, 5, 5))
    assert not adds_its_input(Block(4, shortcut=False), (2, 4, 5, 5))


def test_messages_are_short_and_marked():
    for result in (check("lenet/c3-params", "x"), check("nin/why-1x1", "z"), check("resnet/residual-block", 3)):
        assert repr(result).startswith("✗ Not yet. ") and "\n" not in repr(result)


def test_sequences_get_their_own_message():
    assert "the output is square" in repr(check("lenet/c1-output-unpadded", (24, 24)))
    assert "without brackets" in repr(check("lenet/c3-params", [2416]))
    assert "not several" in repr(check("lenet/c3-params", (2416, 16)))


def test_an_instance_built_differently_is_told_how_the_exercise_builds_it():
    result = check("resnet/residual-block", Block(64))
    assert not result and "builds it as Block(16): pass your class" in repr(result)


def test_depends_on_its_input():
    from cnnbook.exercises import depends_on_its_input

    class Constant(nn.Module):
        def forward(self, X):
            return torch.ones_like(X)

    assert depends_on_its_input(nn.Conv2d(2, 2, 1), (1, 2, 3, 3))
    assert "does not change with its input" in repr(depends_on_its_input(Constant(), (1, 2, 3, 3)))


def test_a_choice_with_an_answer_not_among_its_options_is_refused():
    with pytest.raises(ValueError, match="not among the options"):
        Choice("?", {"a": "x", "b": "y"}, "B", "because")
    with pytest.raises(ValueError, match="not among the options"):
        Choices("?", {"a": "x", "b": "y"}, "ac", "because")


def test_a_module_that_changes_its_input_in_place_does_not_fool_the_checks():
    class ZeroesItsInput(nn.Module):
        def forward(self, X):
            out = torch.cat((X, 2 * X), dim=1)
            X.zero_()  # after use: the checks compare with the input as it was
            return out

    assert concatenates_its_input(ZeroesItsInput(), (1, 2, 3, 3))


def test_exercise_runs_with_no_argument_runs_all(exercise_runs):
    """`python scripts/exercise_runs.py` (the documented default, "all") once stopped at once with
    "invalid choice: ['all']"."""
    every = [*exercise_runs.RUNS, *exercise_runs.MEASUREMENTS]
    assert exercise_runs.run_names([]) == exercise_runs.run_names(["all"]) == every
    assert exercise_runs.run_names(["resnet-8-9", "densenet-9"]) == ["resnet-8-9", "densenet-9"]
    with pytest.raises(SystemExit):
        exercise_runs.run_names(["resnet"])


def test_exercise_runs_build_the_networks_their_records_describe(exercise_runs):
    """scripts/exercise_runs.py builds each variant from the chapters' code; its committed records must
    describe those networks (parameter counts), so that a solution quoting them quotes this code."""
    import json

    import cnnbook
    from cnnbook.book import chapter_code

    runs = exercise_runs
    root = runs.ROOT
    for name, (chapter, notebook, variants, _) in runs.RUNS.items():
        path = root / "results" / "exercises" / f"{name}.json"
        assert path.is_file(), f"no record for {name}: python scripts/exercise_runs.py {name}"
        recorded = {row["variant"]: row["parameters"] for row in json.loads(path.read_text())["rows"]}
        S = cnnbook.settings(chapter, "cpu")
        for label, build, _ in variants(chapter_code(root / "chapters" / notebook), S):
            assert recorded[label] == cnnbook.count_params(build()), f"{name}: {label}"


def test_densenet_solution_9_checkpoints_without_changing_the_gradients(exercise_runs):
    """The checkpointed forward that DenseNet's solution 9 shows (and scripts/exercise_runs.py measures)
    gives the same gradients and keeps less memory after the forward pass, on a small DenseNet."""
    import copy

    import torch

    from cnnbook.book import chapter_code

    runs = exercise_runs
    code = chapter_code(runs.ROOT / "chapters" / "10_densenet.ipynb")
    torch.manual_seed(0)
    plain = code.densenet(1, 10, growth_rate=8, block_config=(2, 3), num_init_features=16, stem="3x3+pool")
    checkpointed = runs.checkpointing_solution(code)(copy.deepcopy(plain))
    X = torch.randn(8, 1, 28, 28)
    assert runs.gradient_difference(plain, checkpointed, X) == 0.0
    assert runs.memory_kept(checkpointed, X) < 0.9 * runs.memory_kept(plain, X)
