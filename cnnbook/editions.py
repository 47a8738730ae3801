"""The classroom editions of the chapters, generated from them: ``python -m cnnbook.editions``.

- **Student edition** (``classroom/student/``): the chapter without its solutions -- the folded
  "Solutions" section is removed, and so is any cell tagged ``solution`` and any cell metadata but its
  tags. The exercise cell keeps its ``None`` answers and its self-checks, with its output cleared; the
  lesson's outputs (the book's own run) stay. Its first cell says it is the student edition and its
  Colab link opens itself.
- **Instructor edition** (``classroom/instructor/``): the chapter with its solutions unfolded, how long it
  takes (measured on a 2-core CPU; measured on a shared H200 and predicted for Colab's T4) and, for
  each checked exercise, its answer and what a wrong answer usually means (the hints of its check).

Both are deterministic (the same chapters give the same bytes): ``--check`` lists the stale editions.
The classroom page's table of editions (between ``<!-- editions -->`` markers) is written too.
"""
from __future__ import annotations

import argparse
import ast
import copy
import inspect
import json
import re
import sys
import textwrap
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
REPOSITORY = "cnnbook/cnnbook"
COLAB = f"https://colab.research.google.com/github/{REPOSITORY}/blob/main/"
GITHUB = f"https://github.com/{REPOSITORY}/blob/main/"
STUDENT, INSTRUCTOR = "classroom/student", "classroom/instructor"
PAGE = "book/classroom.md"
MARKERS = ("<!-- editions -->", "<!-- /editions -->")

# A folded solutions block: <details> ... <summary>Solutions</summary> ... </details>
SOLUTIONS = re.compile(r"<details>\s*<summary>\s*Solutions?\s*</summary>(.*?)</details>\n?",
                       re.DOTALL | re.IGNORECASE)
COLAB_LINK = re.compile(re.escape(COLAB) + r"[^)\s]+\.ipynb")


# --- reading a chapter's exercises --------------------------------------------------------------


def exercise_cell(nb) -> int | None:
    """The index of the chapter's exercise cell: the code cell that calls check(...)."""
    return next((i for i, c in enumerate(nb.cells) if c.cell_type == "code" and _check_calls(c.source)),
                None)


def _check_calls(source: str) -> list[tuple[str, str, int]]:
    """(exercise name, answer variable, line) of each check("name", variable) call in ``source``."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call)
             and isinstance(node.func, ast.Name) and node.func.id == "check" and len(node.args) == 2
             and isinstance(node.args[0], ast.Constant) and isinstance(node.args[1], ast.Name)]
    return sorted((c.args[0].value, c.args[1].id, c.lineno) for c in calls)


def exercises_of(nb) -> list[dict]:
    """The checked exercises of a chapter, in order: number, name, answer variable and what it asks
    (the comment beside the answer, e.g. "parameters of a basic block, 64 channels")."""
    index = exercise_cell(nb)
    if index is None:
        return []
    source = nb.cells[index].source
    lines = source.splitlines()
    found = []
    for name, variable, _ in sorted(_check_calls(source), key=lambda c: c[2]):
        binding = re.compile(rf"^\s*(?:{variable}\s*=|def {variable}\b|class {variable}\b)")
        start = next((i for i, line in enumerate(lines) if binding.match(line)), 0)
        number, what = None, ""
        for line in lines[max(0, start - 1): start + 4]:
            match = re.search(r"#\s*exercise (\d+):?\s*(.*)", line)
            if match:
                number, what = int(match.group(1)), match.group(2).strip()
                break
        found.append(dict(number=number or len(found) + 1, name=name, variable=variable, what=what))
    return found


# --- the student edition -------------------------------------------------------------------------


def _first_cell(nb, edition: str, path: str, banner: str) -> None:
    """Point the first cell's Colab link at ``path`` and put ``banner`` under its title."""
    cell = nb.cells[0]
    source = COLAB_LINK.sub(COLAB + path, cell.source)
    title, _, rest = source.partition("\n")
    cell.source = f"{title}\n\n{banner}\n{rest}"
    if COLAB + path not in cell.source:
        cell.source += f"\n\n[Open this {edition} edition in Colab]({COLAB}{path})"


