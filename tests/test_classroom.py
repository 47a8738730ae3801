"""The classroom editions (cnnbook.editions) and the grader (cnnbook.grading), with a simulated class."""
from __future__ import annotations

import copy
import csv
import json
import re
import textwrap
import time
from pathlib import Path

import nbformat
import pytest

from cnnbook import editions, grading

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "chapters").glob("[0-9]*.ipynb"))


def _solutions(nb) -> str:
    return "\n".join(m.group(1) for c in nb.cells if c.cell_type == "markdown"
                     for m in editions.SOLUTIONS.finditer(c.source))


def _everything(nb) -> str:
    """All a notebook holds: sources, outputs, cell and notebook metadata."""
    parts = [json.dumps(nb.metadata, ensure_ascii=False)]
    for cell in nb.cells:
        parts += [cell.source, json.dumps(cell.get("metadata", {}), ensure_ascii=False)]
        for out in cell.get("outputs", []):
            parts.append(json.dumps(out, ensure_ascii=False))
    return "\n".join(parts)


# --- the editions -----------------------------------------------------------------------------


def test_the_editions_are_what_the_chapters_make_now():
    """One command regenerates them: python -m cnnbook.editions (make editions)."""
    assert editions.stale() == [], "stale classroom editions: run `make editions`"


def test_the_generator_is_deterministic():
    assert editions.editions() == editions.editions()


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_a_student_edition_has_no_solution_and_keeps_every_exercise(chapter):
    source = nbformat.read(chapter, as_version=4)
    student = nbformat.read(ROOT / editions.STUDENT / chapter.name, as_version=4)
    text = _everything(student)
    assert not re.search(r"<summary>\s*Solutions", text, re.I) and "### Solutions" not in text
    # no line of a solution that the chapter does not also say elsewhere (an exercise's own text)
    outside = _everything(source).replace(_solutions(source), "")
    lines = {line.strip() for line in _solutions(source).splitlines() if len(line.strip()) >= 25}
    assert lines, f"{chapter.name}: no solutions found to leave out"
    left = [line for line in lines if line not in outside and line in text]
    assert not left, f"{chapter.name}: solution text in the student edition: {left[:3]}"
    assert "✓ Right" not in text  # no printed verdict of a right answer anywhere
    # every checked exercise kept, unanswered, with its self-check; its cell's old output cleared
    assert editions.exercises_of(student) == editions.exercises_of(source)
    index = editions.exercise_cell(student)
    if index is not None:
        cell = student.cells[index]
        assert cell.outputs == [] and cell.source == source.cells[editions.exercise_cell(source)].source
        for ex in editions.exercises_of(student):
            assert f'check("{ex["name"]}", {ex["variable"]})' in cell.source
    assert all(set(c.get("metadata", {})) <= {"tags"} for c in student.cells)
    first = student.cells[0].source
    assert "**Student edition.**" in first
    links = editions.COLAB_LINK.findall(first)
    assert links == [f"{editions.COLAB}{editions.STUDENT}/{chapter.name}"], links  # its own, only
    assert student.metadata["cnnbook_edition"] == {"edition": "student", "chapter": chapter.name}


def test_the_instructor_edition_has_the_solutions_times_and_wrong_answers():
    nb = nbformat.read(ROOT / editions.INSTRUCTOR / "09_resnet.ipynb", as_version=4)
    links = editions.COLAB_LINK.findall(nb.cells[0].source)  # its own, and the student edition's
    assert links == [f"{editions.COLAB}{editions.STUDENT}/09_resnet.ipynb",
                     f"{editions.COLAB}{editions.INSTRUCTOR}/09_resnet.ipynb"]
    notes = nb.cells[1].source
    assert "measured" in notes and "**predicted**" in notes and "2-core CPU" in notes and "H200" in notes
    assert "1. `resnet/basic-block-params` (`answer_1`): answer 73,984" in notes
    assert "74,112 means: The convolutions have no biases here" in notes  # a Count's known mistake
    assert "(c) means: With batch normalisation the gradients do not vanish" in notes  # a Choice's
    assert "Your block has no BatchNorm2d" in notes  # a coding exercise's own hint
    text = "\n".join(c.source for c in nb.cells)
    assert "### Solutions" in text and "<summary>Solutions" not in text
    assert "return torch.relu(self.f(X) + X)" in text


def test_the_classroom_page_opens_every_student_edition_in_colab():
    page = (ROOT / editions.PAGE).read_text()
    for chapter in CHAPTERS:
        assert f"[Open in Colab]({editions.COLAB}{editions.STUDENT}/{chapter.name})" in page


