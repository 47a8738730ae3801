"""One training loop for every chapter.

``train(net, data, settings)`` picks the device and the arithmetic (bfloat16 on CPUs where it is
faster), trains with the settings' optimiser and schedule, measures the validation accuracy after
every epoch, draws the learning curves live in a notebook, evaluates the test set once at the end of
a chapter's run and returns a :class:`~cnnbook.results.Result`. ``train_epoch`` is the loop itself.
"""
from __future__ import annotations

import contextlib
import copy
import math
import os
import sys
import time
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Sequence

import torch
from torch import Tensor, nn

from .data import FashionMNIST
from .errors import CnnbookError, NetworkError, SettingsError
from .inspection import check_forward, count_macs, count_params
from .plots import in_notebook
from .profiles import Settings, default_device
from .results import Result, plural, standard_error, versions

CHANCE_MARGIN = 0.2  # a run whose final accuracy is below this (chance: 0.1) did not learn


class TrainingDiverged(CnnbookError, FloatingPointError):
    """The loss became NaN or infinite. ``.result`` holds the epochs finished before that."""

    def __init__(self, message: str, result: Result):
        super().__init__(message)
        self.result = result


def make_optimizer(net: nn.Module, S: Settings) -> torch.optim.Optimizer:
    if S.optimizer == "sgd":
        return torch.optim.SGD(net.parameters(), lr=S.lr, momentum=S.momentum, nesterov=S.momentum > 0,
                               weight_decay=S.weight_decay)
    if S.optimizer == "adamw":
        return torch.optim.AdamW(net.parameters(), lr=S.lr, weight_decay=S.weight_decay)
    raise ValueError(f"optimizer must be 'sgd' or 'adamw', not {S.optimizer!r}")


def make_schedule(optimizer: torch.optim.Optimizer, S: Settings, total_steps: int):
    """The learning-rate schedule, stepped once per batch."""
    if S.schedule == "onecycle":  # warm up to lr over the first 25 % of steps, then anneal to ~0
        # (at least 8 steps: with fewer, the warm-up phase would have no length). Only the learning rate
        # cycles: Smith's 1cycle also cycles the momentum (0.95 -> 0.85 -> 0.95, PyTorch's default), but
        # then SGD's momentum and AdamW's beta1 would not be the ones the settings print.
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=S.lr, total_steps=max(total_steps, 8),
                                                   pct_start=0.25, cycle_momentum=False)
    if S.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)
    if S.schedule == "constant":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    raise ValueError(f"schedule must be 'onecycle', 'cosine' or 'constant', not {S.schedule!r}")


def train_epoch(net, batches, loss_fn, optimizer, schedule, autocast, scaler) -> tuple[Tensor, Tensor, int]:
    """One pass over the training batches. Returns (sum of losses, number correct, examples) as tensors
    on the device, so that the loop never waits for the device to report a number."""
    net.train()
    device = next(net.parameters()).device
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    n = 0
    scaled = scaler.is_enabled()
    for step, (X, y) in enumerate(batches):
        with autocast():
            y_hat = net(X)
            loss = loss_fn(y_hat, y)
        optimizer.zero_grad(set_to_none=True)
        if scaled:  # fp16 on CUDA: scale the loss so that small gradients do not underflow
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()
        schedule.step()
        with torch.no_grad():
            loss_sum += loss.float() * len(y)
            correct += (y_hat.argmax(dim=1) == y).sum()
        n += len(y)
        if step % 50 == 49 and not torch.isfinite(loss_sum):  # one sync every 50 steps
            break
    return loss_sum, correct, n


def autocast_for(precision: str, device: torch.device | str = "cpu"):
    """A fresh context that computes in ``precision`` on ``device``: "bf16" (bfloat16 autocast), "fp16"
    (float16 autocast) or "fp32" (as is)."""
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    return torch.autocast(torch.device(device).type, dtype=dtype) if dtype else contextlib.nullcontext()


