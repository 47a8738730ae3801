"""Results records: one JSON file per trained chapter, read by the comparison chapter and the landing page."""
from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
import platform
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Result:
    """What a training run did and how well: JSON-serialisable, written to ``results/``.

    The test set is evaluated once, at the end of a chapter's run; experiment trials are compared on the
    validation split and leave ``test_acc`` None.
    """

    chapter: str
    architecture: str
    profile: str
    device: str  # "cpu", "cuda", "mps"
    device_name: str  # e.g. "NVIDIA T4" or the CPU's model and threads
    num_epochs: int  # epochs finished
    parameters: int
    macs: int  # multiply-accumulates of one forward pass of one image
    input_size: tuple[int, ...]
    test_acc: float | None  # None: the test set was not evaluated (an experiment's trial)
    train_acc: float
    train_loss: float | None
    wall_time_s: float  # training time, evaluation included
    examples_per_s: float  # training examples per second of training (data preparation included)
    status: str = "finished"  # "finished", "interrupted" or "diverged"
    history: list[dict[str, float]] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    created: str = ""
    val_acc: float | None = None  # accuracy on the validation split after the last epoch
    test_acc_se: float | None = None  # standard error of test_acc: sqrt(p (1 - p) / n)
    test_size: int | None = None  # number of test images
    per_class_acc: list[float] | None = None  # test accuracy of each class
    confusion: list[list[int]] | None = None  # test counts [true class][predicted class]
    precision: str = "fp32"  # the arithmetic of training and evaluation: "fp32", "bf16" (CPU) or "fp16" (CUDA)
    learned: bool = True  # False when the run ended near chance level
    weights_sha256: str | None = None  # SHA-256 of the shipped weights saved from this run
    tta: bool = False  # evaluated with flip test-time augmentation (chapter 12)
    sides: list[int] | None = None  # the training images' side in each epoch, where it changed (chapter 12)

    @property
    def finished(self) -> bool:
        return self.status == "finished" and self.num_epochs > 0

    def summary(self) -> str:
        """One line: test (or validation) accuracy, speed, device and wall time."""
        minutes, seconds = divmod(round(self.wall_time_s), 60)
        if self.test_acc is not None:
            acc = f"test accuracy {self.test_acc:.4f}"
            if self.test_acc_se:
                acc += f" ± {self.test_acc_se:.4f}"
        elif self.val_acc is not None:
            acc = f"validation accuracy {self.val_acc:.4f}"
        else:
            acc = "no accuracy"
        return (
            f"{self.architecture}: {acc} after {plural(self.num_epochs, 'epoch')} · "
            f"{self.examples_per_s:,.0f} images/s · {self.precision} · {self.device_name} · "
            f"{minutes} min {seconds:02d} s" + ("" if self.status == "finished" else f" · {self.status}")
        )

    def to_dict(self) -> dict[str, Any]:
        return _json_safe(asdict(self))

    def save(self, directory: str | os.PathLike | None = None) -> Path | None:
        """Write ``<directory>/<chapter>.json`` atomically (default directory: :func:`profile_dir` of the
        record's profile: the book's ``cpu`` records in ``results/``, the others in ``results/gpu/``,
        ``results/smoke/``).

        A run that did not finish (interrupted, diverged, or no epoch done) never replaces a record:
        it is not saved, and one line says so. Returns the path written, or None.
        """
        if directory is None:  # only a cpu run replaces one of the book's records
            directory = profile_dir(self.profile)
        path = Path(directory) / f"{self.chapter}.json"
        if not self.finished:
            kept = "the finished record in it is kept" if path.exists() else "nothing was written"
            print(f"Not saved: this run is {self.status} after {plural(self.num_epochs, 'epoch')}, so "
                  f"{path.name} is left as it was ({kept}). Run the training cell again to finish it.")
            return None
        write_json_atomically(path, self.to_dict())
        return path

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "Result":
        known = {f for f in cls.__dataclass_fields__}
        values = {k: v for k, v in values.items() if k in known}
        values["input_size"] = tuple(values.get("input_size", ()))
        return cls(**values)


