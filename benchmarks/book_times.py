"""How long the whole book takes on this machine, in bfloat16 and in float32.

    python benchmarks/book_times.py                       # both precisions, every chapter (~45 min on 2 cores)
    python benchmarks/book_times.py --precisions fp32     # one of them
    python benchmarks/book_times.py --chapters chapters/03_lenet.ipynb --precisions fp32 bf16
    python benchmarks/book_times.py --precisions bf16 --committed fp32   # after make execute (fp32)
    make book-times                                       # the same as the first line

Each chapter is executed whole, in the ``cpu`` profile, one at a time, with ``CNNBOOK_PRECISION`` forcing
the precision of every training run (on a CPU without native bfloat16, bf16 is emulated: slow, and said
so). The executed copies and their records go to a temporary folder: the committed notebooks, records and
weights are never touched. Prints the table (chapter, bf16 s, fp32 s, test accuracy in each) and writes
``benchmarks/results/book-times-cpu.json`` and ``.md``; a rerun replaces the precisions it ran and keeps
the others when they were measured on the same processor.

``--committed PRECISION`` fills that precision's column from the committed execution instead of running it
again (``make execute`` already timed every chapter alone: ``cnnbook/chapter_times.json`` and the records in
``results/``), for the chapters whose committed notebooks ran in it; ``make execute`` then this script with
``--precisions bf16 --committed fp32`` gives both columns for the cost of one more run of the book.

``--update-chapter-times`` also writes the measured times into ``cnnbook/chapter_times.json`` for the
precisions the committed notebooks did not run in (their own precision's time is the committed
execution's, written by ``make execute``). Close other programs first: on 2 cores, anything else running
slows the chapters down.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cnnbook import book  # noqa: E402
from cnnbook.profiles import CHAPTER_TIMES, cpu_model  # noqa: E402
from cnnbook.results import load_result, write_json_atomically  # noqa: E402
from cnnbook.train import cpu_has_bf16  # noqa: E402

OUT = ROOT / "benchmarks" / "results" / "book-times-cpu"
PRECISIONS = ("bf16", "fp32")
GOAL_CHAPTER_S = 180  # each architecture chapter, fp32, 2 cores (issue 25)
GOAL_BOOK_S = 25 * 60  # the whole book, fp32


def commit() -> str:
    """The checkout's commit, with "+changes" when the working tree differs from it."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, check=True).stdout.strip()
        changed = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                                 capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+changes" if changed else "")


def run_precision(precision: str, notebooks: list[Path]) -> dict[str, dict]:
    """Execute ``notebooks`` in order in ``precision``; returns {notebook: {seconds, test_acc, ...}}."""
    rows = {}
    with tempfile.TemporaryDirectory(prefix=f"cnnbook-book-times-{precision}-") as scratch:
        results = Path(scratch) / "results"
        results.mkdir()
        for kept in ("gpu", "exercises"):  # what chapter 11 and the solutions read besides the cpu records
            if (ROOT / "results" / kept).is_dir():
                shutil.copytree(ROOT / "results" / kept, results / kept)
        with book.environment(CNNBOOK_PRECISION=precision, CNNBOOK_RESULTS=str(results)):
            for path in notebooks:
                print(f"  {precision}: {path.name} ...", end=" ", flush=True)
                start = time.perf_counter()
                try:
                    seconds = book.execute(path, "cpu", output=Path(scratch) / path.name)
                    status = "ok"
                except Exception as err:  # noqa: BLE001 - one failed chapter must not stop the table
                    seconds, status = time.perf_counter() - start, f"failed: {type(err).__name__}"
                chapter = book.chapter_key(path)
                record = load_result(chapter, results) if chapter in book.NETWORKS else None
                rows[path.name] = dict(
                    chapter=chapter, seconds=round(seconds, 1), status=status,
                    test_acc=record.test_acc if record else None, val_acc=record.val_acc if record else None,
                    num_epochs=record.num_epochs if record else None,
                    precision=record.precision if record else precision)
                print(f"{seconds:.0f} s" + (f", test {record.test_acc:.4f}" if record else "") +
                      ("" if status == "ok" else f" ({status})"), flush=True)
    return rows


def committed_run(precision: str, notebooks: list[Path]) -> dict[str, dict]:
    """The rows of ``precision`` from the committed execution: the chapters' times in chapter_times.json
    (this processor only) and their records in results/; a chapter executed in another precision, or on
    another processor, is left out."""
    import nbformat

    from cnnbook.profiles import chapter_times

    times, processor, rows = chapter_times(), cpu_model(), {}
    for path in notebooks:
        meta = nbformat.read(path, as_version=4).metadata.get("cnnbook", {})
        entry = times.get(path.name, {})
        seconds = entry.get("seconds", {}).get(precision)
        if meta.get("precision") != precision or entry.get("processor") != processor or seconds is None:
            print(f"  {precision}: {path.name}: not executed in {precision} on this processor, left out")
            continue
        chapter = book.chapter_key(path)
        record = load_result(chapter) if chapter in book.NETWORKS else None
        rows[path.name] = dict(
            chapter=chapter, seconds=seconds, status="ok", source="committed execution (make execute)",
            test_acc=record.test_acc if record else None, val_acc=record.val_acc if record else None,
            num_epochs=record.num_epochs if record else None, precision=precision)
    return rows