def _eval_autocast(net: nn.Module, device: torch.device, precision: str | None):
    """The arithmetic to evaluate in: ``precision``, else the one the network was trained in, where the
    device has it (bf16 on a CPU, fp16 on CUDA); float32 otherwise."""
    precision = precision or getattr(net, "cnnbook_precision", "fp32")
    if (precision, device.type) in (("bf16", "cpu"), ("fp16", "cuda")):
        return autocast_for(precision, device)
    return contextlib.nullcontext()


def scores(net: nn.Module, X: Tensor, tta: bool = False) -> Tensor:
    """The network's class scores for a batch; with ``tta`` (test-time augmentation) each image is scored as it
    is and mirrored left to right, and the two scores added (chapter 12): a mirrored garment is the same
    garment, and the two views' mistakes partly cancel."""
    y_hat = net(X)
    return y_hat + net(X.flip(-1)) if tta else y_hat


def _tta(net: nn.Module, tta: bool | None) -> bool:
    """``tta`` if given, else the choice the network was trained with (``train(..., tta=True)``)."""
    return bool(getattr(net, "cnnbook_tta", False) if tta is None else tta)


def _prepare_eval(net, data, resize) -> tuple[nn.Module, FashionMNIST]:
    """Check the arguments of predict/evaluate; put the data on the network's device."""
    _check_net(net)
    _check_data(data)
    device = _net_device(net)
    if data.device != device:
        data = data.to(device)
    side = resize or data.train_images.shape[-1]
    check_forward(net, (2, 1, side, side), num_classes=len(data.classes))
    return net, data


@torch.inference_mode()
def predict(net: nn.Module, data: FashionMNIST, split: str = "test", resize: int | None = None,
            batch_size: int = 1000, precision: str | None = None, tta: bool | None = None
            ) -> tuple[Tensor, Tensor]:
    """Class probabilities (N, 10) and true labels (N,) of a split, in the split's order, on the CPU.

    ``precision`` and ``tta`` (flip test-time augmentation) default to those the network was trained with.
    """
    net, data = _prepare_eval(net, data, resize)
    net.eval()
    probs, labels = [], []
    tta = _tta(net, tta)
    with _eval_autocast(net, data.device, precision):
        for X, y in data.batches(split, batch_size, shuffle=False, resize=resize):
            probs.append(torch.softmax(scores(net, X, tta).float(), dim=1))
            labels.append(y)
    return torch.cat(probs).cpu(), torch.cat(labels).cpu()


@torch.inference_mode()
def evaluate(net: nn.Module, data: FashionMNIST, split: str = "test", resize: int | None = None,
             batch_size: int = 1000, precision: str | None = None, tta: bool | None = None) -> float:
    """Accuracy of ``net`` on a split (``"train"``, ``"val"`` or ``"test"``)."""
    net, data = _prepare_eval(net, data, resize)
    return _accuracy(net, data, split, resize, batch_size, _eval_autocast(net, data.device, precision),
                     _tta(net, tta))


@torch.inference_mode()
def _accuracy(net, data, split, resize, batch_size, autocast, tta: bool = False) -> float:
    net.eval()
    correct = torch.zeros((), dtype=torch.long, device=data.device)
    with autocast:
        for X, y in data.batches(split, batch_size, shuffle=False, resize=resize):
            correct += (scores(net, X, tta).argmax(dim=1) == y).sum()
    return correct.item() / len(data.split(split)[1])


@torch.inference_mode()
def _confusion(net, data, split, resize, batch_size, autocast, tta: bool = False) -> Tensor:
    """Counts [true class, predicted class] on a split."""
    net.eval()
    k = len(data.classes)
    counts = torch.zeros(k * k, dtype=torch.long, device=data.device)
    with autocast:
        for X, y in data.batches(split, batch_size, shuffle=False, resize=resize):
            counts += torch.bincount(y * k + scores(net, X, tta).argmax(dim=1), minlength=k * k)
    return counts.reshape(k, k).cpu()


def fast_memory_format(device: torch.device) -> torch.memory_format:
    """The memory order convolutions run fastest in on ``device``: channels-last on CPUs and CUDA."""
    return torch.channels_last if device.type in ("cpu", "cuda") else torch.preserve_format


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "mps":
        return "Apple MPS"
    return f"CPU ({torch.get_num_threads()} threads)"