# --- a simulated class ------------------------------------------------------------------------

RIGHT = {  # as a student would write them
    "answer_1": "2 * 3 * 3 * 64 * 64 + 2 * 2 * 64",
    "answer_2": "256 * 64 + 9 * 64 * 64 + 64 * 256 + 2 * (64 + 64 + 256)",
    "answer_3": "128 * 256 + 2 * 256",
    "answer_4": "(28 + 6 - 7) // 2 + 1",
    "answer_5": '"a"',
    "answer_6": '"b"',
}
WRONG = {"answer_1": "74112", "answer_2": "69632", "answer_3": "32768", "answer_4": "14.5",
         "answer_5": '"c"', "answer_6": '"a"'}
PLAIN_BLOCK = """
class Block(nn.Module):  # no shortcut
    def __init__(self, channels):
        super().__init__()
        self.f = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels), nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels))

    def forward(self, X):
        return torch.relu(self.f(X))
"""


def _solution_block() -> str:
    """Exercise 7's solution code, from the chapter (the student edition has none)."""
    solutions = _solutions(nbformat.read(ROOT / "chapters" / "09_resnet.ipynb", as_version=4))
    code = re.search(r"```python\n(.*?)```", solutions, re.DOTALL).group(1)
    return textwrap.dedent(code)


def _answered(values: dict, block: str | None) -> str:
    """The exercise cell of the student edition with these answers (and this class Block)."""
    student = nbformat.read(ROOT / editions.STUDENT / "09_resnet.ipynb", as_version=4)
    source = student.cells[editions.exercise_cell(student)].source
    for variable, value in values.items():
        source = re.sub(rf"^{variable} = None", f"{variable} = {value}", source, flags=re.M)
    if block is not None:
        source = source.replace("Block = None  #", block + "\n#")
    return source


def _class(tmp: Path) -> None:
    """Write the simulated class's notebooks into ``tmp`` (each named for its story)."""
    base = nbformat.read(ROOT / editions.STUDENT / "09_resnet.ipynb", as_version=4)
    ex = editions.exercise_cell(base)
    training = next(i for i, c in enumerate(base.cells) if "cnnbook.train(" in c.source)
    solution = _solution_block()

    def save(name: str, cells_source: dict[int, str] | None = None, edit=None):
        nb = copy.deepcopy(base)
        for index, text in (cells_source or {}).items():
            nb.cells[index].source = text
        if edit:
            edit(nb)
        nbformat.write(nb, tmp / f"{name}.ipynb")

    save("all_right", {ex: _answered(RIGHT, solution)})
    save("all_wrong", {ex: _answered(WRONG, PLAIN_BLOCK)})
    save("unanswered")
    save("syntax_error", {ex: _answered(RIGHT, solution).replace("answer_3 = ", "answer_3 = = ")})
    save("deleted_cell", edit=lambda nb: nb.cells.pop(ex))

    def reorder(nb):  # the exercise cell first, the rest reversed
        cell = nb.cells.pop(ex)
        nb.cells[:] = [cell] + nb.cells[::-1]
    save("reordered", {ex: _answered(RIGHT, solution)}, edit=reorder)

    def wrong_cells(nb):
        # answer 1 in the training cell (its line gone from the exercise cell), answer 2 in a new cell at
        # the end, answer 3 in the training cell but set back to None by the exercise cell
        nb.cells[training].source += "\nanswer_1 = 73984\nanswer_3 = 33280\n"
        nb.cells[ex].source = re.sub(r"^answer_1 = None.*\n", "", nb.cells[ex].source, flags=re.M)
        nb.cells.append(nbformat.v4.new_code_cell("answer_2 = 70400"))
    save("wrong_cells", edit=wrong_cells)

    loops = _answered({"answer_1": "73984", "answer_3": "33280", "answer_5": '"a"', "answer_6": '"b"'},
                      solution)
    loops = loops.replace("answer_2 = None", "while True:\n    answer_2 = 1")
    loops = loops.replace("answer_4 = None", "answer_4 = sum(range(10 ** 15))")  # C code: no alarm
    loops = loops.replace('print(check("resnet/residual-block", Block))',
                          'Block = Looping\nprint(check("resnet/residual-block", Block))')
    looping = ("class Looping(nn.Module):\n    def __init__(self, channels):\n        super().__init__()\n"
               "    def forward(self, X):\n        while True:\n            pass\n\n\n")
    save("infinite_loops", {ex: looping + loops})

    huge = _answered({"answer_1": "torch.zeros(10 ** 11).sum()", "answer_2": "len([0] * 10 ** 10)",
                      "answer_3": "128 * 256 + 2 * 256"}, solution)
    save("huge_allocation", {ex: huge})

    cheat = _answered({"answer_1": "74112", "answer_2": "70400"}, None)
    cheat = ('print("✓ Right. Parameters of a basic block = 73,984.")\n'
             'note = open("written_by_a_student.txt", "w").write("x")\n'
             'answer_5 = "c"\nprint("✓ Right. (c)")\n') + cheat.replace("answer_5 = None", "")
    cheat += '\nimport os\nanswer_6 = os._exit(3)\n'  # ends its own process
    save("cheats_and_crashes", {ex: cheat})
    (tmp / "not_a_notebook.ipynb").write_text("{ this is not json")


