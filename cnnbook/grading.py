"""Grade a folder of submitted student editions: ``python -m cnnbook.grading SUBMISSIONS``.

Writes ``grades.csv`` and ``grades.md``: one row a student, one column a checked exercise (✓ or ✗ with
the check's one-line reason), and a total. Each submission's answers are checked again here -- what the
notebook printed is never read -- and the chapter's network is never trained: from the submission's
code cells the grader runs only

- the imports (first, whatever cell they are in) and the function and class definitions,
- the statements that set an exercise's answer (``answer_3 = ...``, ``class Block``, ``def my_vgg_block``),
  wherever they are, in the notebook's order (the last one wins, as with *Run all*),
- in the exercise cell (the one that calls ``check``), every other statement but bare expressions
  (prints, checks): the helpers an answer is computed from.

The exercises are read from the book's chapter (``chapters/``): the one ``--chapter`` names, or else the
one most submissions are the student edition of (their metadata says); a submission that is another
chapter's edition is marked ✗ on every exercise as the wrong notebook.

Each submission runs in a process of its own, forked from this one once torch is imported (so each
costs milliseconds to start, not torch's seconds): a fresh temporary working directory, its output
thrown away, a time limit per statement and per check (an alarm, then a kill), a limit on the memory
it may add (``RLIMIT_AS``) and on the files it writes (``RLIMIT_FSIZE``). A statement or check that
fails, loops, runs out of memory or ends the process makes its exercise ✗ with the reason; the rest
of the row, and the other rows, go on. Plain answers (numbers, text, lists of them) come back as JSON
and are checked by this process; a coding exercise's check runs in the submission's process.

It is not a sandbox: student code runs on the teacher's machine with the teacher's rights (it can read
files, use the network, write outside its folder) -- see the README.
"""
from __future__ import annotations

import argparse
import ast
import csv
import io
import json
import math
import os
import re
import resource
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path

from .editions import ROOT, chapter_paths, exercises_of

STEP_SECONDS = 2.0  # per statement and per check, then SIGALRM in the submission's process
GRACE_SECONDS = 2.0  # past that, this process kills it
MEMORY_MB = 2048  # what a submission may allocate beyond the imported torch
FILE_MB = 16  # the largest file it may write
RESTARTS = 8  # a killed submission is restarted without the culprit this many times at most


@dataclass
class Step:
    cell: int  # 1-based, among all the notebook's cells
    line: int
    code: object  # a code object
    binds: frozenset  # the answer variables it sets
    exercise_cell: bool


@dataclass
class Submission:
    name: str
    path: Path
    steps: list = field(default_factory=list)
    syntax_errors: list = field(default_factory=list)  # (cell, source, message)
    fatal: str = ""
    chapter: str = ""  # the chapter its metadata names (a student edition's), if any


@dataclass
class Outcome:
    ok: bool
    message: str

    def __str__(self) -> str:
        return ("✓ " if self.ok else "✗ ") + self.message


# --- reading a submission (here, never running it) --------------------------------------------


def _source(cell) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def _without_magics(source: str) -> str:
    try:
        from IPython.core.inputtransformer2 import TransformerManager

        return TransformerManager().transform_cell(source)
    except Exception:  # noqa: BLE001 - a cell IPython cannot read is parsed as it is
        return source