# --- arguments a student may get wrong ---------------------------------------------------------------
def _net_device(net: nn.Module) -> torch.device:
    first = next(net.parameters(), None)
    return first.device if first is not None else torch.device("cpu")


def _check_net(net) -> None:
    if isinstance(net, nn.Module):
        if next(net.parameters(), None) is None:
            raise NetworkError(f"{type(net).__name__} has no parameters to train: pass the network itself.")
        return
    name = getattr(net, "__name__", type(net).__name__)
    if callable(net):
        raise NetworkError(f"{name} is a function or class that builds a network, not a network: call it "
                           f"first, e.g. net = {name}(...), then pass net.")
    raise NetworkError(f"Expected a network (a torch.nn.Module), got {type(net).__name__}.")


def _check_data(data) -> None:
    if isinstance(data, FashionMNIST):
        return
    kind = type(data).__module__.split(".")[0]
    hint = " (a torchvision data set)" if kind == "torchvision" else ""
    raise SettingsError(f"data must be cnnbook's Fashion-MNIST{hint}, not {type(data).__name__}: "
                        "use data = cnnbook.load_fashion_mnist(settings=S).")


def _check_settings(S) -> None:
    if isinstance(S, Settings):
        return
    if isinstance(S, str):
        raise SettingsError(f"S is the string {S!r}; pass the chapter's settings: S = cnnbook.settings({S!r}).")
    raise SettingsError(f"S must be a chapter's Settings (S = cnnbook.settings('lenet')), "
                        f"not {type(S).__name__}.")


def _check_sides(sides, S: Settings) -> list:
    """One training image side per epoch: ``sides`` checked, or ``S.resize`` (None: 28) every epoch."""
    if sides is None:
        return [S.resize] * S.num_epochs
    sides = list(sides)
    if len(sides) != S.num_epochs or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 8
                                             for s in sides):
        raise SettingsError(f"sides={sides!r}: give one whole-number image side (at least 8) per epoch, "
                            f"{S.num_epochs} in all, e.g. sides=[20, 24, 28, ...].")
    return sides


def _check_device(device) -> torch.device:
    if device is None:
        return default_device()
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError):
        raise SettingsError(f"device={device!r} is not a device: use 'cpu', 'cuda' or 'mps', or leave it out "
                            "to use the fastest one.") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SettingsError("device='cuda', but this machine has no CUDA GPU: leave device out (cnnbook picks "
                            "the CPU) or, in Colab, choose Runtime > Change runtime type > GPU.")
    if device.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise SettingsError("device='mps', but Apple's MPS is not available here: leave device out.")
    return device


# --- the arithmetic: bfloat16 where the CPU has it and it is faster -------------------------------------
PRECISIONS = ("auto", "fp32", "bf16")
# "auto" picks bf16 when the probe finds it at least this much faster. On a busy 2-core machine the probe
# scatters by about +-0.08 (LeNet: 1.01-1.17 over 32 probes, while its whole epoch ran 1.21-1.37x faster
# in bf16); 5 % keeps a network that gains nothing from bf16 in fp32 nearly always without giving up a
# 10-20 % gain half the time, as 10 % did.
BF16_MIN_SPEEDUP = 1.05


def cpu_has_bf16() -> bool:
    """Whether the CPU computes bfloat16 natively (x86 AVX512-BF16 or AMX; Arm BF16 instructions).

    Without them, bfloat16 autocast is emulated and slower than float32.
    """
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    flags = set()
    for line in text.splitlines():
        if line.startswith(("flags", "Features")):
            flags.update(line.split(":", 1)[1].split())
    return bool(flags & {"avx512_bf16", "amx_bf16", "bf16"})


def requested_precision(precision: str | None = None) -> str:
    """``precision`` if given, else ``$CNNBOOK_PRECISION``, else "auto"; checked."""
    value = precision if precision is not None else os.environ.get("CNNBOOK_PRECISION", "auto")
    value = str(value).strip().lower() or "auto"
    if value not in PRECISIONS:
        raise SettingsError(f"precision={value!r}: use 'auto' (bf16 where the CPU is faster with it), 'fp32' "
                            "or 'bf16' (argument precision=... or CNNBOOK_PRECISION).")
    return value