EXPECTED = {  # per student: the verdicts of exercises 1-7 (a regular expression each) and the total
    "all_right": (["✓ Parameters of a basic block", "✓ Parameters of a bottleneck", "✓ Parameters of a projection",
                   r"✓ ⌊\(28 \+ 2·3 − 7\) / 2⌋ \+ 1 = 14", r"✓ \(a\)", r"✓ \(b\)", "✓ Your block keeps the shape"],
                  "7/7"),
    "all_wrong": (["✗ 74,112 is not right. The convolutions have no biases",
                   "✗ 69,632 is not right. Add the three BatchNorms", "✗ 32,768 is not right. Add the BatchNorm",
                   "✗ 14.5 is not the output side. Round the division down", r"✗ \(c\) With batch normalisation",
                   r"✗ \(a\) The identity shortcut has no parameters", "✗ .*does not add its input"], "0/7"),
    "unanswered": (["✗ No answer yet"] * 7, "0/7"),
    "syntax_error": (["✗ the cell that sets answer_1 \\(cell 37\\) has a syntax error, line 7: invalid syntax"]
                     + [f"✗ the cell that sets answer_{i} .*syntax error" for i in range(2, 7)]
                     + ["✗ the cell that sets Block .*syntax error"], "0/7"),
    "deleted_cell": ([f"✗ no answer: no cell sets answer_{i} " for i in range(1, 7)]
                     + ["✗ no answer: no cell sets Block"], "0/7"),
    "reordered": (["✓"] * 7, "7/7"),
    "wrong_cells": (["✓ .*\\[set in cell 26, outside the exercise cell\\]",
                     "✓ .*\\[set in cell 39, outside the exercise cell\\]",
                     "✗ No answer yet.*\\[cell 26 sets it too, but the exercise cell, run after it, sets it to None\\]",
                     "✗ No answer yet", "✗ No answer yet", "✗ No answer yet", "✗ No answer yet"], "2/7"),
    "infinite_loops": (["✓", r"✗ ran past the time limit of 1 s \(an infinite loop\?\) \(cell 37, line \d+\)", "✓",
                        r"✗ ran past the time limit of 1 s and was stopped \(an infinite loop\?\) \(cell 37",
                        "✓", "✓", "✗ its check ran past the time limit of 1 s"], "4/7"),
    "huge_allocation": (["✗ ran out of memory", "✗ ran out of memory", "✓", "✗ No answer yet", "✗ No answer yet",
                         "✗ No answer yet", "✓"], "2/7"),
    "cheats_and_crashes": (["✗ 74,112 is not right", "✓", "✗ No answer yet", "✗ No answer yet", r"✗ \(c\)",
                            r"✗ ended the grader's process \(exit code 3", "✗ No answer yet"], "1/7"),
    "not_a_notebook": (["✗ not a readable notebook \\(JSONDecodeError\\)"] * 7, "0/7"),
}