def student_edition(chapter) -> nbformat.NotebookNode:
    """The student edition of a chapter notebook (a copy; the chapter is left as it is)."""
    nb = copy.deepcopy(chapter)
    name = _name(nb)
    keep = []
    for cell in nb.cells:
        tags = cell.get("metadata", {}).get("tags", [])
        if "solution" in tags:
            continue
        cell.metadata = {"tags": list(tags)} if tags else {}
        if cell.cell_type == "markdown":
            cell.source = SOLUTIONS.sub(
                "*The solutions are not in the student edition: try each exercise, then compare with "
                "your teacher's.*\n", cell.source).rstrip("\n")
        keep.append(cell)
    nb.cells = keep
    index = exercise_cell(nb)
    if index is not None:
        nb.cells[index].outputs, nb.cells[index].execution_count = [], None
    answer = ("Answer each checked one in the exercise cell near the end — replace `None` by your answer "
              "and run the cell: ✓ or ✗ with a hint. " if index is not None else "")
    hand_in = ("; your teacher grades the answers in the exercise cell, not its printed ✓"
               if index is not None else "")
    _first_cell(nb, "student", f"{STUDENT}/{name}", (
        f"> **Student edition.** The exercises are here without their solutions. {answer}The outputs you "
        "see are the book's own run on a 2-core CPU; *Runtime → Run all* replaces them with yours. To hand "
        f"it in, save the notebook (*File → Download → .ipynb*){hand_in}."))
    nb.metadata["cnnbook_edition"] = {"edition": "student", "chapter": name}
    return nb


# --- the instructor edition ----------------------------------------------------------------------


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min"


def chapter_times(name: str) -> list[str]:
    """How long the chapter takes, each figure labelled measured or predicted."""
    lines = []
    cpu = json.loads((ROOT / "cnnbook" / "chapter_times.json").read_text()).get(name)
    if cpu:
        seconds = cpu.get("seconds", {})
        measured = ", ".join(f"{_minutes(seconds[p])} in {words}" for p, words in
                             (("fp32", "float32"), ("bf16", "bfloat16")) if p in seconds)
        lines.append(f"- **2-core CPU** (`cpu` profile, the whole notebook): {measured}, measured on the "
                     f"book's machine ({cpu.get('processor', 'a CPU')}, {cpu['device']}). Without native "
                     f"bfloat16 (most laptops, Colab's CPU runtime) expect the float32 time or longer.")
        chapter = cpu.get("chapter")
    else:
        chapter = None
    gpu = ROOT / "results" / "gpu" / f"{chapter}.json"
    if chapter and gpu.is_file():
        from .results import Result
        from .t4 import predict_record

        record = Result.from_dict(json.loads(gpu.read_text()))
        lines.append(f"- **GPU** (`gpu` profile, the training run only: {record.num_epochs} epochs of "
                     f"{record.architecture}): {_minutes(record.wall_time_s)} measured on an "
                     f"{record.device_name} shared with other runs; about {_minutes(predict_record(record))} "
                     f"on Colab's T4, **predicted** (`cnnbook.t4`, never measured on a T4). The rest of "
                     f"the notebook adds its experiments.")
    elif cpu:
        lines.append("- **GPU**: no training run of its own; about as quick on Colab as on a CPU.")
    if chapter:
        lines.append("- **To skip training in class**: set `CNNBOOK_TRAINED=1` before running; the training "
                     "cell then loads the shipped trained network in seconds.")
    return lines