_PROBES: dict[tuple, tuple[str, str]] = {}


def choose_precision(net: nn.Module, S: Settings, data: FashionMNIST, device: torch.device,
                     precision: str | None = None) -> tuple[str, str]:
    """The arithmetic to train ``net`` in, and why: ("bf16" | "fp32" | "fp16", reason).

    CUDA: fp16 autocast. CPU: with "auto", bf16 only if the CPU has native bfloat16 *and* a short probe
    (a few training steps of a copy of the network, each precision) finds it at least
    ``BF16_MIN_SPEEDUP`` times (5 %) faster.
    """
    wanted = requested_precision(precision)
    if device.type == "cuda":
        return "fp16", "float16 autocast"
    if device.type != "cpu":
        return "fp32", f"{device.type}: float32"
    if wanted == "fp32":
        return "fp32", "float32 (requested)"
    if wanted == "bf16":
        return "bf16", "bfloat16 (requested" + (")" if cpu_has_bf16() else ", emulated on this CPU: slower)")
    if not cpu_has_bf16():
        return "fp32", "float32 (no native bfloat16 on this CPU)"
    key = (type(net).__name__, count_params(net), S.batch_size, S.resize, torch.get_num_threads())
    if key not in _PROBES:
        times = _probe(net, S, data, device)
        ratio = times["fp32"] / times["bf16"]
        choice = "bf16" if ratio >= BF16_MIN_SPEEDUP else "fp32"
        _PROBES[key] = (choice, f"{'bfloat16' if choice == 'bf16' else 'float32'} (bf16 probe: {ratio:.2f}x "
                                f"the speed of fp32)")
    return _PROBES[key]


def _probe(net: nn.Module, S: Settings, data: FashionMNIST, device: torch.device, steps: int = 3,
           warmup: int = 2, rounds: int = 3, min_seconds: float = 0.15) -> dict[str, float]:
    """Seconds per training step of a copy of ``net`` in each precision (the network and RNGs untouched).

    The precisions alternate for a few rounds and each keeps its fastest round: a busy machine slows some
    rounds down, never speeds one up. A round lasts at least ``steps`` steps and ``min_seconds`` (a
    small network's step takes milliseconds: a few of them are too short to time).
    """
    rng = torch.get_rng_state()
    # in the layout train() uses: a caller's contiguous network would time bf16 on slow kernels
    trial = copy.deepcopy(net).to(device, memory_format=fast_memory_format(device))
    X, y = next(data.batches("train", S.batch_size, shuffle=False, resize=S.resize))
    X = X.contiguous(memory_format=fast_memory_format(device))
    optimizer = torch.optim.SGD(trial.parameters(), lr=1e-6)
    loss_fn = nn.CrossEntropyLoss()
    times = {"fp32": math.inf, "bf16": math.inf}
    try:
        for round_ in range(rounds):
            for precision in ("fp32", "bf16"):
                autocast = autocast_for(precision)
                skip, done = (warmup if round_ == 0 else 0), 0
                while True:
                    if done == skip:
                        t0 = time.perf_counter()
                    with autocast:
                        loss = loss_fn(trial(X), y)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    done += 1
                    timed = done - skip
                    if timed >= steps and time.perf_counter() - t0 >= min_seconds:
                        break
                times[precision] = min(times[precision], (time.perf_counter() - t0) / timed)
    finally:
        torch.set_rng_state(rng)
    return times


# --- what a reader sees while a network trains ---------------------------------------------------------
class _Text:
    """Plain text that a display handle can update in place."""

    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        return self.text


def _tqdm():
    """tqdm's notebook bar where ipywidgets is installed, else the plain one (no TqdmWarning)."""
    if in_notebook():
        try:
            import ipywidgets  # noqa: F401

            from tqdm.notebook import tqdm
            return tqdm
        except ImportError:
            pass
    from tqdm import tqdm
    return tqdm


