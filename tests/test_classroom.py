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