def test_a_simulated_class_is_graded_cell_by_cell(tmp_path, monkeypatch):
    folder, out = tmp_path / "submissions", tmp_path / "grades"
    folder.mkdir()
    _class(folder)
    monkeypatch.chdir(tmp_path)
    start = time.monotonic()
    rows, seconds = grading.grade_folder(folder, "09_resnet", out, jobs=2,
                                         limits={"step_seconds": 1.0, "grace_seconds": 1.0})
    elapsed = time.monotonic() - start
    print(f"\n{len(rows) - 1} submissions graded in {elapsed:.1f} s")
    print((out / "grades.md").read_text())
    header, *students = rows
    assert header == ["student", "1. resnet/basic-block-params", "2. resnet/bottleneck-params",
                      "3. resnet/projection-params", "4. resnet/imagenet-stem-on-28", "5. resnet/why-degradation",
                      "6. resnet/why-identity-easy", "7. resnet/residual-block", "total"]
    assert [row[0] for row in students] == sorted(EXPECTED)
    problems = []
    for row in students:
        patterns, total = EXPECTED[row[0]]
        for number, (cell, pattern) in enumerate(zip(row[1:-1], patterns), 1):
            if not re.match(pattern, cell):
                problems.append(f"{row[0]}, exercise {number}: {cell!r} does not match {pattern!r}")
        if row[-1] != total:
            problems.append(f"{row[0]}: total {row[-1]}, expected {total}")
    assert not problems, "\n".join(problems)
    with open(out / "grades.csv", newline="", encoding="utf-8") as f:
        assert list(csv.reader(f)) == rows
    page = (out / "grades.md").read_text()
    assert page.count("\n| ") == len(rows) and "| all_right | ✓ | ✓ | ✓ | ✓ | ✓ | ✓ | ✓ | 7/7 |" in page
    assert not (tmp_path / "written_by_a_student.txt").exists()  # its own temporary folder, removed
    assert not list(Path("/tmp").glob("cnnbook-grade-*/written_by_a_student.txt"))
    assert elapsed < 45, f"the class took {elapsed:.0f} s"


def test_a_class_of_right_answers_takes_well_under_10_s_each(tmp_path):
    base = nbformat.read(ROOT / editions.STUDENT / "09_resnet.ipynb", as_version=4)
    base.cells[editions.exercise_cell(base)].source = _answered(RIGHT, _solution_block())
    for i in range(6):
        nbformat.write(base, tmp_path / f"student_{i}.ipynb")
    rows, seconds = grading.grade_folder(tmp_path, None, tmp_path / "out")  # the chapter read from metadata
    assert [row[-1] for row in rows[1:]] == ["7/7"] * 6
    assert seconds / 6 < 10, f"{seconds / 6:.1f} s per submission"


def test_the_grader_needs_to_know_the_chapter(tmp_path):
    (tmp_path / "a.ipynb").write_text(json.dumps({"cells": [], "metadata": {}, "nbformat": 4,
                                                   "nbformat_minor": 5}))
    with pytest.raises(SystemExit, match="pass --chapter"):
        grading.grade_folder(tmp_path)


def test_a_submission_named_like_its_chapter_is_graded_not_read_as_the_chapter(tmp_path, monkeypatch):
    """Colab downloads a student's notebook as 09_resnet.ipynb. Run from a folder of such files, the grader
    once took the student's file for the chapter (the metadata names "09_resnet.ipynb", a path that exists
    there): its edited exercise cell decided the columns, or stopped the grading."""
    base = nbformat.read(ROOT / editions.STUDENT / "09_resnet.ipynb", as_version=4)
    index = editions.exercise_cell(base)
    deleted = copy.deepcopy(base)
    deleted.cells.pop(index)
    nbformat.write(deleted, tmp_path / "09_resnet.ipynb")
    base.cells[index].source = _answered(RIGHT, _solution_block())
    nbformat.write(base, tmp_path / "bob.ipynb")
    monkeypatch.chdir(tmp_path)
    rows, _ = grading.grade_folder(tmp_path, None, tmp_path / "out")
    assert rows[0][1:-1] == [f"{ex['number']}. {ex['name']}" for ex in editions.exercises_of(base)]
    assert [(row[0], row[-1]) for row in rows[1:]] == [("09_resnet", "0/7"), ("bob", "7/7")]
    assert rows[1][1].startswith("✗ no answer: no cell sets answer_1")


def test_another_chapters_edition_is_graded_wrong_not_a_stop(tmp_path):
    """A student who hands in another chapter's edition gets a row that says so; the class is graded
    (the chapter is the one most submissions are the edition of)."""
    base = nbformat.read(ROOT / editions.STUDENT / "09_resnet.ipynb", as_version=4)
    base.cells[editions.exercise_cell(base)].source = _answered(RIGHT, _solution_block())
    for name in ("alice", "bob"):
        nbformat.write(base, tmp_path / f"{name}.ipynb")
    other = nbformat.read(ROOT / editions.STUDENT / "08_batch_norm.ipynb", as_version=4)
    nbformat.write(other, tmp_path / "carol.ipynb")
    for chapter in (None, "09_resnet"):
        rows, _ = grading.grade_folder(tmp_path, chapter, tmp_path / "out")
        assert [(row[0], row[-1]) for row in rows[1:]] == [("alice", "7/7"), ("bob", "7/7"), ("carol", "0/7")]
        assert rows[3][1:-1] == ["✗ this is the student edition of 08_batch_norm.ipynb, not of "
                                 "09_resnet.ipynb: the wrong notebook handed in?"] * 7
    nbformat.write(other, tmp_path / "dave.ipynb")  # two against two: the teacher says which
    with pytest.raises(SystemExit, match=r"08_batch_norm.ipynb \(2\), 09_resnet.ipynb \(2\)|"
                                         r"09_resnet.ipynb \(2\), 08_batch_norm.ipynb \(2\)"):
        grading.grade_folder(tmp_path, None, tmp_path / "out")


