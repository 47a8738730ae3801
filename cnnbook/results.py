"""Results records: one JSON file per trained chapter, read by the comparison chapter and the landing page."""
from __future__ import annotations

import json
import os
import platform
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Result:
    """What a training run did and how well: JSON-serialisable, written to ``results/``."""

    chapter: str
    architecture: str
    profile: str
    device: str  # "cpu", "cuda", "mps"
    device_name: str  # e.g. "NVIDIA T4" or the CPU's model and threads
    num_epochs: int  # epochs finished
    parameters: int
    macs: int  # multiply-accumulates of one forward pass of one image
    input_size: tuple[int, ...]
    test_acc: float
    train_acc: float
    train_loss: float
    wall_time_s: float  # training time, evaluation included
    examples_per_s: float  # training examples per second of training (data preparation included)
    status: str = "finished"  # "finished", "interrupted" or "diverged"
    history: list[dict[str, float]] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    created: str = ""

    def summary(self) -> str:
        """One line: test accuracy, speed, device and wall time."""
        minutes, seconds = divmod(round(self.wall_time_s), 60)
        return (
            f"{self.architecture}: test accuracy {self.test_acc:.4f} after {plural(self.num_epochs, 'epoch')} · "
            f"{self.examples_per_s:,.0f} examples/s · {self.device_name} · {minutes} min {seconds:02d} s"
            + ("" if self.status == "finished" else f" · {self.status}")
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def save(self, directory: str | os.PathLike | None = None) -> Path:
        """Write ``<directory>/<chapter>.json`` (default directory: :func:`results_dir`)."""
        directory = Path(directory) if directory else results_dir()
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{self.chapter}.json"
        path.write_text(json.dumps(self.to_dict(), indent=1) + "\n")
        return path


def plural(n: int, word: str) -> str:
    """``1 epoch``, ``2 epochs``."""
    return f"{n} {word}{'' if n == 1 else 's'}"


def results_dir() -> Path:
    """``$CNNBOOK_RESULTS``, else the book's ``results/`` folder when run inside the book, else ``./results``."""
    if os.environ.get("CNNBOOK_RESULTS"):
        return Path(os.environ["CNNBOOK_RESULTS"])
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / "_toc.yml").is_file():
            return folder / "results"
    return here / "results"


def load_results(directory: str | os.PathLike | None = None) -> list[Result]:
    """Every record in the results folder, sorted by file name."""
    directory = Path(directory) if directory else results_dir()
    records = []
    for path in sorted(directory.glob("*.json")):
        values = json.loads(path.read_text())
        values["input_size"] = tuple(values["input_size"])
        records.append(Result(**values))
    return records


def in_book_order(records: list[Result]) -> list[Result]:
    """The records sorted by chapter, in the order of the book (the profile table's order)."""
    from .profiles import chapters

    order = {name: i for i, name in enumerate(chapters())}
    return sorted(records, key=lambda r: (order.get(r.chapter, len(order)), r.chapter))


def main_profile(records: list[Result]) -> str | None:
    """The profile most records come from (rows from any other profile are not comparable with them)."""
    profiles = [r.profile for r in records]
    return max(set(profiles), key=lambda p: (profiles.count(p), p == "cpu")) if profiles else None


TABLE_COLUMNS = ("network", "parameters", "MACs / image", "test accuracy", "training time", "examples/s",
                 "epochs", "profile", "device")


def table_rows(records: list[Result]) -> list[tuple[str, ...]]:
    """One row of strings per record, in book order, for the results tables of the site and the comparison
    chapter. A row from another profile than most rows is marked with † after its profile."""
    main = main_profile(records)
    return [(r.architecture, f"{r.parameters:,}", f"{r.macs / 1e6:,.1f} M", f"{r.test_acc:.2%}",
             f"{r.wall_time_s / 60:.1f} min", f"{r.examples_per_s:,.0f}", str(r.num_epochs),
             r.profile + (" †" if r.profile != main else ""), r.device_name)
            for r in in_book_order(records)]


def markdown_table(records: list[Result]) -> str:
    """The results table in Markdown, with a note under it when rows come from different profiles."""
    lines = ["| " + " | ".join(TABLE_COLUMNS) + " |", "|" + "---|" * len(TABLE_COLUMNS)]
    lines += ["| " + " | ".join(row) + " |" for row in table_rows(records)]
    others = sorted({r.profile for r in records} - {main_profile(records)})
    if others:
        lines += ["", f"† from the {', '.join(others)} profile, the others from the {main_profile(records)} "
                      "profile: different data sizes, networks and epochs, not comparable row by row."]
    return "\n".join(lines)


def versions() -> dict[str, str]:
    """Versions of Python and the libraries a run depends on."""
    import numpy
    import torch

    from . import __version__

    found = {"python": platform.python_version(), "torch": torch.__version__, "numpy": numpy.__version__,
             "cnnbook": __version__}
    try:
        import torchvision

        found["torchvision"] = torchvision.__version__
    except ImportError:
        pass
    return found
