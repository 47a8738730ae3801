"""How big a run is: one table of settings per profile and chapter.

Three profiles decide every chapter's run size:

* ``smoke`` -- tests and CI: a small subset and one short epoch, seconds per notebook.
* ``cpu``   -- the default without CUDA: the whole data set, each chapter within about
  five minutes on a 2-core machine, networks sized for 28x28 inputs.
* ``gpu``   -- the default with CUDA: wider networks, more epochs, inputs closer to the paper.

The profile is chosen by the device and can be overridden with the environment
variable ``CNNBOOK_PROFILE``. Chapters read their settings with :func:`settings`
and never hard-code epochs or widths.
"""
from __future__ import annotations

import dataclasses
import math
import os
import random
import sys
from dataclasses import dataclass, field
from typing import Any

import torch

from .errors import SettingsError

PROFILE_NAMES = ("smoke", "cpu", "gpu")


@dataclass(frozen=True)
class Settings:
    """The settings of one chapter's run: data, optimisation and model size.

    ``model`` holds the chapter's own knobs (widths, depths...), read by the chapter's code.
    """

    chapter: str
    profile: str
    num_epochs: int = 10
    batch_size: int = 256
    lr: float = 0.1
    optimizer: str = "sgd"  # "sgd" (with momentum, Nesterov) or "adamw"
    momentum: float = 0.9
    weight_decay: float = 5e-4
    schedule: str = "onecycle"  # "onecycle", "cosine" or "constant"
    label_smoothing: float = 0.0
    augment: bool = False  # random crop (2 px padding) + horizontal flip
    resize: int | None = None  # side length the 28x28 images are resized to, None keeps 28
    train_subset: int | None = None  # None: all 55,000 training images
    val_subset: int | None = None  # None: all 5,000 validation images
    test_subset: int | None = None  # None: all 10,000 test images
    model: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Catch the usual slips (a string for a number, zero epochs...) with a message that says the fix."""
        def fail(message: str):
            raise SettingsError(f"Settings: {message}")

        def whole(name: str, low: int, allow_none: bool = False):
            value = getattr(self, name)
            if value is None and allow_none:
                return
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                fail(f"{name}={value!r} must be a whole number >= {low}, e.g. S.replace({name}={max(low, 2)}).")

        whole("num_epochs", 1)
        whole("batch_size", 1)
        for name in ("train_subset", "val_subset", "test_subset"):
            whole(name, 1, allow_none=True)
        if self.resize is not None:
            whole("resize", 8)
        for name in ("lr", "momentum", "weight_decay", "label_smoothing"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                fail(f"{name}={value!r} must be a number, e.g. {name}=0.1 (not in quotes).")
        if self.lr <= 0:
            fail(f"lr={self.lr!r} must be positive, e.g. lr=0.1.")
        if not 0 <= self.label_smoothing < 1:
            fail(f"label_smoothing={self.label_smoothing!r} must be in [0, 1), e.g. 0.1.")
        if self.optimizer not in ("sgd", "adamw"):
            fail(f"optimizer={self.optimizer!r}: use 'sgd' or 'adamw'.")
        if self.schedule not in ("onecycle", "cosine", "constant"):
            fail(f"schedule={self.schedule!r}: use 'onecycle', 'cosine' or 'constant'.")
        if not isinstance(self.model, dict):
            fail(f"model must be a dict of the network's knobs, not {type(self.model).__name__}.")

    def replace(self, **changes: Any) -> "Settings":
        """A copy with some settings changed, e.g. ``S.replace(num_epochs=3)``."""
        return dataclasses.replace(self, **changes)

    def __repr__(self) -> str:
        shown = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        body = ", ".join(f"{k}={v!r}" for k, v in shown.items())
        return f"Settings({body})"


# --- the table ---------------------------------------------------------------------------
# Defaults shared by all chapters of a profile; each chapter's entry overrides some of them.
_DEFAULTS: dict[str, dict[str, Any]] = {
    "cpu": dict(num_epochs=5, batch_size=256),
    "gpu": dict(num_epochs=10, batch_size=256),
}

_CHAPTERS: dict[str, dict[str, dict[str, Any]]] = {
    # A tiny two-convolution network ("Training a CNN").
    "training": {
        "cpu": dict(num_epochs=5, lr=0.1, batch_size=128, model=dict(width=16)),
        "gpu": dict(num_epochs=15, lr=0.1, batch_size=128, augment=True, model=dict(width=64)),
    },
    # --- LeNet (chapter 3) ---
    "lenet": {
        "cpu": dict(num_epochs=10, lr=0.1, batch_size=128,
                    model=dict(widths=(6, 16), fc_units=(120, 84), padding=2, activation="relu",
                               pool="max")),
        "gpu": dict(num_epochs=20, lr=0.1, batch_size=128, augment=True,
                    model=dict(widths=(12, 32), fc_units=(240, 168), padding=2, activation="relu",
                               pool="max")),
    },
    # --- AlexNet (chapter 4) ---
    "alexnet": {
        # 28x28: a 3x3 stride-1 first convolution, the paper's widths / ~6, FC 512
        # AdamW: with default init and no normalisation, SGD left this 8-layer stack stuck at chance for a while
        "cpu": dict(num_epochs=6, lr=0.002, optimizer="adamw", weight_decay=0.05, batch_size=128,
                    model=dict(widths=(16, 48, 64, 64, 48), fc_units=512, first_conv=(3, 1, 1),
                               lrn=False)),
        # the paper's network (widths, 11x11/4 first convolution, LRN) on images resized to 224x224
        # AdamW as in the cpu profile: SGD (lr 0.01) from the default initialisation did not learn in the
        # gpu check (benchmarks/results/gpu-check-*: loss 2.303 -> 2.302 in 150 steps)
        "gpu": dict(num_epochs=8, lr=5e-4, optimizer="adamw", weight_decay=0.05, batch_size=128, augment=True,
                    resize=224, model=dict(widths=(96, 256, 384, 384, 256), fc_units=4096,
                                           first_conv=(11, 4, 2), lrn=True)),
    },
    # --- VGG (chapter 5) ---
    # cpu: VGG-13's first 3 blocks at 28x28 (6 convolutions + 3 linear layers: deeper than AlexNet's 8);
    # 6 epochs, for the chapter to fit 3 minutes in float32 on 2 cores: on validation, 6 epochs reached
    # 0.9246 and 7 epochs 0.9252, the same within the noise (fp32, seed 0;
    # benchmarks/results/epoch-choice-cpu.jsonl)
    # gpu: all 5 blocks of VGG-11 on 64x64 images
    "vgg": {
        "cpu": dict(num_epochs=6, lr=0.05, batch_size=128, label_smoothing=0.1,
                    model=dict(config="vgg13", num_stages=3, width_divisor=4, fc_units=512)),
        # lr 0.02: at 0.05 the gpu check saw it learn once and stay at chance once (loss 4.89 -> 2.31);
        # 0.02 learned in a CPU re-check (80 steps: loss 3.76 -> 1.18, 60 % on validation)
        "gpu": dict(num_epochs=15, lr=0.02, batch_size=128, augment=True, resize=64,
                    model=dict(config="vgg11", num_stages=5, width_divisor=2, fc_units=1024)),
    },
    # --- NiN (chapter 6) ---
    # cpu: 6 epochs, for 3 minutes in float32 on 2 cores (0.902 on validation; 10 epochs gave 0.911 with the
    # earlier momentum cycle): still above d2l's 0.80-0.87 (benchmarks/results/epoch-choice-cpu.jsonl)
    "nin": {  # first_conv = (kernel_size, stride, padding) of the first convolution
        "cpu": dict(num_epochs=6, lr=0.05, batch_size=128, model=dict(widths=(16, 32, 96), first_conv=(5, 1, 2))),
        # AdamW: at these widths SGD (lr 0.05 and 0.02) left the loss at 2.30 in the gpu check; AdamW learns
        "gpu": dict(num_epochs=15, lr=1e-3, optimizer="adamw", weight_decay=0.05, batch_size=128, augment=True,
                    model=dict(widths=(64, 128, 256), first_conv=(5, 1, 2))),
    },
    # --- GoogLeNet (chapter 7) ---
    # cpu: 3 epochs, for the chapter to fit 3 minutes in float32 on 2 cores: on validation 3 epochs reached
    # 0.9118 and 4 epochs 0.9188 (fp32, seed 0; benchmarks/results/epoch-choice-cpu.jsonl), both above d2l's
    # 0.89-0.90; 4 would leave the chapter ~10 s under the limit, less than the machine's run-to-run noise
    "googlenet": {  # all nine Inception blocks with batch norm; first_conv = (kernel_size, stride, padding)
        "cpu": dict(num_epochs=3, lr=0.1, batch_size=128,
                    model=dict(width_divisor=8, first_conv=(3, 1, 1), batch_norm=True, dropout=0.0)),
        # the paper's widths, 7x7 stride-2 first convolution and dropout, on images enlarged to 64x64
        # (at 96x96 and 15 epochs it would take ~3.5 min on an H100; 10 epochs at 64x64 were predicted at
        # 5 min 23 s on a T4, so 9)
        "gpu": dict(num_epochs=9, lr=0.05, batch_size=128, augment=True, resize=64,
                    model=dict(width_divisor=1, first_conv=(7, 2, 3), batch_norm=True, dropout=0.4)),
    },
    # --- Batch normalization (chapter 8) ---
    "batchnorm": {  # chapter 3's LeNet-5 (ReLU, max pooling; its knobs) with batch norm added
        "cpu": dict(num_epochs=8, lr=0.1, batch_size=128,
                    model=dict(padding=2, activation="relu", pool="max")),
        "gpu": dict(num_epochs=20, lr=0.1, batch_size=128, augment=True,
                    model=dict(widths=(12, 32), fc_units=(240, 168), padding=2, activation="relu",
                               pool="max")),
    },
    # --- ResNet (chapter 9) ---
    "resnet": {  # cpu: 3x3 stem + 2x2 max pooling, three stages of one basic block (ResNet-8, narrow)
        "cpu": dict(num_epochs=5, lr=0.1, batch_size=128, label_smoothing=0.1,
                    model=dict(block="basic", layers=(1, 1, 1), widths=(24, 48, 96), stem="3x3+pool")),
        # gpu: ResNet-18's four stages and widths with a 3x3 stem, as for CIFAR-10
        "gpu": dict(num_epochs=20, lr=0.1, batch_size=128, augment=True, label_smoothing=0.1,
                    model=dict(block="basic", layers=(2, 2, 2, 2), widths=(64, 128, 256, 512), stem="3x3")),
    },
    # --- DenseNet (chapter 10) ---
    "densenet": {  # cpu: k = 12, 3x3 stem + 2x2 max pooling, three small dense blocks (DenseNet-28)
        # 4 epochs, for the chapter to fit 3 minutes in float32 on 2 cores, checked on validation only:
        # 0.9264 (fp32, seed 0; benchmarks/results/epoch-choice-cpu.jsonl). (An earlier session raised
        # this to 5 after a test score missed a target: choosing on the test set, undone here.)
        "cpu": dict(num_epochs=4, lr=0.1, batch_size=128, label_smoothing=0.1,
                    model=dict(growth_rate=12, block_config=(2, 4, 6), num_init_features=24, stem="3x3+pool")),
        # gpu: the paper's DenseNet-BC for CIFAR (L = 100, k = 12) at 28x28
        # batch 512: its ~300 small layers make it launch-bound at 128 (1,861 images/s on an H100)
        "gpu": dict(num_epochs=12, lr=0.2, batch_size=512, augment=True, label_smoothing=0.1,
                    model=dict(growth_rate=12, block_config=(16, 16, 16), num_init_features=24, stem="3x3")),
    },
    # --- The speedrun (chapter 12): a small ResNet and every trick the book taught, for speed ---
    # Chosen on the validation split (single seeds, then 5 seeds; benchmarks/speedrun.py, whose comments list
    # the probes): 10 epochs from 20x20 images up to 28x28 (FIRST_SIDE in chapter 12's code), flip test-time
    # augmentation, narrow widths (wider ones cost time in proportion to their arithmetic on 2 cores).
    # gpu: the same recipe (its time on a GPU is the question; no GPU was lent when it was chosen).
    "speedrun": {
        "cpu": dict(num_epochs=10, lr=0.2, batch_size=256, label_smoothing=0.1, augment=True,
                    model=dict(widths=(16, 32, 64), blocks=(1, 1, 1), residual=True)),
        "gpu": dict(num_epochs=10, lr=0.2, batch_size=256, label_smoothing=0.1, augment=True,
                    model=dict(widths=(16, 32, 64), blocks=(1, 1, 1), residual=True)),
    },
}

# the chapters whose cpu-profile epochs were cut to fit the 3-minute float32 budget, each count checked on the
# validation split (scripts/epoch_choice.py); chapter 11 says so
TIME_BUDGET_EPOCHS = ("vgg", "nin", "googlenet", "densenet")

# smoke = the cpu run's model and recipe, cut to a small subset and one epoch.
_SMOKE = dict(num_epochs=1, train_subset=2048, val_subset=1024, test_subset=1024)


def default_device() -> torch.device:
    """The fastest device available: CUDA, then Apple's MPS, then the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def current_profile() -> str:
    """``$CNNBOOK_PROFILE`` if set, else ``gpu`` with CUDA and ``cpu`` otherwise."""
    name = os.environ.get("CNNBOOK_PROFILE", "").strip().lower()
    if name:
        if name not in PROFILE_NAMES:
            raise SettingsError(
                f"CNNBOOK_PROFILE={name!r} is not a profile. Use one of {', '.join(PROFILE_NAMES)} "
                "(or unset it to choose by device)."
            )
        return name
    return "gpu" if torch.cuda.is_available() else "cpu"


