"""The speedrun's plumbing (chapter 12): the clock, the seeds, the records and their tables, the profile.

The network and its image sides are chapter 12's own code (cells tagged ``model``); this module times a
recipe built from them, as ``benchmarks/speedrun.py`` (the record) and the chapter (one seed, on the reader's
machine) both do.

What a run's time counts, as airbench counts it for CIFAR-10: from the first training step to the end of the
final evaluation (every batch cut, augmented and resized, every step, the test-time augmentation). What it
does not count: loading the data (in memory as tensors before the clock starts), building the network,
choosing the precision, and a warm-up of a few steps of a throw-away network (oneDNN prepares its kernels
for each new input shape on first use; without the warm-up only the first seed would pay for that).
"""
from __future__ import annotations

import contextlib
import itertools
import json
import math
import os
import statistics
import time
from pathlib import Path
from typing import Callable, Sequence

import torch
from torch import nn

from .data import FashionMNIST
from .profiles import Settings, seed_everything
from .results import plural
from .train import (_accuracy, _check_sides, autocast_for, choose_precision, cpu_has_bf16, make_optimizer,
                    make_schedule, train_epoch)

GOAL_ACC, GOAL_S = 0.93, 60.0  # the goal: a mean test accuracy of 93 % over >= 5 seeds, each run <= 60 s
MIN_SEEDS = 5
SIDE = 28  # Fashion-MNIST's images, and the size every run is tested at

# What each ablation of benchmarks/speedrun.py takes out of the recipe
ABLATIONS = {
    "no-tta": "test images scored only as they are, not also mirrored",
    "no-label-smoothing": "plain cross-entropy (label_smoothing=0)",
    "no-augment": "no random crops and flips while training",
    "no-progressive": "every epoch at 28x28",
    "no-residual": "the blocks without their shortcut (a plain network)",
    "no-stride-2-stem": "a 3x3 convolution at 28x28 and a 2x2 max pooling instead of the 4x4 stride-2 stem",
    "no-channels-last": "the default memory order (channels first)",
    "fp32": "float32 throughout, whatever the CPU has",
}


def fastest_precision(build: Callable[[], nn.Module], data: FashionMNIST, S: Settings) -> str:
    """The arithmetic ``cnnbook.train`` chooses here: ``$CNNBOOK_PRECISION`` if it forces one, else float16
    on a CUDA GPU, and on a CPU bfloat16 where it has it and a short probe finds it faster, else float32."""
    return choose_precision(build(), S, data, data.device)[0]


def cpu_precision(precision: str) -> str:
    """The CPU's counterpart of a run's arithmetic, for profiling on the CPU: float16 is a GPU's choice (on a
    CPU it is emulated, many times slower): bfloat16 where the CPU has it, else float32."""
    if precision == "fp16":
        return "bf16" if cpu_has_bf16() else "fp32"
    return precision


def _net(build: Callable[[], nn.Module], channels_last: bool, device: torch.device | str = "cpu") -> nn.Module:
    """A fresh network from ``build()`` on ``device`` (the data's), channels-last if asked."""
    net = build().to(device)
    return net.to(memory_format=torch.channels_last) if channels_last else net