def test_without_proc_the_grader_still_grades(tmp_path, monkeypatch):
    """Where /proc is missing (macOS) the memory limit, set above what torch maps, cannot be computed:
    each submission's process once died before its first statement ("not graded" for everyone)."""
    monkeypatch.setattr(grading, "PROC_STATUS", tmp_path / "no-proc" / "status")
    base = nbformat.read(ROOT / editions.STUDENT / "09_resnet.ipynb", as_version=4)
    base.cells[editions.exercise_cell(base)].source = _answered(RIGHT, _solution_block())
    nbformat.write(base, tmp_path / "alice.ipynb")
    rows, _ = grading.grade_folder(tmp_path, "09_resnet", tmp_path / "out")
    assert rows[1][-1] == "7/7", rows[1]


def test_jobs_zero_grades_one_at_a_time(tmp_path):
    """`--jobs 0` once started no process and waited for ever."""
    nbformat.write(nbformat.read(ROOT / editions.STUDENT / "01_fashion_mnist.ipynb", as_version=4),
                   tmp_path / "alice.ipynb")
    rows, _ = grading.grade_folder(tmp_path, None, tmp_path / "out", jobs=0)
    assert rows[1][1:] == ["✗ No answer yet: replace None with your answer and run the cell again."] * 2 + ["0/2"]


# --- every chapter's class: answered right, answered wrong, unanswered ---------------------------

SOLUTION = object()  # a coding exercise's right answer: the code block of its solution in the chapter

NO_RELU_LENET = """
def my_lenet_block(in_channels, out_channels):  # no ReLU
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, kernel_size=5),
                         nn.MaxPool2d(kernel_size=2, stride=2))
"""
POOL_2_ALEXNET = """
def my_alexnet_block(in_channels, out_channels):  # the pooling not overlapping: 2 x 2
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, padding=1),
                         nn.ReLU(), nn.MaxPool2d(kernel_size=2, stride=2))
"""
NO_POOL_VGG = """
def my_vgg_block(in_channels, out_channels, num_convs):  # no pooling
    layers = []
    for _ in range(num_convs):
        layers += [nn.Conv2d(in_channels, out_channels, 3, padding=1), nn.ReLU()]
        in_channels = out_channels
    return nn.Sequential(*layers)
"""
NO_LAST_RELU_NIN = """
def my_nin_block(in_channels, out_channels, kernel_size, padding):  # no ReLU after the last 1 x 1
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, padding=padding), nn.ReLU(),
        nn.Conv2d(out_channels, out_channels, 1), nn.ReLU(),
        nn.Conv2d(out_channels, out_channels, 1))
"""
POOL_FIRST_INCEPTION = """
class MyInception(nn.Module):  # the pooling branch first
    def __init__(self, in_channels, widths):
        super().__init__()
        c1, c3r, c3, c5r, c5, cp = widths
        conv = lambda i, o, k: nn.Sequential(nn.Conv2d(i, o, k, padding=k // 2), nn.ReLU())
        self.b1 = conv(in_channels, c1, 1)
        self.b2 = nn.Sequential(conv(in_channels, c3r, 1), conv(c3r, c3, 3))
        self.b3 = nn.Sequential(conv(in_channels, c5r, 1), conv(c5r, c5, 5))
        self.b4 = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1), conv(in_channels, cp, 1))

    def forward(self, X):
        return torch.cat([self.b4(X), self.b1(X), self.b2(X), self.b3(X)], dim=1)
"""
BATCH_STATS_ALWAYS = """
class MyBatchNorm(nn.Module):  # the batch's statistics in evaluation mode too
    def __init__(self, num_features):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(num_features))
        self.beta = nn.Parameter(torch.zeros(num_features))

    def forward(self, X):
        mean = X.mean(dim=(0, 2, 3), keepdim=True)
        var = X.var(dim=(0, 2, 3), unbiased=False, keepdim=True)
        X_hat = (X - mean) / torch.sqrt(var + 1e-5)
        return self.gamma.reshape(1, -1, 1, 1) * X_hat + self.beta.reshape(1, -1, 1, 1)
"""
NEW_ONLY_DENSE = """
class DenseLayer(nn.Module):  # returns the new features only
    def __init__(self, in_channels, growth_rate):
        super().__init__()
        self.f = nn.Sequential(nn.BatchNorm2d(in_channels), nn.ReLU(),
                               nn.Conv2d(in_channels, growth_rate, 3, padding=1, bias=False))

    def forward(self, X):
        return self.f(X)
"""