class TrainingReport:
    """While training: a progress bar per epoch and the log; in a notebook also the learning curves.

    In a notebook the log (first line, one line per epoch, the result) is one text output updated in
    place, and the curves one figure: a training run leaves one text box, whatever its length.
    ``verbose=False`` shows nothing but a transient progress bar.
    """

    def __init__(self, title: str, num_epochs: int, live: bool = True, verbose: bool = True):
        self.title, self.num_epochs, self.verbose = title, num_epochs, verbose
        self.live = live and verbose and in_notebook()
        self.figure_handle = self.log_handle = None
        self.lines: list[str] = []

    def log(self, line: str) -> None:
        if not self.verbose:
            return
        self.lines.append(line)
        if not in_notebook():
            print(line, flush=True)
            return
        from IPython.display import display

        if self.log_handle is None:
            self.log_handle = display(_Text("\n".join(self.lines)), display_id=True)
        else:
            self.log_handle.update(_Text("\n".join(self.lines)))

    def progress(self, batches: Iterable, total: int, epoch: int) -> Iterable:
        # hidden when chapters are executed for the book, and for quiet runs outside a notebook
        hidden = os.environ.get("CNNBOOK_PROGRESS") == "0" or not (self.verbose or in_notebook())
        return _tqdm()(batches, total=total, desc=f"epoch {epoch}/{self.num_epochs}", leave=False,
                       disable=hidden)

    def update(self, history: Sequence[dict]) -> None:
        h = history[-1]
        self.log(f"epoch {h['epoch']:>2}/{self.num_epochs}  loss {h['train_loss']:.4f}  train acc "
                 f"{h['train_acc']:.4f}  val acc {h['val_acc']:.4f}  {h['examples_per_s']:>7,.0f} images/s  "
                 f"{h['seconds']:.1f} s")
        if not self.live:
            return
        import matplotlib.pyplot as plt
        from IPython.display import display

        from .plots import plot_history

        fig = plot_history(history, self.title)
        if self.figure_handle is None:
            self.figure_handle = display(fig, display_id=True)
        else:
            self.figure_handle.update(fig)
        plt.close(fig)