def timed_run(build: Callable[[], nn.Module], data: FashionMNIST, S: Settings, sides: Sequence[int], *,
              seed: int = 0, split: str = "test", tta: bool = True, channels_last: bool = True,
              precision: str = "fp32") -> dict:
    """Train a network from ``build()`` (seeded with ``seed``) with ``S`` at the image ``sides`` of each
    epoch, and evaluate it once on ``split``; the clock runs from the first training step to the end of the
    evaluation. Returns {seed, seconds, accuracy, train_loss, split, device}."""
    sides = _check_sides(sides, S)  # the same check as train's: one whole-number side per epoch
    seed_everything(seed)
    net = _net(build, channels_last, data.device)
    steps = data.num_batches("train", S.batch_size)
    optimizer = make_optimizer(net, S)
    schedule = make_schedule(optimizer, S, total_steps=S.num_epochs * steps)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=S.label_smoothing)
    scaler = torch.amp.GradScaler("cuda", enabled=precision == "fp16")  # float16 on CUDA needs loss scaling
    generator = torch.Generator().manual_seed(seed)  # the batches' order and augmentation
    autocast = (lambda: autocast_for(precision, data.device))  # noqa: E731
    start = time.perf_counter()
    for side in sides:
        batches = data.batches("train", S.batch_size, augment=S.augment, resize=side, generator=generator)
        loss_sum, _, n = train_epoch(net, batches, loss_fn, optimizer, schedule, autocast, scaler)
    acc = _accuracy(net, data, split, None, 1000, autocast(), tta)  # .item(): waits for the device
    seconds = time.perf_counter() - start
    return dict(seed=seed, seconds=seconds, accuracy=acc, train_loss=loss_sum.item() / n, split=split,
                device=data.device.type)


def warm_up(build: Callable[[], nn.Module], data: FashionMNIST, S: Settings, sides: Sequence[int], *,
            split: str = "test", channels_last: bool = True, precision: str = "fp32") -> None:
    """Untimed, on a throw-away network: two training steps at every image side and batch size the runs
    will see (the last batch of an epoch is smaller), and one evaluation batch."""
    net = _net(build, channels_last, data.device)
    optimizer = torch.optim.SGD(net.parameters(), lr=1e-9)
    X, y = next(data.batches("train", S.batch_size, shuffle=False))
    last = len(data.train_labels) % S.batch_size or S.batch_size
    for side in sorted(set(sides)):
        Xs = nn.functional.interpolate(X, size=(side, side), mode="bilinear") if side != SIDE else X
        for batch in sorted({len(y), min(last, len(y))}):
            for _ in range(2):
                with autocast_for(precision, data.device):
                    loss = nn.functional.cross_entropy(net(Xs[:batch]), y[:batch])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
    net.eval()
    with torch.inference_mode(), autocast_for(precision, data.device):
        for X, _ in data.batches(split, 1000, shuffle=False):
            net(X)
            break


def run_seeds(build: Callable[[], nn.Module], data: FashionMNIST, S: Settings, sides: Sequence[int], *,
              seeds: Sequence[int] = range(MIN_SEEDS), split: str = "test", tta: bool = True,
              channels_last: bool = True, precision: str = "fp32", verbose: bool = True) -> list[dict]:
    """The warm-up, then one :func:`timed_run` per seed, each printed as it ends."""
    warm_up(build, data, S, sides, split=split, channels_last=channels_last, precision=precision)
    runs = []
    for seed in seeds:
        r = timed_run(build, data, S, sides, seed=seed, split=split, tta=tta, channels_last=channels_last,
                      precision=precision)
        runs.append(r)
        if verbose:
            print(f"seed {seed}: {r['seconds']:5.1f} s  {split} accuracy {100 * r['accuracy']:.2f} %  "
                  f"(final training loss {r['train_loss']:.3f})", flush=True)
    return runs


# --- summaries and tables ---------------------------------------------------------------------------------
def _std(xs: Sequence[float]) -> float | None:
    return statistics.stdev(xs) if len(xs) > 1 else None


def summarise(runs: list[dict]) -> dict:
    """Mean and sample standard deviation of accuracy and seconds, the fraction of seeds at 93 % or more,
    and whether the goal is met (mean accuracy >= 93 % over >= 5 seeds, every run within 60 s)."""
    accs, secs = [r["accuracy"] for r in runs], [r["seconds"] for r in runs]
    summary = dict(seeds=len(runs), mean_acc=statistics.mean(accs), std_acc=_std(accs),
                   mean_seconds=statistics.mean(secs), std_seconds=_std(secs), max_seconds=max(secs),
                   reached=sum(a >= GOAL_ACC for a in accs) / len(accs),
                   within_time=sum(s <= GOAL_S for s in secs) / len(secs))
    summary["goal_met"] = (len(runs) >= MIN_SEEDS and summary["mean_acc"] >= GOAL_ACC
                           and summary["max_seconds"] <= GOAL_S)
    return summary


