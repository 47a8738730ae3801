"""One training loop for every chapter.

``train(net, data, settings)`` picks the device, trains with the settings' optimiser and
schedule, evaluates on the test set after every epoch, draws the learning curves live in a
notebook and returns a :class:`~cnnbook.results.Result`. ``train_epoch`` is the loop itself.
"""
from __future__ import annotations

import contextlib
import copy
import math
import time
from dataclasses import asdict
from datetime import datetime, timezone

import torch
from torch import Tensor, nn

from .data import FashionMNIST
from .inspection import check_forward, count_macs, count_params
from .profiles import Settings, default_device
from .results import Result, plural, versions


class TrainingDiverged(FloatingPointError):
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
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=S.lr, total_steps=total_steps,
                                                   pct_start=0.25)
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
    for step, (X, y) in enumerate(batches):
        with autocast():
            y_hat = net(X)
            loss = loss_fn(y_hat, y)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        schedule.step()
        loss_sum += loss.detach().float() * len(y)
        correct += (y_hat.argmax(dim=1) == y).sum()
        n += len(y)
        if step % 25 == 0 and not torch.isfinite(loss_sum):  # one sync every 25 steps
            break
    return loss_sum, correct, n


@torch.inference_mode()
def predict(net: nn.Module, data: FashionMNIST, split: str = "test", resize: int | None = None,
            batch_size: int = 1000) -> tuple[Tensor, Tensor]:
    """Class probabilities (N, 10) and true labels (N,) of a split, in the split's order, on the CPU."""
    net.eval()
    probs, labels = [], []
    for X, y in data.batches(split, batch_size, shuffle=False, resize=resize):
        probs.append(torch.softmax(net(X).float(), dim=1))
        labels.append(y)
    return torch.cat(probs).cpu(), torch.cat(labels).cpu()


@torch.inference_mode()
def evaluate(net: nn.Module, data: FashionMNIST, split: str = "test", resize: int | None = None,
             batch_size: int = 1000) -> float:
    """Accuracy of ``net`` on a split."""
    net.eval()
    correct = torch.zeros((), dtype=torch.long, device=data.device)
    for X, y in data.batches(split, batch_size, shuffle=False, resize=resize):
        correct += (net(X).argmax(dim=1) == y).sum()
    return correct.item() / len(data.split(split)[1])


def fast_memory_format(device: torch.device) -> torch.memory_format:
    """The memory order convolutions run fastest in on ``device``: channels-last on CPUs and CUDA."""
    return torch.channels_last if device.type in ("cpu", "cuda") else torch.preserve_format


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "mps":
        return "Apple MPS"
    return f"CPU ({torch.get_num_threads()} threads)"