# --- training ---------------------------------------------------------------------------------------------
def train(
    net: nn.Module,
    data: FashionMNIST,
    S: Settings,
    architecture: str | None = None,
    *,
    save: bool = False,
    test: bool | None = None,
    verbose: bool = True,
    plot: bool = True,
    precision: str | None = None,
    device: torch.device | str | None = None,
    seed: int = 0,
    sides: Sequence[int] | None = None,
    tta: bool = False,
) -> Result:
    """Train ``net`` on ``data`` with the settings ``S`` and return the results record.

    Args:
        net: a network mapping (B, 1, H, W) images to (B, 10) class scores.
        data: Fashion-MNIST from :func:`cnnbook.load_fashion_mnist` (moved to the device if needed).
        S: epochs, batch size, optimiser, schedule, augmentation and resizing (:func:`cnnbook.settings`).
        architecture: the name shown and recorded (default: the network's class name).
        save: this is the chapter's own run: evaluate the test set at the end and write the record to
            ``results/<chapter>.json`` (only if it finished). With ``CNNBOOK_TRAINED=1`` the shipped
            trained weights are loaded instead of training (see :mod:`cnnbook.weights`).
        test: evaluate the test set once, at the end (default: only when ``save``). Experiments compare
            their trials on the validation split.
        verbose: print the log and draw the curves; False shows nothing (for loops of trials).
        plot: draw the learning curves live in a notebook.
        precision: "auto" (default, or ``$CNNBOOK_PRECISION``): bfloat16 on CPUs where it is faster,
            else float32; "fp32" or "bf16" to force one. CUDA always uses float16 autocast.
        device: default: the fastest available (CUDA, MPS, CPU).
        seed: seeds the order of the batches and the augmentation.
        sides: the side the training images are resized to in each epoch (one per epoch; progressive
            resizing, chapter 12). Default: ``S.resize`` (or 28) in every epoch. The network is evaluated at
            ``S.resize`` (or 28) whatever the training sides.
        tta: test-time augmentation: every evaluation (validation, test; later ``predict`` and
            ``evaluate``) adds the scores of each image and of its mirror image.

    Returns:
        The :class:`~cnnbook.results.Result`. Ctrl-C (or the notebook's stop button) ends training
        cleanly: the network keeps the weights of the last finished epoch and the record says
        "interrupted" (it is never saved over a finished one).

    Raises:
        TrainingDiverged: the loss became NaN or infinite; the network keeps the weights of the last
            finished epoch and the exception's ``.result`` the history up to it.
        NetworkError, SettingsError: an argument that cannot work (the message says what to fix).
    """
    _check_net(net)
    _check_data(data)
    _check_settings(S)
    device = _check_device(device)
    test = save if test is None else test
    if save and os.environ.get("CNNBOOK_TRAINED", "").strip() not in ("", "0"):
        return load_trained(net, data, S, architecture, device)
    net.to(device, memory_format=fast_memory_format(device))
    if data.device != device:
        data = data.to(device)
    has_val = data.val_labels is not None
    side = S.resize or data.train_images.shape[-1]
    input_size = (1, 1, side, side)
    check_forward(net, (2, 1, side, side), num_classes=len(data.classes))
    architecture = architecture or type(net).__name__
    sides = _check_sides(sides, S)
    one_side = len(set(sides)) == 1  # no progressive resizing: the record keeps no list of sides

    steps = data.num_batches("train", S.batch_size)
    optimizer = make_optimizer(net, S)
    schedule = make_schedule(optimizer, S, total_steps=S.num_epochs * steps)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=S.label_smoothing)
    requested_precision(precision)  # a wrong value is reported before anything starts
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    generator = torch.Generator().manual_seed(seed)
    report = TrainingReport(architecture, S.num_epochs, live=plot, verbose=verbose)
    history: list[dict[str, float]] = []
    status = "finished"
    arithmetic, autocast = "fp32", contextlib.nullcontext
    last_good = copy.deepcopy(net.state_dict())
    start = time.perf_counter()
    train_time = 0.0
    eval_split = "val" if has_val else "train"
    try:
        arithmetic, why = choose_precision(net, S, data, device, precision)
        autocast = lambda: autocast_for(arithmetic, device)  # noqa: E731 - a fresh context each time
        scaler = torch.amp.GradScaler("cuda", enabled=arithmetic == "fp16")
        report.log(f"training {architecture} on {device_name(device)}, {why}: {count_params(net):,} "
                   f"parameters, {len(data.train_labels):,} training images, {plural(S.num_epochs, 'epoch')}"
                   + ("" if one_side else f" at image sides {', '.join(str(s or 28) for s in sides)}")
                   + (", flip test-time augmentation" if tta else ""))
        for epoch in range(1, S.num_epochs + 1):
            t0 = time.perf_counter()
            batches = report.progress(data.batches("train", S.batch_size, augment=S.augment,
                                                   resize=sides[epoch - 1], generator=generator),
                                      total=steps, epoch=epoch)
            loss_sum, correct, n = train_epoch(net, batches, loss_fn, optimizer, schedule, autocast, scaler)
            loss = loss_sum.item() / n  # the epoch's one wait for the device
            if device.type == "cuda":
                torch.cuda.synchronize()
            seconds = time.perf_counter() - t0
            train_time += seconds
            if not math.isfinite(loss):
                status = "diverged"
                break
            val_acc = _accuracy(net, data, eval_split, S.resize, 1000, autocast(), tta)
            history.append(dict(epoch=epoch, train_loss=loss, train_acc=correct.item() / n, val_acc=val_acc,
                                examples_per_s=n / seconds, seconds=seconds))
            last_good = copy.deepcopy(net.state_dict())
            report.update(history)
    except KeyboardInterrupt:
        status = "interrupted"
        net.load_state_dict(last_good)
        report.log(f"Interrupted during epoch {len(history) + 1}: the network keeps the weights of "
                   f"{plural(len(history), 'finished epoch')}; nothing is saved.")
    if status == "diverged":
        net.load_state_dict(last_good)
    net.cnnbook_precision = arithmetic  # predict/evaluate use the same arithmetic
    net.cnnbook_tta = tta  # and the same test-time augmentation

    test_acc = se = per_class = confusion = None
    n_test = len(data.test_labels)
    if test and history and status == "finished":
        try:
            counts = _confusion(net, data, "test", S.resize, 1000, autocast(), tta)
        except KeyboardInterrupt:
            status = "interrupted"
            report.log("Interrupted during the test evaluation: nothing is saved.")
        else:
            test_acc = counts.diag().sum().item() / n_test
            se = standard_error(test_acc, n_test)
            per_class = (counts.diag() / counts.sum(dim=1).clamp(min=1)).tolist()
            confusion = counts.tolist()

    last = history[-1] if history else dict(train_loss=None, train_acc=0.0, val_acc=None)
    final_acc = test_acc if test_acc is not None else last["val_acc"]
    learned = final_acc is None or final_acc >= CHANCE_MARGIN
    result = Result(
        chapter=S.chapter, architecture=architecture, profile=S.profile, device=device.type,
        device_name=device_name(device), num_epochs=len(history), parameters=count_params(net),
        macs=count_macs(net, input_size), input_size=input_size, test_acc=test_acc,
        train_acc=last["train_acc"], train_loss=last["train_loss"], val_acc=last["val_acc"],
        test_acc_se=se, test_size=n_test if test_acc is not None else None, per_class_acc=per_class,
        confusion=confusion, precision=arithmetic, learned=learned, tta=tta,
        sides=None if one_side else sides,
        wall_time_s=time.perf_counter() - start,
        examples_per_s=len(data.train_labels) * len(history) / train_time if history else 0.0,
        status=status, history=history, settings=asdict(S), versions=versions(),
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )
    if status == "diverged":
        raise TrainingDiverged(
            f"Training stopped in epoch {len(history) + 1}: the loss became NaN or infinite, usually because "
            f"lr={S.lr} is too high: try S.replace(lr={S.lr / 10:g}). The network keeps the weights of the "
            f"last finished epoch; nothing was saved.",
            result,
        )
    report.log(result.summary())
    if not learned:
        report.log("The network did not learn: its accuracy is near chance (10 %). Usually lr is far too "
                   "high (the ReLUs die: they output 0 for every image) or far too low; try 10x smaller.")
    if save:
        _save(net, result, report)
    return result


