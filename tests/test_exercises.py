"""Every checked exercise accepts the right answer and rejects a wrong one, with a reason."""
from __future__ import annotations

import pytest
from torch import nn

from cnnbook import exercises
from cnnbook.exercises import EXERCISES, check


@pytest.mark.parametrize("name", list(EXERCISES))
def test_checked_exercise_accepts_right_and_rejects_wrong(name):
    expected = EXERCISES[name].expected
    right = check(name, round(expected, 2) if isinstance(expected, float) else expected)
    assert right and repr(right).startswith("✅")
    wrong = check(name, expected + 1)
    assert not wrong and repr(wrong).startswith("❌")
    assert not check(name, None) and "replace None" in repr(check(name, None))


def test_output_size_hints_at_the_usual_mistakes():
    assert "Round the division down" in repr(exercises.check_output_size(14.5, 28, 3, 2, 1))
    assert "padding" in repr(exercises.check_output_size(13, 28, 3, 2, 1))


def test_unknown_exercise_lists_the_known_ones():
    with pytest.raises(KeyError, match="training/conv-params"):
        check("nope", 1)


def test_check_module_compares_shape_and_parameters():
    def reference():
        return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU())

    assert exercises.check_module(reference, reference, (2, 1, 8, 8))
    no_padding = exercises.check_module(lambda: nn.Conv2d(1, 4, 3), reference, (2, 1, 8, 8))
    assert not no_padding and "shape (2, 4, 6, 6)" in repr(no_padding)
    broken = exercises.check_module(lambda: nn.Conv2d(3, 4, 3, padding=1), reference, (2, 1, 8, 8))
    assert not broken and "fails" in repr(broken)