def chapters() -> list[str]:
    """The chapters that have an entry in the profile table."""
    return list(_CHAPTERS)


def settings(chapter: str, profile: str | None = None) -> Settings:
    """The settings for ``chapter`` under ``profile`` (default: :func:`current_profile`).

    Raises:
        SettingsError: an unknown profile, or a chapter with no entry in the table (the message lists those
            that do).
    """
    profile = profile or current_profile()
    if profile not in PROFILE_NAMES:
        raise SettingsError(f"Unknown profile {profile!r}; choose one of {', '.join(PROFILE_NAMES)}.")
    if chapter not in _CHAPTERS:
        raise SettingsError(f"No settings for chapter {chapter!r}. Known chapters: {', '.join(_CHAPTERS)}.")
    base = "cpu" if profile == "smoke" else profile
    values: dict[str, Any] = {**_DEFAULTS[base], **_CHAPTERS[chapter][base]}
    if profile == "smoke":
        values.update(_SMOKE)
    if profile == "cpu" and _on_colab_cpu() and chapter not in _TIME_WARNED:
        _TIME_WARNED.add(chapter)
        note = chapter_time_note(chapter)
        if note:
            print(note)
    return Settings(chapter=chapter, profile=profile, **values)


CHAPTER_TIMES = os.path.join(os.path.dirname(__file__), "chapter_times.json")
_TIME_WARNED: set[str] = set()