def summary_line(s: dict, split: str = "test") -> str:
    return (f"mean over {plural(s['seeds'], 'seed')}: {split} accuracy {pm(s['mean_acc'], s['std_acc'], 100)} %, "
            f"{pm(s['mean_seconds'], s['std_seconds'], digits=1)} s; {s['reached']:.0%} of seeds at "
            f"{100 * GOAL_ACC:.0f} % or more, {s['within_time']:.0%} within {GOAL_S:.0f} s; "
            f"goal {'met' if s['goal_met'] else 'not met'}")


def pm(mean: float, std: float | None, scale: float = 1.0, digits: int = 2) -> str:
    return f"{scale * mean:.{digits}f}" + ("" if std is None else f" ± {scale * std:.{digits}f}")


def markdown(record: dict) -> str:
    """A record as a Markdown table: one row per seed, then the mean, the fraction and the verdict."""
    m, s = record["machine"], record["summary"]
    split = "test" if record["split"] == "test" else "validation"
    ablation = ", ".join(record["ablate"]) or "none"
    lines = [f"Speedrun{' (smoke)' if record['smoke'] else ''}: {split} accuracy after "
             f"{plural(record['settings']['num_epochs'], 'epoch')}; ablation: {ablation}. "
             f"{m['cpu']}, {m['threads']} threads, torch {m['torch']}, {record['precision']} "
             f"(native bfloat16: {'yes' if m['native_bf16'] else 'no'}). {record['created']}.",
             "", f"| seed | training s | {split} accuracy (%) |", "|--:|--:|--:|"]
    lines += [f"| {r['seed']} | {r['seconds']:.1f} | {100 * r['accuracy']:.2f} |" for r in record["runs"]]
    lines += [f"| mean ± std | {pm(s['mean_seconds'], s['std_seconds'], digits=1)} | "
              f"{pm(s['mean_acc'], s['std_acc'], 100)} |", "",
              f"Seeds at {100 * GOAL_ACC:.0f} % or more: {s['reached']:.0%}; within {GOAL_S:.0f} s: "
              f"{s['within_time']:.0%}. Goal (mean ≥ {100 * GOAL_ACC:.1f} % over ≥ {MIN_SEEDS} seeds, each ≤ "
              f"{GOAL_S:.0f} s): {'met' if s['goal_met'] else 'not met'}."]
    return "\n".join(lines) + "\n"


def difference(a: dict, b: dict, key: str, paired: bool = True) -> tuple[float, float | None, bool]:
    """The difference of two records' mean ``key`` ("accuracy" or "seconds"), its standard error, and whether
    it was paired. Records of the same seeds are compared seed by seed (a paired comparison: the same seed
    starts both from the same weights and batch order, so the seeds' shared luck cancels): the standard error
    of the mean of the per-seed differences. Otherwise √(s_a²/n_a + s_b²/n_b). None with a single seed."""
    ra, rb = {r["seed"]: r[key] for r in a["runs"]}, {r["seed"]: r[key] for r in b["runs"]}
    if paired and set(ra) == set(rb) and len(ra) > 1:
        d = [ra[x] - rb[x] for x in ra]
        return statistics.mean(d), statistics.stdev(d) / math.sqrt(len(d)), True
    xa, xb = list(ra.values()), list(rb.values())
    if len(xa) < 2 or len(xb) < 2:
        return statistics.mean(xa) - statistics.mean(xb), None, False
    return (statistics.mean(xa) - statistics.mean(xb),
            math.sqrt(statistics.variance(xa) / len(xa) + statistics.variance(xb) / len(xb)), False)