# chapter => per checked exercise, in order: (its answer variable, a right answer as a student writes it,
# a plausible wrong one, the start of the check's reason for the wrong one: a regular expression)
CLASSES = {
    "01_fashion_mnist": [
        ("answer_1", "256 * 28 * 28 * 4", "256 * 28 * 28", r"200,704 is not right\. That counts one byte per value"),
        ("answer_2", "11.76", "96 / 28", r"3\.42857 is not right\. That is the ratio of the sides"),
    ],
    "02_training_a_cnn": [
        ("answer_1", "(28 + 0 - 5) // 1 + 1", "23", r"23 is not the output side\. Don't forget the \+ 1"),
        ("answer_2", "(28 + 2 - 3) // 2 + 1", "13", r"13 is not the output side\. Don't forget the padding"),
        ("answer_3", "3 * 3 * 16 * 32 + 32", "3 * 3 * 16 * 32", r"4,608 is not right\. That is the weights alone"),
    ],
    "03_lenet": [
        ("answer_1", "5 * 5 * 6 * 16 + 16", "5 * 5 * 6 * 16", r"2,400 is not right\. That is the weights alone"),
        ("answer_2", "28 - 5 + 1", "28", r"28 is not the output side\. That is the input side"),
        ("answer_3", "4", "5", r"5 is not right\. That is the side with C1's padding of 2"),
        ("answer_4", '"a"', '"b"', r"\(b\) Any side works"),
        ("answer_5", '"a"', '"c"', r"\(c\) C1 has 6 output channels, C5 has 120"),
        ("my_lenet_block", SOLUTION, NO_RELU_LENET,
         r"Your block: the output differs from the reference's from layer 2 \(ReLU expected after the Conv2d"),
    ],
    "04_alexnet": [
        ("answer_1", "(227 - 11) // 4 + 1", "54", r"54 is not the output side\. Don't forget the \+ 1"),
        ("answer_2", "9216 * 4096 + 4096", "9216 * 4096", r"37,748,736 is not right\. That is the weights alone"),
        ("answer_3", "2 * (5 * 5 * 48 * 128 + 128)", "5 * 5 * 48 * 128 + 128",
         r"153,728 is not right\. That is one of the 2; count them all"),
        ("answer_4", '"a"', '"c"', r"\(c\) Dropout removes a new random half"),
        ("answer_5", '"a"', '"d"', r"\(d\) A convolution's parameters do not depend on the image size"),
        ("my_alexnet_block", SOLUTION, POOL_2_ALEXNET,
         r"Your block returns shape \(2, 48, 14, 14\), expected \(2, 48, 13, 13\)"),
    ],
    "05_vgg": [
        ("answer_1", "3 * 3 * 512 * 512 + 512", "3 * 3 * 512 * 512",
         r"2,359,296 is not right\. That is the weights alone"),
        ("answer_2", "25088 * 4096 + 4096", "25088 * 4096 + 2 * 4096",
         r"102,768,640 is not right\. That counts the biases twice"),
        ("answer_3", "1 + 4 * (3 - 1)", "4 * 3", r"12 is not right\. Stacked windows overlap"),
        ("answer_4", '"a"', '"b"', r"\(b\) A convolution's parameters, 9·C_in·C_out, grow four-fold"),
        ("answer_5", '"a"', '"b"', r"\(b\) The convolutions keep any size"),
        ("my_vgg_block", SOLUTION, NO_POOL_VGG,
         r"Your block returns shape \(2, 32, 14, 14\), expected \(2, 32, 7, 7\)"),
    ],
    "06_nin": [
        ("answer_1", "96 * 96 + 96", "96 * 96", r"9,216 is not right\. That is the weights alone"),
        ("answer_2", "(5 * 5 * 96 + 1) * 256 + 2 * (256 + 1) * 256", "(5 * 5 * 96 + 1) * 256",
         r"614,656 is not right\. That is the 5 × 5 convolution alone"),
        ("answer_3", "384 * 5 * 5 * 4096 + 4096", "384 * 5 * 5 * 4096",
         r"39,321,600 is not right\. That is the weights alone"),
        ("answer_4", "5 * 5", "36", r"36 is not right\. Look at the stride"),
        ("answer_5", '"a"', '"b"', r"\(b\) A ReLU has no parameters"),
        ("answer_6", '"b"', '"a"', r"\(a\) A 1 × 1 convolution with stride 1 keeps the height and width"),
        ("my_nin_block", SOLUTION, NO_LAST_RELU_NIN,
         r"Your block: the output differs from the reference's from layer 6 \(ReLU expected after the third Conv2d"),
    ],
    "07_googlenet": [
        ("answer_1", "64 + 128 + 32 + 32", "64 + 96 + 128 + 16 + 32 + 32",
         r"368 is not right\. That adds the reductions too"),
        ("answer_2", "(224 + 2 * 3 - 7) // 2 + 1", "(224 - 7) // 2 + 1",
         r"109 is not the output side\. Don't forget the padding"),
        ("answer_3", "192 * 16 + 16 + 5 * 5 * 16 * 32 + 32", "192 * 16 + 5 * 5 * 16 * 32",
         r"15,872 is not right\. That leaves out the biases"),
        ("answer_4", "5 * 5 * 192 * 32 + 32", "5 * 5 * 192 * 32", r"153,600 is not right\. That is the weights alone"),
        ("answer_5", '"b"', '"a"', r"\(a\) Keeping the side costs multiply-adds"),
        ("answer_6", '"b"', '"a"', r"\(a\) A 1 × 1 convolution sees one pixel"),
        ("MyInception", SOLUTION, POOL_FIRST_INCEPTION,
         r"Your block's branches come in another order \(32, 64, 128, 32 channels\)"),
    ],
    "08_batch_norm": [
        ("answer_1", "2 * 64", "4 * 64", r"256 is not right\. The running mean and variance are buffers"),
        ("answer_2", "0.9 * 2.0 + 0.1 * 7.0", "0.1 * 2.0 + 0.9 * 7.0",
         r"6\.5 is not right\. In PyTorch the momentum weighs the new batch mean"),
        ("answer_3", "3.683", "3.32",
         r"3\.32 is not right\. Batch normalisation divides the squares by n, not n − 1"),
        ("answer_4", "2 * (64 + 128 + 256 + 256 + 512 + 512 + 512 + 512)",
         "64 + 128 + 256 + 256 + 512 + 512 + 512 + 512",
         r"2,752 is not right\. Each channel gets two learnable numbers"),
        ("answer_5", '"b"', '"a"', r"\(a\) That is torch\.no_grad\(\)"),
        ("answer_6", '"b"', '"c"', r"\(c\) The normalisation divides the scale of the weights away"),
        # the solution: "The chapter's `BatchNorm` above is one solution"
        ("MyBatchNorm", "MyBatchNorm = BatchNorm  # the chapter's own class", BATCH_STATS_ALWAYS,
         r"In evaluation mode your output differs from nn\.BatchNorm2d's: normalise with the running estimates"),
    ],
    "09_resnet": [
        (variable, RIGHT[variable], WRONG[variable], pattern.removeprefix("✗ "))
        for variable, pattern in zip(sorted(RIGHT), EXPECTED["all_wrong"][0])
    ] + [("Block", SOLUTION, PLAIN_BLOCK, EXPECTED["all_wrong"][0][-1].removeprefix("✗ "))],
    "10_densenet": [
        ("answer_1", "256 + 32 * 32", "32 * 32", r"1,024 is not right\. A dense block passes its input on too"),
        ("answer_2", "2 * 224 + 224 * 128 + 2 * 128 + 3 * 3 * 128 * 32", "224 * 128 + 3 * 3 * 128 * 32",
         r"65,536 is not right\. Add the two BatchNorms"),
        ("answer_3", "2 * 1280 + 1280 * 640", "1280 * 640",
         r"819,200 is not right\. Add the BatchNorm in front of the convolution"),
        ("answer_4", "(7 - 2) // 2 + 1", "(7 - 2) / 2 + 1", r"3\.5 is not the output side\. Round the division down"),
        ("answer_5", '"b"', '"d"', r"\(d\) The paper reached state-of-the-art accuracy"),
        ("answer_6", '"b"', '"a"', r"\(a\) DenseNet has no additive shortcuts"),
        ("DenseLayer", SOLUTION, NEW_ONLY_DENSE, r"Your layer returns only its new features"),
    ],
}