def _binds(stmt: ast.stmt, variables: set) -> frozenset:
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        names = {stmt.name}
    else:
        names = {n.id for n in ast.walk(stmt) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    return frozenset(names & variables)


def _edition_chapter(nb) -> str:
    """The chapter a student edition's metadata names ("09_resnet.ipynb"), or "" if none."""
    try:
        chapter = nb["metadata"]["cnnbook_edition"]["chapter"]
    except (KeyError, TypeError, IndexError):
        return ""
    return chapter if isinstance(chapter, str) else ""


def read_submission(path: Path, name: str, variables: set) -> Submission:
    """The statements of a submission the grader runs (see the module's docstring)."""
    sub = Submission(name, path)
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
        cells = nb["cells"]
        assert isinstance(cells, list) and all(isinstance(c, dict) for c in cells)
    except Exception as err:  # noqa: BLE001
        sub.fatal = f"not a readable notebook ({type(err).__name__}): hand in the .ipynb file itself"
        return sub
    sub.chapter = _edition_chapter(nb)
    imports, others = [], []
    for number, cell in enumerate(cells, 1):
        if cell.get("cell_type") != "code":
            continue
        source = _source(cell)
        try:
            tree = ast.parse(_without_magics(source))
        except (SyntaxError, ValueError, RecursionError, MemoryError) as err:
            where = f"line {err.lineno}: " if getattr(err, "lineno", None) else ""
            sub.syntax_errors.append((number, source, f"{where}{getattr(err, 'msg', None) or err}"))
            continue
        is_exercise = any(isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "check"
                          for n in ast.walk(tree))
        for stmt in tree.body:
            binds = _binds(stmt, variables)
            definition = isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
            if not (isinstance(stmt, (ast.Import, ast.ImportFrom)) or definition or binds
                    or (is_exercise and not isinstance(stmt, ast.Expr))):
                continue
            try:
                code = compile(ast.Module(body=[stmt], type_ignores=[]), f"<cell {number}>", "exec")
            except (SyntaxError, ValueError, RecursionError) as err:
                sub.syntax_errors.append((number, source, f"line {stmt.lineno}: {err}"))
                continue
            step = Step(number, stmt.lineno, code, binds, is_exercise)
            (imports if isinstance(stmt, (ast.Import, ast.ImportFrom)) else others).append(step)
    sub.steps = imports + others
    return sub


# --- the submission's own process -------------------------------------------------------------


class StepTimeout(BaseException):
    """Raised by the alarm in a statement or check that runs too long (not an Exception: a student's
    ``except Exception`` does not swallow it)."""


def _alarm(signum, frame):
    raise StepTimeout


def _plain(value, depth: int = 0):
    """A JSON form of a plain answer (None, bool, int, float, str, or a short list/tuple of them),
    or None for anything else (checked in the submission's process)."""
    if value is None or type(value) in (bool, int, float, str):
        return {"t": type(value).__name__, "v": value}
    if type(value) in (list, tuple) and depth < 2 and len(value) <= 20:
        items = [_plain(v, depth + 1) for v in value]
        if all(items):
            return {"t": type(value).__name__, "v": items}
    return None


def _unplain(form):
    kind, value = form["t"], form["v"]
    if kind in ("list", "tuple"):
        items = [_unplain(v) for v in value]
        return items if kind == "list" else tuple(items)
    return {"NoneType": lambda v: None, "bool": bool, "int": int, "float": float, "str": str}[kind](value)


PROC_STATUS = Path("/proc/self/status")


def _vm_bytes() -> int:
    """The address space this process maps, or 0 where it cannot be read (no /proc: macOS)."""
    try:
        for line in PROC_STATUS.read_text().splitlines():
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _failure(err: BaseException, limits: dict) -> str:
    if isinstance(err, StepTimeout):
        return f"ran past the time limit of {limits['step_seconds']:g} s (an infinite loop?)"
    text = str(err)
    if isinstance(err, MemoryError) or "allocate" in text:
        return f"ran out of memory (the grader allows {limits['memory_mb']:,} MB)"
    if isinstance(err, SystemExit):
        return "calls exit()"
    line = " ".join(text.split())
    line = line if len(line) <= 120 else line[:119] + "…"
    return f"raises {type(err).__name__}" + (f": {line}" if line else "")


def _child(sub: Submission, exercises: list, skip_steps: set, wanted: list, writer, workdir: str,
           close: list, limits: dict) -> None:
    """Runs in the forked process: the submission's statements, then its answers out through ``writer``."""
    os.setsid()  # its own process group: a kill reaches whatever it started
    for fd in close:
        try:
            os.close(fd)
        except OSError:
            pass
    os.chdir(workdir)
    os.environ.update(HOME=workdir, TMPDIR=workdir)
    out = os.open(os.path.join(workdir, "output.txt"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    os.dup2(out, 1)
    os.dup2(out, 2)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a file too large fails to write instead
    file_bytes = limits["file_mb"] << 20
    resource.setrlimit(resource.RLIMIT_FSIZE, (file_bytes, file_bytes))
    mapped = _vm_bytes()
    if mapped:  # unknown (no /proc): no limit, rather than one below what torch already maps
        memory = mapped + (limits["memory_mb"] << 20)
        try:
            resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        except (ValueError, OSError):
            pass
    signal.signal(signal.SIGALRM, _alarm)

    import cnnbook
    import torch
    from torch import nn

    from .exercises import check

    torch.set_num_threads(1)

    def send(message: dict) -> None:
        writer.send_bytes(json.dumps(message).encode())

    def timed(seconds: float):
        signal.setitimer(signal.ITIMER_REAL, seconds)

    namespace = {"__name__": "__main__", "torch": torch, "nn": nn, "math": math, "cnnbook": cnnbook}
    for index, step in enumerate(sub.steps):
        if index in skip_steps:  # it stopped an earlier process, or failed in one: its verdict is known
            continue
        send({"at": ["step", index]})
        try:
            timed(limits["step_seconds"])
            exec(step.code, namespace)  # noqa: S102 - the point of a grader
            timed(0)
        except BaseException as err:  # noqa: BLE001 - whatever it is, it is the student's
            timed(0)
            send({"step": index, "error": _failure(err, limits)})
    for ex in exercises:
        if ex["name"] not in wanted:
            continue
        value = namespace.get(ex["variable"])
        form = _plain(value)
        if form is not None:
            try:
                text = json.dumps({"answer": ex["name"], "value": form})
            except (ValueError, TypeError):
                text = ""
            if 0 < len(text) <= 20_000:
                writer.send_bytes(text.encode())
                continue
        send({"at": ["check", ex["name"]]})
        try:
            timed(limits["step_seconds"])
            result = check(ex["name"], value)
            timed(0)
            send({"answer": ex["name"], "ok": bool(result.ok), "message": str(result.message)[:400]})
        except BaseException as err:  # noqa: BLE001
            timed(0)
            send({"answer": ex["name"], "ok": False, "message": "its check " + _failure(err, limits)})
    send({"done": True})
    os._exit(0)


# --- running the submissions, a few at a time -------------------------------------------------


@dataclass
class Run:
    sub: Submission
    exercises: list
    step_errors: dict = field(default_factory=dict)  # step index => reason
    results: dict = field(default_factory=dict)  # exercise name => Outcome
    skip: set = field(default_factory=set)
    restarts: int = 0
    started: float = 0.0
    seconds: float = 0.0
    # the process in flight
    proc: object = None
    reader: object = None
    workdir: str = ""
    at: list | None = None
    deadline: float = 0.0
    done: bool = False
    killed: bool = False

    def wanted(self) -> list:
        bound = {v for step in self.sub.steps for v in step.binds}
        return [ex["name"] for ex in self.exercises
                if ex["name"] not in self.results and ex["variable"] in bound]


def _start(run: Run, ctx, limits: dict, others: list) -> None:
    reader, writer = ctx.Pipe(duplex=False)
    run.workdir = tempfile.mkdtemp(prefix="cnnbook-grade-")
    run.at, run.done = None, False
    close = [reader.fileno(), *(o.reader.fileno() for o in others if o.reader is not None)]
    run.proc = ctx.Process(target=_child, daemon=True,
                           args=(run.sub, run.exercises, run.skip | set(run.step_errors), run.wanted(), writer, run.workdir,
                                 close, limits))
    run.proc.start()
    writer.close()
    run.reader = reader
    run.deadline = time.monotonic() + 10 + limits["step_seconds"]  # time to fork and set up


def _receive(run: Run, limits: dict) -> None:
    from .exercises import check

    while run.reader is not None:
        try:
            if not run.reader.poll():
                return
            message = json.loads(run.reader.recv_bytes(100_000))
        except (EOFError, OSError):
            return
        except Exception:  # noqa: BLE001 - garbage on the pipe is ignored
            continue
        if not isinstance(message, dict):
            continue
        if "at" in message:
            run.at = message["at"]
            run.deadline = time.monotonic() + limits["step_seconds"] + limits["grace_seconds"]
        elif "step" in message and message["step"] not in run.step_errors:
            run.step_errors[message["step"]] = str(message.get("error", "failed"))
        elif message.get("answer") in {ex["name"] for ex in run.exercises}:
            name = message["answer"]
            if "value" in message:
                try:
                    result = check(name, _unplain(message["value"]))
                    run.results[name] = Outcome(result.ok, result.message)
                except Exception:  # noqa: BLE001
                    run.results[name] = Outcome(False, "the answer could not be read back")
            else:
                run.results[name] = Outcome(bool(message.get("ok")), str(message.get("message", "")))
        elif message.get("done"):
            run.done = True


def _stop(run: Run) -> None:
    try:
        os.killpg(run.proc.pid, signal.SIGKILL)
    except OSError:
        run.proc.kill()


def _end(run: Run, limits: dict) -> bool:
    """The process has ended: True if the submission is finished, False if it is to be restarted."""
    run.proc.join()
    _receive(run, limits)
    run.reader.close()
    run.reader = None
    shutil.rmtree(run.workdir, ignore_errors=True)
    if run.done:
        return True
    code = run.proc.exitcode
    if run.at is None:
        reason = f"the grader's process for it ended at once (exit code {code})"
    elif code == -signal.SIGKILL and run.killed:
        reason = (f"ran past the time limit of {limits['step_seconds']:g} s and was stopped "
                  f"(an infinite loop?)")
    else:
        reason = f"ended the grader's process (exit code {code}: os._exit, a crash, or out of memory)"
    if run.at is None or run.restarts >= RESTARTS:
        for name in run.wanted():
            run.results[name] = Outcome(False, f"not graded: {reason}")
        return True
    kind, what = run.at
    if kind == "step":
        run.skip.add(what)
        run.step_errors[what] = reason
    else:
        run.results[what] = Outcome(False, f"its check {reason}")
    run.restarts += 1
    return False


def grade(submissions: list[Submission], exercises: list, jobs: int = 2, limits: dict | None = None) -> None:
    """Grade every submission (fills each one's ``run``), ``jobs`` processes at a time."""
    import multiprocessing
    from multiprocessing.connection import wait

    import cnnbook  # noqa: F401 - imported once here, so that each forked process has it at no cost
    import torch

    from . import exercises as _  # noqa: F401

    torch.set_num_threads(1)
    limits = {"step_seconds": STEP_SECONDS, "grace_seconds": GRACE_SECONDS, "memory_mb": MEMORY_MB,
              "file_mb": FILE_MB, **(limits or {})}
    ctx = multiprocessing.get_context("fork")
    jobs = max(1, int(jobs))  # 0 or less started nothing and waited for ever
    pending = deque()
    for sub in submissions:
        sub.run = Run(sub, exercises)
        if not sub.fatal and sub.run.wanted():
            pending.append(sub.run)
    running: list[Run] = []
    while pending or running:
        while pending and len(running) < jobs:
            run = pending.popleft()
            run.started = run.started or time.monotonic()
            run.killed = False
            _start(run, ctx, limits, running)
            running.append(run)
        wait([r.reader for r in running] + [r.proc.sentinel for r in running], timeout=0.2)
        for run in list(running):
            _receive(run, limits)
            if run.proc.is_alive() and time.monotonic() > run.deadline:
                run.killed = True
                _stop(run)
            if not run.proc.is_alive():
                running.remove(run)
                if _end(run, limits):
                    run.seconds = time.monotonic() - run.started
                else:
                    run.killed = False
                    _start(run, ctx, limits, running)
                    running.append(run)


# --- the verdicts and the table ---------------------------------------------------------------


def verdicts(sub: Submission, exercises: list) -> list[Outcome]:
    """One Outcome per exercise, with the reason a teacher reads."""
    run = getattr(sub, "run", None)
    out = []
    for ex in exercises:
        variable = ex["variable"]
        if sub.fatal:
            out.append(Outcome(False, sub.fatal))
            continue
        binding = [(i, s) for i, s in enumerate(sub.steps) if variable in s.binds]
        if not binding:
            broken = [(cell, msg) for cell, source, msg in sub.syntax_errors
                      if re.search(rf"\b{re.escape(variable)}\b", source)]
            if broken:
                cell, msg = broken[-1]
                out.append(Outcome(False, f"the cell that sets {variable} (cell {cell}) has a syntax error, "
                                          f"{msg}"))
            else:
                out.append(Outcome(False, f"no answer: no cell sets {variable} (the exercise cell deleted?)"))
            continue
        index, last = binding[-1]
        where = f"cell {last.cell}, line {last.line}"
        if index in run.step_errors:
            out.append(Outcome(False, f"{run.step_errors[index]} ({where})"))
            continue
        result = run.results.get(ex["name"], Outcome(False, "not graded"))
        message = result.message
        if not last.exercise_cell:
            message += f" [set in cell {last.cell}, outside the exercise cell]"
        elif message.startswith("No answer yet") and any(s.cell != last.cell for _, s in binding[:-1]):
            earlier = next(s.cell for _, s in binding[:-1] if s.cell != last.cell)
            message += f" [cell {earlier} sets it too, but the exercise cell, run after it, sets it to None]"
        out.append(Outcome(result.ok, message))
    return out


def table(submissions: list[Submission], exercises: list) -> list[list[str]]:
    """The grades as rows of text: a header, then one row a student."""
    rows = [["student", *(f"{ex['number']}. {ex['name']}" for ex in exercises), "total"]]
    for sub in submissions:
        outcomes = verdicts(sub, exercises)
        rows.append([sub.name, *map(str, outcomes), f"{sum(o.ok for o in outcomes)}/{len(outcomes)}"])
    return rows


def markdown(rows: list[list[str]], exercises: list, chapter: str, seconds: float) -> str:
    def cell(text: str) -> str:
        text = text.replace("|", "\\|").replace("\n", " ")
        return "✓" if text.startswith("✓") else text

    n = len(rows) - 1
    lines = [f"# Grades: {chapter}", "",
             f"{n} submission{'s' * (n != 1)}, graded in {seconds:.1f} s. ✗ says why; the CSV also has "
             f"each ✓'s worked answer. Columns: "
             + "; ".join(f"**{ex['number']}** `{ex['name']}` ({ex['what']})" for ex in exercises) + ".", "",
             "| student | " + " | ".join(str(ex["number"]) for ex in exercises) + " | total |",
             "|---" * (len(exercises) + 2) + "|"]
    lines += ["| " + " | ".join([cell(r[0]), *map(cell, r[1:-1]), r[-1]]) + " |" for r in rows[1:]]
    return "\n".join(lines) + "\n"


# --- the command -------------------------------------------------------------------------------


def _chapter_names() -> set[str]:
    return {p.name for p in chapter_paths()}


def find_reference(chapter: str) -> Path:
    """The book's chapter ``chapter`` names (09_resnet, 09_resnet.ipynb, resnet); a notebook path only
    if no chapter has that name -- never a file of the current folder that happens to share a chapter's
    name (a student's submission, downloaded as 09_resnet.ipynb)."""
    folder = ROOT / "chapters"
    if chapter and "/" not in chapter and os.sep not in chapter and ".." not in chapter:
        for candidate in (folder / chapter, folder / f"{chapter}.ipynb"):
            if candidate.is_file():
                return candidate
        matches = [p for p in chapter_paths() if chapter in p.name]
        if len(matches) == 1:
            return matches[0]
    if chapter and Path(chapter).suffix == ".ipynb" and Path(chapter).is_file():
        return Path(chapter).resolve()  # a path to a chapter, or a notebook of the teacher's own
    raise SystemExit(f"No chapter {chapter!r}: give its file name, e.g. 09_resnet.")


def detect_chapter(paths: list[Path]) -> str:
    """The chapter most submissions are the student edition of (their metadata says), if more than half
    of those that name one agree: a student who hands in another chapter's edition is graded ✗ for it
    instead of stopping the class's grading."""
    names, known = Counter(), _chapter_names()
    for path in paths:
        try:
            chapter = _edition_chapter(json.loads(path.read_text(encoding="utf-8")))
        except Exception:  # noqa: BLE001
            continue
        if chapter in known:
            names[chapter] += 1
    ranked = names.most_common()
    if not ranked or 2 * ranked[0][1] <= sum(names.values()):
        found = ", ".join(f"{name} ({count})" for name, count in ranked) or "none"
        raise SystemExit(f"Which chapter? The submissions name {found}: pass --chapter, e.g. 09_resnet.")
    return ranked[0][0]


def notebooks(folder: Path) -> list[tuple[str, Path]]:
    paths = sorted(p for p in folder.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
    return [(p.relative_to(folder).with_suffix("").as_posix(), p) for p in paths]


def grade_folder(folder: Path, chapter: str | None = None, out: Path | None = None, jobs: int = 2,
                 limits: dict | None = None) -> tuple[list[list[str]], float]:
    """Grade every notebook under ``folder``; write grades.csv and grades.md into ``out`` (the folder)."""
    import nbformat

    start = time.monotonic()
    found = notebooks(folder)
    if not found:
        raise SystemExit(f"No notebooks in {folder}.")
    reference = find_reference(chapter or detect_chapter([p for _, p in found]))
    exercises = exercises_of(nbformat.read(reference, as_version=4))
    if not exercises:
        raise SystemExit(f"{reference.name} has no checked exercises to grade.")
    variables = {ex["variable"] for ex in exercises}
    submissions = [read_submission(path, name, variables) for name, path in found]
    if reference.parent == ROOT / "chapters":
        known = _chapter_names()
        for sub in submissions:
            if not sub.fatal and sub.chapter in known and sub.chapter != reference.name:
                sub.fatal = (f"this is the student edition of {sub.chapter}, not of {reference.name}: "
                             f"the wrong notebook handed in?")
    grade(submissions, exercises, jobs, limits)
    rows = table(submissions, exercises)
    seconds = time.monotonic() - start
    out = out or folder
    out.mkdir(parents=True, exist_ok=True)
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    (out / "grades.csv").write_text(buffer.getvalue(), encoding="utf-8")
    (out / "grades.md").write_text(markdown(rows, exercises, reference.stem, seconds), encoding="utf-8")
    for sub in submissions:
        sub.seconds = getattr(getattr(sub, "run", None), "seconds", 0.0)
    return rows, seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cnnbook.grading",
                                     description="Grade a folder of submitted student editions.")
    parser.add_argument("folder", type=Path, help="the submitted notebooks (*.ipynb, in subfolders too)")
    parser.add_argument("--chapter", help="e.g. 09_resnet (default: read from the submissions)")
    parser.add_argument("--out", type=Path, help="where to write grades.csv and grades.md (default: the folder)")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--seconds", type=float, default=STEP_SECONDS, help="limit per statement and check")
    parser.add_argument("--memory-mb", type=int, default=MEMORY_MB, help="memory a submission may add")
    args = parser.parse_args(argv)
    rows, seconds = grade_folder(args.folder, args.chapter, args.out, args.jobs,
                                 {"step_seconds": args.seconds, "memory_mb": args.memory_mb})
    out = args.out or args.folder
    print(f"{len(rows) - 1} submissions graded in {seconds:.1f} s: {out / 'grades.csv'}, {out / 'grades.md'}")
    for row in rows[1:]:
        print(f"  {row[0]}: {row[-1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