def verdict(row: dict, full: dict, z: float = 2.0, time_floor: float = 0.0) -> str:
    """One sentence on what an ablation row shows against the full recipe: its accuracy (compared seed by
    seed) and its time, each within the noise (less than ``z`` standard errors of the difference) or not. A
    time difference below ``time_floor`` seconds is noise too: the machine's speed drifts between runs of
    the same recipe by more than the seeds' spread shows. A seed far below the others is named."""
    parts = []
    d, se, _ = difference(row, full, "accuracy")
    if se == 0:
        parts.append("accuracy identical to the recipe's, seed for seed")
    elif se is None:
        parts.append(f"accuracy {100 * d:+.2f} points (one seed: no noise estimate)")
    else:
        beyond = abs(d) >= z * se
        parts.append(f"accuracy {('higher' if d > 0 else 'lower') + ' beyond' if beyond else 'within'} the noise "
                     f"({100 * d:+.2f} ± {100 * se:.2f} points, seed by seed)")
    d, se, _ = difference(row, full, "seconds", paired=False)  # the machine's drift is not the seed's
    noise = max(z * se if se is not None else 0.0, time_floor)
    if abs(d) < noise:
        parts.append(f"time within the noise ({d:+.1f} s)")
    else:
        parts.append(f"time {'longer' if d > 0 else 'shorter'} beyond the noise ({d:+.1f} s, {d / full['summary']['mean_seconds']:+.0%})")
    accs = [r["accuracy"] for r in row["runs"]]
    if len(accs) >= 3:
        low = min(accs)
        others = sorted(accs)[1:]
        if statistics.mean(others) - low > max(0.01, 3 * statistics.stdev(others)):
            seed = next(r["seed"] for r in row["runs"] if r["accuracy"] == low)
            parts.append(f"seed {seed} ended far below the others ({100 * low:.2f} %, the rest "
                         f"{100 * min(others):.2f}–{100 * max(others):.2f} %)")
    return "; ".join(parts) + "."


def _sorted_records(records: list[dict]) -> tuple[list[dict], dict | None]:
    records = sorted(records, key=lambda r: (len(r["ablate"]), r["ablate"]))
    return records, next((r for r in records if not r["ablate"]), None)


def ablation_table(records: list[dict]) -> str:
    """One row per record (the full recipe first): epochs, seeds, mean accuracy and seconds, and the change
    in accuracy against the full recipe."""
    records, full = _sorted_records(records)
    base = full["summary"]["mean_acc"] if full else None
    lines = ["| taken out | epochs | seeds | accuracy (%) | Δ points | training s |", "|---|--:|--:|--:|--:|--:|"]
    for r in records:
        s = r["summary"]
        delta = "–" if full is None or r is full else f"{100 * (s['mean_acc'] - base):+.2f}"
        name = ", ".join(r["ablate"]) or "nothing (the recipe)"
        lines.append(f"| {name} | {r['settings']['num_epochs']} | {s['seeds']} | "
                     f"{pm(s['mean_acc'], s['std_acc'], 100)} | {delta} | "
                     f"{pm(s['mean_seconds'], s['std_seconds'], digits=1)} |")
    return "\n".join(lines) + "\n"


def verdicts(records: list[dict], time_floor: float = 0.0) -> str:
    """What each ablation row shows against the full recipe, a line each (:func:`verdict`), as a Markdown
    list."""
    records, full = _sorted_records(records)
    if full is None:
        return "No record of the full recipe: nothing to compare the rows with.\n"
    return "".join(f"- **{', '.join(r['ablate'])}**: {verdict(r, full, time_floor=time_floor)}\n"
                   for r in records if r is not full)


# --- the committed records --------------------------------------------------------------------------------
def records_dir() -> Path:
    """Where the benchmark's records are: ``benchmarks/results/`` in a checkout, else the copies installed
    with the package (``cnnbook/benchmarks/``), for a chapter opened alone in Colab."""
    from importlib.resources import files

    checkout = Path(__file__).resolve().parents[1] / "benchmarks" / "results"
    if checkout.is_dir():
        return checkout
    return Path(str(files("cnnbook") / "benchmarks"))