def _on_colab_cpu() -> bool:
    return "google.colab" in sys.modules and not torch.cuda.is_available()


def chapter_times() -> dict[str, dict[str, Any]]:
    """How long each chapter took in the ``cpu`` profile on the book's machine, by notebook and precision:
    ``{"05_vgg.ipynb": {"chapter": "vgg", "device": "CPU (2 threads)", "processor": "AMD EPYC ...",
    "native_bf16": true, "seconds": {"fp32": 160.2, "bf16": 118.4}}}``.

    ``python -m cnnbook.book execute`` writes the precision the committed run used (``CNNBOOK_PRECISION``);
    ``benchmarks/book_times.py --update-chapter-times`` the other. Empty if the file is missing."""
    import json

    try:
        with open(CHAPTER_TIMES, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def cpu_model() -> str:
    """The processor's name (``model name`` in /proc/cpuinfo), or the platform's word for it."""
    import platform

    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return " ".join(line.split(":", 1)[1].split())
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def expected_precision() -> str:
    """The arithmetic a ``cpu`` run is likely to use on this machine: ``$CNNBOOK_PRECISION`` if set, else
    bf16 where the CPU has native bfloat16 (``auto`` then usually picks it), fp32 otherwise."""
    from .train import cpu_has_bf16

    forced = os.environ.get("CNNBOOK_PRECISION", "").strip().lower()
    if forced in ("fp32", "bf16"):
        return forced
    return "bf16" if cpu_has_bf16() else "fp32"


def chapter_seconds(entry: dict[str, Any], precision: str) -> float | None:
    """A chapter's recorded time in ``precision``, else in fp32 (never the faster bf16 for an fp32 CPU)."""
    seconds = entry.get("seconds", {})
    return seconds.get(precision, seconds.get("fp32"))


def book_seconds(precision: str) -> float:
    """The whole book's recorded time in ``precision`` (fp32 where that precision is missing)."""
    return sum(chapter_seconds(t, precision) or 0.0 for t in chapter_times().values())


def _precision_words(precision: str) -> str:
    from .train import cpu_has_bf16

    if precision == "bf16":
        return "in bfloat16, as on CPUs with native bfloat16 like this one"
    if cpu_has_bf16():
        return "in float32"
    return "in float32: this CPU has no native bfloat16"


def chapter_time_note(chapter: str) -> str:
    """One line: how long ``chapter``'s notebook took, whole, in the ``cpu`` profile on the book's machine,
    in the precision this CPU will use (fp32 without native bfloat16); empty when unknown."""
    times = chapter_times()
    entry = next((t for t in times.values() if t.get("chapter") == chapter), None)
    precision = expected_precision()
    seconds = chapter_seconds(entry, precision) if entry else None
    if not seconds:
        return ""
    used = precision if precision in entry.get("seconds", {}) else "fp32"
    return (f"On a CPU this chapter takes about {_minutes(seconds)} in all, {_precision_words(used)}: that "
            f"is what it took on the book's machine, {entry.get('processor', 'a CPU')}, "
            f"{entry['device']}; a slower processor takes longer.")


def _minutes(seconds: float) -> str:
    if seconds < 90:
        return f"{max(1, round(seconds / 10) * 10):.0f} seconds"
    return f"{seconds / 60:.0f} minutes"


def seed_everything(seed: int = 0) -> None:
    """Seed Python's, NumPy's and PyTorch's generators so that a run can be repeated."""
    random.seed(seed)
    torch.manual_seed(seed)
    try:
        import numpy as np

        np.random.seed(seed)
    except ImportError:  # pragma: no cover - numpy comes with torch's usual installs
        pass


def setup(seed: int = 0) -> torch.device:
    """Seed everything, print the device and the profile, and warn about a CPU-only Colab.

    Returns:
        The device that :func:`cnnbook.train` will use.
    """
    seed_everything(seed)
    device = default_device()
    profile = current_profile()
    if device.type == "cuda":
        where = f"cuda ({torch.cuda.get_device_name(device)})"
    else:
        where = f"{device.type} ({torch.get_num_threads()} threads)"
    print(f"cnnbook: device {where} · profile {profile!r} · torch {torch.__version__}")
    if "google.colab" in sys.modules and device.type != "cuda":
        precision = expected_precision()
        total = book_seconds(precision)
        book = (f" (the whole book: about {_minutes(total)} on a 2-core CPU, {_precision_words(precision)})"
                if total else "")
        print(
            "WARNING: this Colab runtime has no GPU, so the chapter runs in the slower 'cpu' profile"
            f"{book}.\n"
            "To use a GPU: Runtime > Change runtime type > T4 GPU (or any GPU), then Runtime > Run all."
        )
    return device