def table(report: dict) -> str:
    native = report["native_bf16"]
    runs = report["runs"]
    names = sorted({name for run in runs.values() for name in run["chapters"]})
    lines = [f"**{report['processor']}**, {report['threads']} threads, native bfloat16: "
             f"{'yes' if native else 'no (bf16 is emulated)'}; torch {report['torch']}. "
             + "; ".join(f"{p}: commit {runs[p]['commit']}, {runs[p]['created']}"
                         + (f" ({runs[p]['source']})" if runs[p].get("source") else "")
                         for p in PRECISIONS if p in runs)
             + ".", "",
             "| chapter | bf16 s | fp32 s | test acc. bf16 | test acc. fp32 | fp32 within 180 s |",
             "|---|--:|--:|--:|--:|:-:|"]

    def cell(p, name, key, fmt):
        value = runs.get(p, {}).get("chapters", {}).get(name, {}).get(key)
        return "–" if value is None else format(value, fmt)

    for name in names:
        fp32 = runs.get("fp32", {}).get("chapters", {}).get(name)
        is_network = fp32 and fp32.get("chapter") in book.NETWORKS
        within = ("–" if not fp32 or not is_network else "✓" if fp32["seconds"] <= GOAL_CHAPTER_S else "✗")
        lines.append(f"| {name.removesuffix('.ipynb')} | {cell('bf16', name, 'seconds', '.0f')} | "
                     f"{cell('fp32', name, 'seconds', '.0f')} | {cell('bf16', name, 'test_acc', '.4f')} | "
                     f"{cell('fp32', name, 'test_acc', '.4f')} | {within} |")
    totals = {p: sum(r["seconds"] for r in runs[p]["chapters"].values()) for p in runs}
    counts = {p: len(runs[p]["chapters"]) for p in runs}
    # a column that misses chapters has no whole-book time: its sum says how many it covers
    shown = {p: "–" if p not in totals else f"**{totals[p] / 60:.1f} min**" if counts[p] == len(names)
             else f"{totals[p] / 60:.1f} min ({counts[p]} of {len(names)} chapters)" for p in PRECISIONS}
    book_ok = ("✓" if totals["fp32"] <= GOAL_BOOK_S else "✗") if counts.get("fp32") == len(names) else "–"
    lines.append(f"| whole book ({len(names)}) | {shown['bf16']} | {shown['fp32']} | | | "
                 f"{book_ok} (≤ 25 min) |")
    lines += ["", "Whole-notebook times, one chapter at a time, `cpu` profile, `CNNBOOK_PRECISION` forcing each "
              "column's arithmetic; test accuracy from each run's record. The same run varies by about "
              "±15 % on a shared machine."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--precisions", nargs="*", choices=PRECISIONS, default=list(PRECISIONS),
                        help="the precisions to run the book in (none, with --committed: only refresh that "
                             "column from the committed execution)")
    parser.add_argument("--chapters", nargs="+", type=Path,
                        default=sorted((ROOT / "chapters").glob("[0-9]*.ipynb")))
    parser.add_argument("--committed", choices=PRECISIONS,
                        help="fill this precision's column from the committed execution (make execute's "
                             "times and records) instead of running the book in it again")
    parser.add_argument("--update-chapter-times", action="store_true",
                        help="write the times of the precisions the committed notebooks did not run in "
                             "into cnnbook/chapter_times.json")
    args = parser.parse_args(argv)
    notebooks = [p.resolve() for p in args.chapters]
    missing = [str(p) for p in notebooks if not p.is_file()]
    if missing:
        parser.error(f"no such notebook: {', '.join(missing)} (give paths like chapters/03_lenet.ipynb)")

    processor = cpu_model()
    previous = json.loads(OUT.with_suffix(".json").read_text()) if OUT.with_suffix(".json").is_file() else {}
    runs = previous.get("runs", {}) if previous.get("processor") == processor else {}
    print(f"{processor}, {torch.get_num_threads()} threads, native bfloat16: {cpu_has_bf16()}")
    if not args.precisions and not args.committed:
        parser.error("nothing to do: give --precisions, --committed or both")
    if args.committed in args.precisions:
        parser.error(f"--committed {args.committed} reads that precision from the committed execution: "
                     f"leave it out of --precisions")
    for precision in args.precisions + ([args.committed] if args.committed else []):
        chapters = (committed_run(precision, notebooks) if precision == args.committed
                    else run_precision(precision, notebooks))
        every = sorted(p.resolve() for p in (ROOT / "chapters").glob("[0-9]*.ipynb"))
        partial = sorted(notebooks) != every  # a few chapters re-timed: keep the others' rows
        kept = runs.get(precision, {}).get("chapters", {}) if partial else {}
        runs[precision] = dict(commit=commit(), created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                               chapters={**kept, **chapters},
                               **({"source": "committed execution (make execute)"}
                                  if precision == args.committed else {}))
    report = dict(processor=processor, native_bf16=cpu_has_bf16(), threads=torch.get_num_threads(),
                  torch=torch.__version__, runs=runs)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomically(OUT.with_suffix(".json"), report)
    text = table(report)
    OUT.with_suffix(".md").write_text(text, encoding="utf-8")
    print()
    print(text)
    if args.update_chapter_times:
        import nbformat

        for precision in args.precisions:
            for name, row in runs[precision]["chapters"].items():
                path = ROOT / "chapters" / name
                committed = nbformat.read(path, as_version=4).metadata.get("cnnbook", {}).get("precision")
                if row["status"] == "ok" and committed != precision:
                    book.record_chapter_time(path, row["seconds"], f"CPU ({report['threads']} threads)",
                                             precision)
        print(f"Wrote {Path(CHAPTER_TIMES).relative_to(ROOT)} (the precisions the committed notebooks did not "
              f"run in).")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