def load_record(name: str) -> dict | None:
    """The record ``<name>.json`` (e.g. "speedrun-cpu"), or None if it is not there."""
    path = records_dir() / f"{name}.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def load_records(split: str, folder: Path | None = None, epochs: int | None = 10) -> list[dict]:
    """The full-data records of ``split`` ("test" or "val") at ``epochs`` epochs (None: any) in ``folder``
    (default :func:`records_dir`): the recipe and its ablations, the first record of each where a rerun
    added another (``-run2``)."""
    records = []
    for path in sorted((folder or records_dir()).glob("speedrun-cpu*.json")):
        with contextlib.suppress(OSError, ValueError):
            records.append(json.loads(path.read_text(encoding="utf-8")))
    records = [r for r in records if r.get("split") == split and not r.get("smoke")
               and (epochs is None or r["settings"]["num_epochs"] == epochs)]
    first: dict[tuple, dict] = {}
    for r in sorted(records, key=lambda r: r["created"]):
        first.setdefault((tuple(r["ablate"]), r["settings"]["num_epochs"]), r)
    return list(first.values())


# --- where the time goes ----------------------------------------------------------------------------------
KINDS = (("convolution", ("conv",)), ("batch norm", ("batch_norm",)),
         ("ReLU", ("relu", "threshold", "clamp_min")), ("linear layer", ("aten::mm", "addmm")),
         ("max pooling", ("max_pool",)), ("optimiser", ("_foreach", "sgd")),
         ("resize and augmentation", ("upsample", "interpolate", "index", "where", "gather", "flip", "rand")),
         ("copies and casts", ("_to_copy", "copy_")))


def kind_of(op: str) -> str:
    """The kind of layer or step a profiled operation belongs to ("aten::native_batch_norm_backward": batch
    norm); the residual additions are "aten::add"."""
    name = op.lower()
    if name == "aten::add":
        return "residual addition"
    for kind, keys in KINDS:
        if any(k in name for k in keys):
            return kind
    return "other"


@contextlib.contextmanager
def _quiet_stderr():
    """Send what C++ code writes to the process's standard error (file descriptor 2) to nowhere meanwhile:
    the profiler's start and stop lines would otherwise land in a notebook's output."""
    try:
        saved = os.dup(2)
    except OSError:  # no file descriptor 2 (some embedded interpreters): nothing to silence
        yield
        return
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def profile_steps(build: Callable[[], nn.Module], data: FashionMNIST, S: Settings, *, side: int = SIDE,
                  steps: int = 20, precision: str = "fp32", channels_last: bool = True) -> list[tuple]:
    """Where the time of ``steps`` training steps at ``side`` goes: (kind of operation, milliseconds per step,
    share) rows, largest first, from torch.profiler's self CPU times (forward, backward and optimiser)."""
    from torch.profiler import ProfilerActivity, profile

    os.environ.setdefault("KINETO_LOG_LEVEL", "5")  # the profiler's C++ library logs to the terminal
    precision = cpu_precision(precision)
    if data.device.type != "cpu":  # the CPU's profile: what this module is about
        data = data.to("cpu")
    net = _net(build, channels_last, data.device)
    optimizer = make_optimizer(net, S)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=S.label_smoothing)
    scaler = torch.amp.GradScaler("cuda", enabled=False)
    schedule = make_schedule(optimizer, S, total_steps=10 * steps)
    def first(n: int, seed: int):  # the first n training batches (cut, augmented, resized), made as used
        return itertools.islice(data.batches("train", S.batch_size, augment=S.augment, resize=side,
                                             generator=torch.Generator().manual_seed(seed)), n)

    train_epoch(net, first(3, 0), loss_fn, optimizer, schedule, lambda: autocast_for(precision), scaler)
    steps = min(steps, data.num_batches("train", S.batch_size))  # a small subset has fewer batches
    with _quiet_stderr(), profile(activities=[ProfilerActivity.CPU]) as prof:
        train_epoch(net, first(steps, 1), loss_fn, optimizer, schedule, lambda: autocast_for(precision),
                    scaler)
    totals: dict[str, float] = {}
    for event in prof.key_averages():
        totals[kind_of(event.key)] = totals.get(kind_of(event.key), 0.0) + event.self_cpu_time_total
    whole = sum(totals.values())
    return sorted(((k, v / 1000 / steps, v / whole) for k, v in totals.items()), key=lambda r: -r[1])