def _hints_in(test) -> list[str]:
    """The wrong(...) messages written in a coding exercise's test, placeholders shown as "…"."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(test)))
    except (OSError, TypeError, SyntaxError):
        return []
    hints = []
    for node in sorted(ast.walk(tree), key=lambda n: (getattr(n, "lineno", 0), getattr(n, "col_offset", 0))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "wrong" \
                and node.args:
            parts = node.args[0].values if isinstance(node.args[0], ast.JoinedStr) else [node.args[0]]
            text = "".join(p.value if isinstance(p, ast.Constant) and isinstance(p.value, str) else "…"
                           for p in parts)
            if text and text not in hints:
                hints.append(text)
    return hints


def _count(value) -> str:
    return f"{value:,}" if isinstance(value, int) or float(value).is_integer() else f"{value:,.4g}"


def what_wrong_means(exercise) -> list[str]:
    """The answer and the usual wrong answers with their meaning, as Markdown list items."""
    from .exercises import Choice, Code, Count, OutputSize

    if isinstance(exercise, Choice):
        lines = [f"answer ({exercise.answer}): {exercise.explain}"]
        lines += [f"({letter}) means: {why}" for letter, why in sorted(exercise.wrong.items())]
        return lines
    if isinstance(exercise, Count):
        worked = f" ({exercise.worked})" if exercise.worked else ""
        lines = [f"answer {_count(exercise.expected)}{worked}; method: {exercise.method}"]
        lines += [f"{_count(value)} means: {hint}" for value, hint in exercise.mistakes.items()
                  if value != exercise.expected]
        return lines
    if isinstance(exercise, OutputSize):
        lines = [f"answer {exercise.expected}; method: {exercise.method} with n = {exercise.n}, "
                 f"k = {exercise.kernel_size}, s = {exercise.stride}, p = {exercise.padding}"]
        seen = {exercise.expected}
        for value, hint in exercise.mistakes():
            if value not in seen:
                seen.add(value)
                lines.append(f"{_count(value)} means: {hint}")
        return lines
    if isinstance(exercise, Code):
        lines = [f"asks for {exercise.what}; right only if it computes what the check's reference block "
                 f"computes (given the reference's weights, in training and evaluation mode)"]
        lines += [f"the check's own hint: {hint}" for hint in _hints_in(exercise.test)]
        return lines + ["otherwise the generic hints: it does not build or run, the shape is wrong, or "
                        "the first layer where it parts from the reference"]
    return [f"{type(exercise).__name__}"]


def instructor_notes(nb, name: str) -> str:
    from .exercises import EXERCISES

    parts = ["## For the teacher", "", "**How long it takes.**", "", *chapter_times(name), ""]
    exercises = exercises_of(nb)
    if exercises:
        parts += ["**The checked exercises: the answer, and what a wrong answer usually means** (from "
                  "each check's hints; a student sees the hint, never the answer).", ""]
        for ex in exercises:
            lines = what_wrong_means(EXERCISES[ex["name"]])
            parts.append(f"{ex['number']}. `{ex['name']}` (`{ex['variable']}`): {lines[0]}")
            parts += [f"   - {line}" for line in lines[1:]]
        parts += ["", f"Grade a folder of submitted student editions with "
                      f"`python -m cnnbook.grading SUBMISSIONS --chapter {Path(name).stem}`."]
    else:
        parts += ["This chapter has no checked exercises; its open questions' solutions follow them."]
    return "\n".join(parts)


def instructor_edition(chapter) -> nbformat.NotebookNode:
    """The instructor edition: solutions unfolded, times and what wrong answers mean."""
    nb = copy.deepcopy(chapter)
    name = _name(nb)
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = SOLUTIONS.sub(lambda m: "### Solutions\n" + m.group(1).rstrip() + "\n\n",
                                        cell.source).rstrip("\n")
    _first_cell(nb, "instructor", f"{INSTRUCTOR}/{name}", (
        "> **Instructor edition** — not for students: the solutions are unfolded under the exercises, "
        "and the cell below says how long the chapter takes and what each wrong answer usually means. "
        f"Students get the [student edition]({COLAB}{STUDENT}/{name})."))
    notes = nbformat.v4.new_markdown_cell(instructor_notes(nb, name), id="instructor-notes")
    nb.cells.insert(1, notes)
    nb.metadata["cnnbook_edition"] = {"edition": "instructor", "chapter": name}
    return nb


# --- writing them ----------------------------------------------------------------------------------


def _name(nb) -> str:
    return nb.metadata["cnnbook_source"]


def _read(path: Path):
    nb = nbformat.read(path, as_version=4)
    nb.metadata["cnnbook_source"] = path.name
    return nb


def _text(nb) -> str:
    nb = copy.deepcopy(nb)
    nb.metadata.pop("cnnbook_source", None)
    return nbformat.writes(nb) + "\n"


def chapter_paths(chapters: Path | None = None) -> list[Path]:
    return sorted((chapters or ROOT / "chapters").glob("[0-9]*.ipynb"))


def editions(chapters: Path | None = None) -> dict[str, str]:
    """Every edition's repository path => its text, made from the chapters."""
    out = {}
    for path in chapter_paths(chapters):
        nb = _read(path)
        out[f"{STUDENT}/{path.name}"] = _text(student_edition(nb))
        out[f"{INSTRUCTOR}/{path.name}"] = _text(instructor_edition(nb))
    return out