def _json_safe(value):
    """NaN and infinities become None: the file stays valid JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def write_json_atomically(path: Path, values: Any) -> None:
    """Write JSON to a temporary file beside ``path``, then rename it: a reader never sees half a file."""
    write_text_atomically(path, json.dumps(_json_safe(values), indent=1, allow_nan=False) + "\n")


def write_text_atomically(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path``, then rename it: a reader never sees half a
    file, and an interrupted write leaves the old file as it was."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def standard_error(p: float, n: int) -> float:
    """The standard error of an accuracy p measured on n images: sqrt(p (1 - p) / n)."""
    return math.sqrt(p * (1 - p) / n) if n else float("nan")


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


def profile_dir(profile: str) -> Path:
    """Where ``profile``'s records are kept: the book's own (``cpu``) in :func:`results_dir`, every other
    profile's in a subfolder of its own (``gpu/``, ``smoke/``), so a quick check or a run on other hardware
    never replaces a record of the book."""
    return results_dir() if profile == "cpu" else results_dir() / profile


def load_results(directory: str | os.PathLike | None = None) -> list[Result]:
    """Every finished record in the results folder, sorted by file name."""
    directory = Path(directory) if directory else results_dir()
    records = []
    for path in sorted(directory.glob("*.json")):
        try:
            result = Result.from_dict(json.loads(path.read_text()))
        except (ValueError, TypeError) as err:
            print(f"Skipped {path.name}: not a valid results record ({err}).")
            continue
        if result.finished:
            records.append(result)
    return records


def load_result(chapter: str, directory: str | os.PathLike | None = None) -> Result | None:
    """The finished record of ``chapter`` (e.g. ``"lenet"``) in this profile's results (:func:`profile_dir`),
    or None if it has none."""
    if directory is None:
        from .profiles import current_profile

        directory = profile_dir(current_profile())
    path = Path(directory) / f"{chapter}.json"
    if not path.is_file():
        return None
    try:
        result = Result.from_dict(json.loads(path.read_text()))
    except (ValueError, TypeError):
        return None
    return result if result.finished else None


def in_book_order(records: list[Result]) -> list[Result]:
    """The records sorted by chapter, in the order of the book (the profile table's order)."""
    from .profiles import chapters

    order = {name: i for i, name in enumerate(chapters())}
    return sorted(records, key=lambda r: (order.get(r.chapter, len(order)), r.chapter))


def main_profile(records: list[Result]) -> str | None:
    """The profile most records come from (rows from any other profile are not comparable with them)."""
    profiles = [r.profile for r in records]
    return max(set(profiles), key=lambda p: (profiles.count(p), p == "cpu")) if profiles else None


TABLE_COLUMNS = ("network", "test accuracy", "training time", "parameters", "MACs / image", "epochs",
                 "images/s", "precision", "profile", "device")


def accuracy_text(r: Result) -> str:
    """``92.41 % ± 0.27`` (points): the test accuracy and its standard error."""
    if r.test_acc is None:
        return "–"
    se = f" ± {100 * r.test_acc_se:.2f}" if r.test_acc_se else ""
    return f"{100 * r.test_acc:.2f} %{se}"


def table_rows(records: list[Result]) -> list[tuple[str, ...]]:
    """One row of strings per record, in book order, for the results tables of the site and the comparison
    chapter (columns: :data:`TABLE_COLUMNS`). A row from another profile than most rows is marked with †."""
    main = main_profile(records)
    return [(r.architecture, accuracy_text(r), f"{r.wall_time_s / 60:.1f} min", f"{r.parameters:,}",
             f"{r.macs / 1e6:,.1f} M", str(r.num_epochs), f"{r.examples_per_s:,.0f}", r.precision,
             r.profile + (" †" if r.profile != main else ""), r.device_name)
            for r in in_book_order(records)]


def markdown_table(records: list[Result]) -> str:
    """The results table in Markdown, with a note under it when rows come from different profiles.

    The profile and device columns are left out when every row shares them (said once under the table
    instead): with them, the table is wider than a desktop page's text column."""
    rows = table_rows(records)
    profile, device = TABLE_COLUMNS.index("profile"), TABLE_COLUMNS.index("device")
    shared = [i for i in (profile, device) if rows and len({row[i] for row in rows}) == 1]
    columns = [i for i in range(len(TABLE_COLUMNS)) if i not in shared]
    lines = ["| " + " | ".join(TABLE_COLUMNS[i] for i in columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(row[i] for i in columns) + " |" for row in rows]
    others = sorted({r.profile for r in records} - {main_profile(records)})
    if others:
        lines += ["", f"† from the {', '.join(others)} profile, the others from the {main_profile(records)} "
                      "profile: different data sizes, networks and epochs, not comparable row by row."]
    if shared:
        said = {profile: f"the `{rows[0][profile]}` profile", device: f"on {rows[0][device]}"}
        lines += ["", "Every row: " + " ".join(said[i] for i in shared) + "."]
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


def within_noise(a: float, se_a: float, b: float, se_b: float, z: float = 2.0) -> bool:
    """The book's one rule for a tie: two accuracies (or two of anything with standard errors) differ
    beyond noise only by at least twice the standard error of their difference, 2·√(se_a² + se_b²).
    ``z`` replaces the 2 when many differences are judged at once (:func:`family_z`)."""
    return abs(a - b) < z * math.hypot(se_a, se_b)


def family_z(m: int, level: float = 0.05) -> float:
    """The multiple of a difference's standard error beyond which it counts, when ``m`` differences are
    judged at once (two-sided, Bonferroni): Φ⁻¹(1 − level / (2m)). Each comparison is then made at
    level/m, so that noise alone marks any of the ``m`` with a chance of at most ``level`` (5 %).

    ``family_z(1)`` = 1.96 (the book rounds it to 2 for one comparison); ``family_z(10)`` = 2.81."""
    from statistics import NormalDist

    if isinstance(m, bool) or not isinstance(m, int) or m < 1:
        raise ValueError(f"m={m!r}: the number of comparisons must be a whole number >= 1")
    if not 0 < level < 1:
        raise ValueError(f"level={level!r} must lie between 0 and 1, e.g. 0.05")
    return NormalDist().inv_cdf(1 - level / (2 * m))


# Ten classes compared at once: each at 0.5 % instead of 5 % (Bonferroni), so that a change flagged in
# any of them is as unlikely by chance as one flagged difference of two overall accuracies.
PER_CLASS_Z = round(family_z(10), 2)  # 2.81


def test_se(r: Result) -> float:
    """The standard error of a record's test accuracy (from the record, else computed)."""
    return r.test_acc_se or standard_error(r.test_acc, r.test_size or 10_000)


def difference_is_noise(a: Result, b: Result, z: float = 2.0) -> bool:
    """Whether two records' test accuracies are tied (:func:`within_noise`; ``z`` from :func:`family_z`
    when many pairs are judged at once)."""
    return within_noise(a.test_acc, test_se(a), b.test_acc, test_se(b), z=z)


def gpu_table(gpu_records: list[Result], cpu_records: list[Result], predict=None) -> str:
    """What the ``gpu`` profile reaches beside the book's ``cpu`` runs, in Markdown: per chapter the gpu
    form's test accuracy, the cpu record's, their difference judged against its noise, the epochs and input
    side, and the training time predicted for Colab's T4 (``predict``: record -> seconds, by default
    :func:`cnnbook.t4.predict_record`). A line under the table says where the gpu records were measured."""
    if predict is None:
        from .t4 import predict_record as predict
    cpu = {r.chapter: r for r in cpu_records}
    lines = ["| network (gpu form) | gpu profile: test acc. (%) | cpu profile (%) | difference (points) "
             "| gpu epochs × side | T4 training (rough) |", "|---|---|---|---|---|---|"]
    for r in in_book_order(gpu_records):
        base = cpu.get(r.chapter)
        side = (r.settings or {}).get("resize") or 28
        augmented = ", aug." if (r.settings or {}).get("augment") else ""
        if base is not None:
            diff = 100 * (r.test_acc - base.test_acc)
            verdict = "a tie" if difference_is_noise(r, base) else "beyond noise"
            base_text, diff_text = accuracy_text(base).replace(" %", ""), f"{diff:+.2f} ({verdict})"
        else:
            base_text = diff_text = "–"
        lines.append(f"| {r.architecture} | {accuracy_text(r).replace(' %', '')} | {base_text} | {diff_text} "
                     f"| {r.num_epochs} × {side} px{augmented} | {predict(r) / 60:.1f} min |")
    devices = sorted({r.device_name for r in gpu_records})
    versions = sorted({f"torch {r.versions.get('torch', '?')}" for r in gpu_records if r.versions})
    times = sorted(r.wall_time_s for r in gpu_records)
    if times:
        lines += ["", f"The gpu records were measured on {' and '.join(devices)} ({', '.join(versions)}); "
                      f"their training runs took {times[0] / 60:.1f} to {times[-1] / 60:.1f} min, most while "
                      "several chapters shared the GPU. Each gpu run has its own recipe (more epochs, data "
                      "augmentation, marked aug., for some another learning rate or batch size), "
                      "so a difference is what the whole gpu profile buys, not the wider network alone. "
                      "The T4 times are rough estimates, not measurements and never checked on a T4 (`cnnbook.t4`): twice the measured time, or "
                      "more where the network's multiply-adds and layers need more at an assumed T4 rate."]
    return "\n".join(lines)


def write_gpu_summary(directory: str | os.PathLike | None = None) -> Path:
    """Write ``<results>/gpu/summary.md``: :func:`gpu_table` of the gpu records beside the book's cpu records,
    the table the how-to-use page includes (``python -m cnnbook.results``; a test keeps it current)."""
    directory = Path(directory) if directory else results_dir()
    path = directory / "gpu" / "summary.md"
    path.write_text(gpu_table(load_results(directory / "gpu"), load_results(directory)) + "\n")
    return path


if __name__ == "__main__":
    print(f"wrote {write_gpu_summary()}")