def _save(net: nn.Module, result: Result, report: TrainingReport) -> None:
    """The chapter's run: ship its weights (when the book executes the chapter), then write its record."""
    if not (result.finished and result.learned and result.test_acc is not None):
        why = result.status if not result.finished else "did not learn" if not result.learned else "no test"
        report.log(f"Not saved ({why}): the chapter's record in results/ is left as it was.")
        return
    if os.environ.get("CNNBOOK_SAVE_WEIGHTS") == "1" and result.profile == "cpu":
        try:
            from . import weights
        except ImportError:  # pragma: no cover - the weights module ships with the package
            weights = None
        if weights is not None:
            result.weights_sha256 = weights.save(net, result.chapter, result.to_dict())
    path = result.save()
    if path is not None and report.verbose:
        report.log(f"Record written to {path.parent.name}/{path.name}.")


def load_trained(net: nn.Module, data: FashionMNIST, S: Settings, architecture: str | None,
                 device: torch.device) -> Result:
    """The skip-training switch (``CNNBOOK_TRAINED=1``): load the shipped weights into ``net`` and return the
    record of the run that made them."""
    from . import weights

    if S.profile not in ("cpu", "smoke"):
        raise SettingsError(f"The shipped weights are those of the cpu profile; this is the {S.profile!r} "
                            "profile. Set CNNBOOK_PROFILE=cpu as well, or unset CNNBOOK_TRAINED to train.")
    record = weights.load(net, S.chapter)
    net.to(device, memory_format=fast_memory_format(device))
    result = Result.from_dict(record)
    net.cnnbook_precision = result.precision if device.type == "cpu" else "fp32"
    net.cnnbook_tta = result.tta
    print(f"CNNBOOK_TRAINED=1: loaded the shipped weights of {result.architecture} instead of training "
          f"(the book's run: test accuracy {result.test_acc:.4f}, {plural(result.num_epochs, 'epoch')}).")
    return result