def editions_table(chapters: Path | None = None) -> str:
    """The classroom page's table: each chapter's student and instructor editions, opened in Colab."""
    rows = ["| chapter | for students | for the teacher |", "|---|---|---|"]
    for path in chapter_paths(chapters):
        title = _read(path).cells[0].source.partition("\n")[0].lstrip("# ").strip()
        rows.append(f"| {path.stem[:2]}. {title} "
                    f"| [Open in Colab]({COLAB}{STUDENT}/{path.name}) · [file]({GITHUB}{STUDENT}/{path.name}) "
                    f"| [Open in Colab]({COLAB}{INSTRUCTOR}/{path.name}) |")
    return "\n".join(rows)


def page_with_table(page: str, table: str) -> str:
    start, end = MARKERS
    if start not in page or end not in page:
        raise ValueError(f"{PAGE} has no {start} ... {end} block for the table of editions")
    before, rest = page.split(start, 1)
    _, after = rest.split(end, 1)
    return f"{before}{start}\n{table}\n{end}{after}"


def expected_files(root: Path = ROOT) -> dict[Path, str]:
    """Every file the generator writes => its text."""
    files = {root / rel: text for rel, text in editions(root / "chapters").items()}
    page = root / PAGE
    files[page] = page_with_table(page.read_text(), editions_table(root / "chapters"))
    return files


def stale(root: Path = ROOT) -> list[str]:
    """The generated files that differ from what the chapters make now (or are missing, or extra)."""
    files = expected_files(root)
    out = [str(p.relative_to(root)) for p, text in files.items()
           if not p.is_file() or p.read_text() != text]
    for folder in (STUDENT, INSTRUCTOR):
        out += [str(p.relative_to(root)) for p in sorted((root / folder).glob("*.ipynb")) if p not in files]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cnnbook.editions", description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="list stale editions and exit 1 if any")
    args = parser.parse_args(argv)
    if args.check:
        out = stale()
        print("\n".join(out) if out else "The editions are up to date.")
        return 1 if out else 0
    files = expected_files()
    for folder in (STUDENT, INSTRUCTOR):
        (ROOT / folder).mkdir(parents=True, exist_ok=True)
        for old in (ROOT / folder).glob("*.ipynb"):
            if old not in files:
                old.unlink()
    changed = 0
    for path, text in files.items():
        if not path.is_file() or path.read_text() != text:
            path.write_text(text)
            changed += 1
    print(f"{changed} of {len(files)} files written ({STUDENT}/, {INSTRUCTOR}/, {PAGE}).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