def _solution_code(chapter: str, number: int, variable: str) -> str:
    """Exercise ``number``'s solution code, from the chapter's folded solutions (its numbered item)."""
    text = _solutions(nbformat.read(ROOT / "chapters" / f"{chapter}.ipynb", as_version=4))
    parts = re.split(r"(?m)^(\d+)\. ", text)
    item = dict(zip(parts[1::2], parts[2::2]))[str(number)]
    code = textwrap.dedent(re.search(r"```python\n(.*?)```", item, re.DOTALL).group(1))
    assert re.search(rf"^(def|class) {variable}\b", code, re.M), f"{chapter}: solution {number} is not {variable}"
    return code


def _with_answers(source: str, answers: dict[str, str]) -> str:
    """The exercise cell ``source`` with each answer in place of its placeholder: ``x = None`` becomes
    ``x = answer`` (its comment kept); a coding exercise's placeholder (``X = None``, or the ``def`` that
    returns None) becomes its block."""
    for variable, answer in answers.items():
        if "\n" in answer.strip() or answer.startswith(f"{variable} ="):
            pattern = rf"^{variable} = None[^\n]*$|^def {variable}\([\s\S]*?return None[^\n]*$"
            new = answer.strip("\n")
        else:
            pattern, new = rf"^{variable} = None", f"{variable} = {answer}"
        source, count = re.subn(pattern, lambda _: new, source, flags=re.M)
        assert count == 1, f"no single placeholder for {variable} in:\n{source}"
    return source