def train(
    net: nn.Module,
    data: FashionMNIST,
    S: Settings,
    architecture: str | None = None,
    device: torch.device | str | None = None,
    plot: bool = True,
    seed: int = 0,
) -> Result:
    """Train ``net`` on ``data`` with the settings ``S`` and return the results record.

    Args:
        net: a network mapping (B, 1, H, W) images to (B, 10) class scores.
        data: Fashion-MNIST from :func:`cnnbook.load_fashion_mnist` (moved to ``device`` if needed).
        S: epochs, batch size, optimiser, schedule, augmentation and resizing (:func:`cnnbook.settings`).
        architecture: the name shown and recorded (default: the network's class name).
        device: default: the fastest available (CUDA, MPS, CPU).
        plot: draw the learning curves live when running in a notebook.
        seed: seeds the order of the batches and the augmentation.

    Returns:
        The :class:`~cnnbook.results.Result`. Ctrl-C (or the notebook's stop button) ends training
        cleanly: the record then holds the epochs finished so far, with status "interrupted".

    Raises:
        TrainingDiverged: the loss became NaN or infinite; the network keeps the weights of the last
            finished epoch and the exception's ``.result`` the history up to it.
        ValueError: the network does not accept the data's shape (the message says what to check).
    """
    from .plots import TrainingReport

    device = torch.device(device) if device else default_device()
    # channels-last (NHWC) activations: the convolution kernels of oneDNN (CPU) and of cuDNN under fp16
    # run much faster on them than on NCHW (benchmarks/: 1.3-1.9x per step on the CPU). The net's
    # interface does not change: tensors keep their NCHW shape, only the memory order differs.
    net.to(device, memory_format=fast_memory_format(device))
    if data.device != device:
        data = FashionMNIST(*(t.to(device) for t in (data.train_images, data.train_labels,
                                                      data.test_images, data.test_labels)), data.classes)
    side = S.resize or data.train_images.shape[-1]
    input_size = (1, 1, side, side)
    check_forward(net, (2, 1, side, side), num_classes=len(data.classes))
    architecture = architecture or type(net).__name__

    steps = data.num_batches("train", S.batch_size)
    optimizer = make_optimizer(net, S)
    schedule = make_schedule(optimizer, S, total_steps=S.num_epochs * steps)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=S.label_smoothing)
    use_amp = device.type == "cuda"
    if use_amp:
        torch.backends.cudnn.benchmark = True
    autocast = (lambda: torch.autocast("cuda", dtype=torch.float16)) if use_amp else contextlib.nullcontext
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    generator = torch.Generator().manual_seed(seed)

    print(f"training {architecture} on {device_name(device)}: {count_params(net):,} parameters, "
          f"{len(data.train_labels):,} training images, {plural(S.num_epochs, 'epoch')}")
    report = TrainingReport(architecture, S.num_epochs, live=plot)
    history: list[dict[str, float]] = []
    status = "finished"
    last_good = copy.deepcopy(net.state_dict())
    start = time.perf_counter()
    train_time = 0.0
    try:
        for epoch in range(1, S.num_epochs + 1):
            t0 = time.perf_counter()
            batches = report.progress(data.batches("train", S.batch_size, augment=S.augment, resize=S.resize,
                                                   generator=generator), total=steps, epoch=epoch)
            loss_sum, correct, n = train_epoch(net, batches, loss_fn, optimizer, schedule, autocast, scaler)
            loss = loss_sum.item() / n  # the epoch's one wait for the device
            if device.type == "cuda":
                torch.cuda.synchronize()
            seconds = time.perf_counter() - t0
            train_time += seconds
            if not math.isfinite(loss):
                status = "diverged"
                break
            test_acc = evaluate(net, data, "test", resize=S.resize)
            history.append(dict(epoch=epoch, train_loss=loss, train_acc=correct.item() / n, test_acc=test_acc,
                                examples_per_s=n / seconds, seconds=seconds))
            last_good = copy.deepcopy(net.state_dict())
            report.update(history)
    except KeyboardInterrupt:
        status = "interrupted"
        net.load_state_dict(last_good)
        print(f"Interrupted: training stopped during epoch {len(history) + 1}; the network keeps the weights "
              f"of {plural(len(history), 'finished epoch')}, and the record holds their history.")

    last = history[-1] if history else dict(train_loss=float("nan"), train_acc=0.0, test_acc=0.0)
    result = Result(
        chapter=S.chapter, architecture=architecture, profile=S.profile, device=device.type,
        device_name=device_name(device), num_epochs=len(history), parameters=count_params(net),
        macs=count_macs(net, input_size), input_size=input_size, test_acc=last["test_acc"],
        train_acc=last["train_acc"], train_loss=last["train_loss"],
        wall_time_s=time.perf_counter() - start,
        examples_per_s=sum(len(data.train_labels) for _ in history) / train_time if history else 0.0,
        status=status, history=history, settings=asdict(S), versions=versions(),
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )
    if status == "diverged":
        net.load_state_dict(last_good)
        raise TrainingDiverged(
            f"Training stopped in epoch {len(history) + 1}: the loss became NaN or infinite. The usual cause "
            f"is a learning rate that is too high (lr={S.lr}); try a smaller one, e.g. "
            f"S.replace(lr={S.lr / 10:g}). The network keeps the weights of the last finished epoch, and "
            f"this exception's .result holds the history of {plural(len(history), 'finished epoch')}.",
            result,
        )
    print(result.summary())
    return result