def layer_times(net: nn.Sequential, batch_size: int = 256, side: int = SIDE, *, repeats: int = 10,
                precision: str = "fp32", channels_last: bool = True) -> list[tuple]:
    """Milliseconds per training step of each top-level layer of ``net`` (forward and backward, at
    ``batch_size`` images of ``side`` x ``side``, in training mode): (index, layer name, output shape,
    milliseconds) rows. Each layer is timed alone on the output the layers before it give, the fastest of
    ``repeats`` passes. On the CPU: float16 is profiled as :func:`cpu_precision` says."""
    precision = cpu_precision(precision)
    net = net.cpu().train()
    X = torch.randn(batch_size, 1, side, side)
    if channels_last:
        net, X = net.to(memory_format=torch.channels_last), X.contiguous(memory_format=torch.channels_last)
    rows = []
    for i, layer in enumerate(net):
        X = X.detach().requires_grad_(i > 0)  # the images need no gradient; later layers' inputs do
        best = math.inf
        for _ in range(repeats + 2):  # two untimed passes: oneDNN prepares its kernels
            t0 = time.perf_counter()
            with autocast_for(precision):
                Y = layer(X)
            Y.float().sum().backward()
            best = min(best, time.perf_counter() - t0)
        rows.append((i, type(layer[0]).__name__ if isinstance(layer, nn.Sequential) else type(layer).__name__,
                     tuple(Y.shape[1:]), 1000 * best))
        X = Y
    return rows


def record_table(records: list[dict]) -> str:
    """Records of the benchmark side by side, a column each: every seed's accuracy and seconds, the mean and
    spread of each, the fraction of seeds at 93 % and the verdict; then the machines they ran on."""
    seeds = sorted({r["seed"] for record in records for r in record["runs"]})
    heads = [f"run {k} ({r['settings']['num_epochs']} ep.)" for k, r in enumerate(records, 1)]
    lines = ["| seed | " + " | ".join(heads) + " |", "|---|" + "--:|" * len(records)]
    for x in seeds:
        cells = []
        for record in records:
            run = next((r for r in record["runs"] if r["seed"] == x), None)
            cells.append(f"{100 * run['accuracy']:.2f} %, {run['seconds']:.0f} s" if run else "–")
        lines.append(f"| {x} | " + " | ".join(cells) + " |")
    summaries = [r["summary"] for r in records]
    lines.append("| **accuracy (%)** | " + " | ".join(f"**{pm(s['mean_acc'], s['std_acc'], 100)}**"
                                                     for s in summaries) + " |")
    lines.append("| **seconds** | " + " | ".join(pm(s["mean_seconds"], s["std_seconds"], digits=1)
                                              for s in summaries) + " |")
    lines.append(f"| seeds at {100 * GOAL_ACC:.0f} % | " + " | ".join(f"{s['reached']:.0%}" for s in summaries) + " |")
    lines.append("| goal | " + " | ".join("met" if s["goal_met"] else "not met" for s in summaries) + " |")
    machines = []
    for k, record in enumerate(records, 1):
        m = record["machine"]
        machines.append(f"run {k}: {record['split']} split, {plural(record['settings']['num_epochs'], 'epoch')}, "
                        f"{m['cpu']}, {m['threads']} threads, {record['precision']}, torch {m['torch']}, "
                        f"{record['created'][:10]}")
    return ("\n".join(lines) + "\n\nMean ± standard deviation over the seeds. " + "; ".join(machines) + ".\n")