@pytest.mark.parametrize("chapter", sorted(CLASSES))
def test_every_chapter_is_graded_right_wrong_and_unanswered(chapter, tmp_path):
    """From each chapter's committed student edition: every exercise answered right (the chapter's
    solutions), every exercise answered wrong (a plausible mistake), and the edition as it is."""
    student = nbformat.read(ROOT / editions.STUDENT / f"{chapter}.ipynb", as_version=4)
    index, exercises, spec = editions.exercise_cell(student), editions.exercises_of(student), CLASSES[chapter]
    assert [variable for variable, *_ in spec] == [ex["variable"] for ex in exercises]
    right = {variable: _solution_code(chapter, ex["number"], variable) if answer is SOLUTION else answer
             for (variable, answer, *_), ex in zip(spec, exercises)}
    folder = tmp_path / "submissions"
    folder.mkdir()
    for name, answers in (("right", right), ("wrong", {variable: wrong for variable, _, wrong, _ in spec})):
        nb = copy.deepcopy(student)
        nb.cells[index].source = _with_answers(nb.cells[index].source, answers)
        nbformat.write(nb, folder / f"{name}.ipynb")
    nbformat.write(student, folder / "unanswered.ipynb")

    rows, seconds = grading.grade_folder(folder, chapter, tmp_path / "grades", jobs=2)
    print(f"\n{chapter}: 3 submissions graded in {seconds:.1f} s")
    print((tmp_path / "grades" / "grades.md").read_text())
    n = len(exercises)
    header, *students = rows
    assert header == ["student", *(f"{ex['number']}. {ex['name']}" for ex in exercises), "total"]
    assert [(row[0], row[-1]) for row in students] == [("right", f"{n}/{n}"), ("unanswered", f"0/{n}"),
                                                       ("wrong", f"0/{n}")]
    by_name = {row[0]: row[1:-1] for row in students}
    problems = []
    for ex, cell, (variable, *_, reason) in zip(exercises, by_name["right"], spec):
        if not cell.startswith("✓ ") or "[" in cell:
            problems.append(f"right, exercise {ex['number']} ({variable}): {cell!r}")
    for ex, cell, (variable, *_, reason) in zip(exercises, by_name["wrong"], spec):
        if not re.match("✗ " + reason, cell):
            problems.append(f"wrong, exercise {ex['number']} ({variable}): {cell!r} does not match {reason!r}")
    for ex, cell in zip(exercises, by_name["unanswered"]):
        if not cell.startswith("✗ No answer yet") or "[" in cell:
            problems.append(f"unanswered, exercise {ex['number']}: {cell!r}")
    assert not problems, "\n".join(problems)
    assert seconds < 20, f"{chapter}: 3 submissions took {seconds:.0f} s"
