"""The speedrun (issue 24): 93 % on Fashion-MNIST's test set after 60 seconds of training on 2 CPU cores.

    make speedrun                                    # 5 seeds on the test set: the record
    python benchmarks/speedrun.py --split val        # the same on the validation split: choosing settings
    python benchmarks/speedrun.py --ablate no-tta    # one idea taken out (--ablate may be repeated)
    python benchmarks/speedrun.py --table            # the ablation table, from the records written so far
    python benchmarks/speedrun.py --smoke            # a tiny subset and one epoch: checks that it runs

The goal: a mean test accuracy of at least 93.0 % over at least 5 seeds, each run training for at most 60 s
on a 2-core CPU. What a run's time counts, as airbench counts it for CIFAR-10: from the first training step
to the end of the final evaluation (every batch cut, augmented and resized, every step, the test-time
augmentation). What it does not count: loading the data (it is in memory as tensors before the clock
starts), building the network, choosing the precision, and a warm-up of a few steps of a throw-away
network (oneDNN prepares its kernels for each new input shape on first use; without the warm-up only the
first seed would pay for that).

The recipe uses only what the book teaches: convolutions, batch normalisation, residual connections,
global average pooling, label smoothing, the one-cycle schedule, random crops and flips, bfloat16
autocast where the CPU has it (``cnnbook``'s own choice), channels-last memory; plus three small ideas:
a stride-2 first convolution (the 28x28 image is 14x14 after it), progressively larger images (the first
epochs see them shrunk, the last ones at 28x28, the size they are tested at) and test-time augmentation
(each test image is scored as it is and mirrored, and the two scores added).

Settings were chosen on the validation split (``--split val``); the test set (``--split test``, the
default) is evaluated once per seed, at the end. Both splits train on the book's 55,000 training images.
Each run prints seed, seconds and accuracy, then the mean ± sample standard deviation, the fraction of
seeds at 93 % or more, the processor, threads, torch version and precision; the record goes to
``benchmarks/results/speedrun-cpu[-val][-<ablation>].json`` and ``.md`` (``--smoke``: a temporary folder).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import cnnbook  # noqa: E402
from cnnbook.profiles import cpu_model, seed_everything  # noqa: E402
from cnnbook.results import plural, write_json_atomically, write_text_atomically  # noqa: E402
from cnnbook.train import (choose_precision, cpu_has_bf16, make_optimizer, make_schedule,  # noqa: E402
                           train_epoch)

RESULTS = ROOT / "benchmarks" / "results"
GOAL_ACC, GOAL_S = 0.93, 60.0
SIDE = 28  # Fashion-MNIST's images, and the size every run is tested at

# --- the recipe (chosen on the validation split) ----------------------------------------------------------
# Single-seed runs (seed 0) on the validation split, 2-core Intel Xeon with AMX (bfloat16), December 2026:
# validation accuracy and seconds. One seed's standard error on 5,000 images is about 0.38 points, so most of
# these are ties; the recipe is the fastest of them. None reaches the goal: the book's records score 0.1-0.5
# points lower on the test set than on the validation split, and 60 s buy about 10 epochs of this network.
#   this recipe: widths (16, 32, 64), 10 epochs from 20x20 .................. 92.22 %  46.7 s
#     ... without test-time flips (the same trained network) ................ 92.00 %
#     ... without augmentation .............................................. 92.30 %  49.5 s
#     ... lr 0.4 ............................................................ 92.24 %  48.6 s
#     ... batch 128, lr 0.1 ................................................. 92.20 %  55.9 s
#     ... 8 epochs, all at 28x28 ............................................ 91.92 %  42.2 s
#     ... 12 epochs from 16x16 .............................................. 92.18 %  59.1 s
#     ... two blocks in the second stage .................................... 92.16 %  57.6 s
#     ... 3x3 first convolution at 28x28 and 2x2 max pooling, 8 epochs ...... 91.98 %  52.5 s
#   widths (16, 48, 96), 8 epochs ........................................... 92.14 %  50.8 s
# Widths that are multiples of 16 suit oneDNN's kernels: (24, 48, 96) trains at 5,000 images/s, (16, 48, 96)
# at 7,800 and (16, 32, 64) at 10,000-10,700 (bfloat16, channels-last, batch 256, one batch in memory).
RECIPE = cnnbook.Settings(
    chapter="speedrun", profile="cpu", num_epochs=10, batch_size=256, lr=0.2, optimizer="sgd", momentum=0.9,
    weight_decay=5e-4, schedule="onecycle", label_smoothing=0.1, augment=True,
    model=dict(widths=(16, 32, 64), blocks=(1, 1, 1), residual=True),
)
# What Settings has no field for: test-time flips, the memory layout, the first epoch's image side
TRICKS = dict(tta=True, channels_last=True, first_side=20)

# Each ablation takes one idea out of the recipe.
ABLATIONS = {
    "no-tta": "test images scored only as they are, not also mirrored",
    "no-label-smoothing": "plain cross-entropy (label_smoothing=0)",
    "no-augment": "no random crops and flips while training",
    "no-progressive": "every epoch at 28x28",
    "no-residual": "the blocks without their shortcut (a plain network)",
    "no-channels-last": "the default memory order (channels first)",
    "fp32": "float32 throughout, whatever the CPU has",
}


def ablated(names: list[str]) -> tuple[cnnbook.Settings, dict, str | None]:
    """The recipe with the ideas in ``names`` taken out: (settings, tricks, precision or None for the book's
    choice)."""
    S, tricks, precision = RECIPE, dict(TRICKS), None
    for name in names:
        if name == "no-tta":
            tricks["tta"] = False
        elif name == "no-label-smoothing":
            S = S.replace(label_smoothing=0.0)
        elif name == "no-augment":
            S = S.replace(augment=False)
        elif name == "no-progressive":
            tricks["first_side"] = SIDE
        elif name == "no-residual":
            S = S.replace(model={**S.model, "residual": False})
        elif name == "no-channels-last":
            tricks["channels_last"] = False
        elif name == "fp32":
            precision = "fp32"
        else:
            raise ValueError(f"unknown ablation {name!r}: use one of {', '.join(ABLATIONS)}")
    return S, tricks, precision


# --- the network ------------------------------------------------------------------------------------------
def conv_bn(in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
            padding: int | None = None) -> list[nn.Module]:
    """A convolution without bias (the batch norm after it has one) and its batch normalisation."""
    padding = kernel_size // 2 if padding is None else padding
    return [nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, bias=False),
            nn.BatchNorm2d(out_channels)]


class BasicBlock(nn.Module):
    """The ResNet chapter's basic block at a constant width: ReLU(F(X) + X), F = two 3x3 convolutions with
    batch norm. ``shortcut=False`` leaves out the "+ X" (the plain block, for the ablation)."""

    def __init__(self, channels: int, shortcut: bool = True):
        super().__init__()
        self.residual = nn.Sequential(*conv_bn(channels, channels), nn.ReLU(inplace=True),
                                      *conv_bn(channels, channels))
        self.shortcut = shortcut
        self.relu = nn.ReLU(inplace=True)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        Y = self.residual(X)
        return self.relu(Y + X if self.shortcut else Y)


def speedrun_net(widths: tuple[int, ...] = (16, 32, 64), blocks: tuple[int, ...] = (1, 1, 1),
                 residual: bool = True) -> nn.Sequential:
    """A small ResNet for 28x28 images: a stride-2 first convolution, then one stage per width with
    ``blocks`` basic blocks each (every stage after the first starts with a 2x2 max pooling and a 3x3
    convolution that widens), global average pooling and a linear layer. The side shrinks early, where the
    feature maps are largest: on a CPU the per-pixel work (batch norm, ReLU, memory traffic) costs as much
    as the convolutions' arithmetic."""
    stem = [*conv_bn(1, widths[0], 4, stride=2, padding=1), nn.ReLU(inplace=True)]  # 28 => 14
    layers = [nn.Sequential(*stem)]
    for i, (width, num_blocks) in enumerate(zip(widths, blocks)):
        if i > 0:  # 14 => 7 => 4 (the odd side rounded up)
            layers.append(nn.Sequential(nn.MaxPool2d(2, ceil_mode=True), *conv_bn(widths[i - 1], width),
                                        nn.ReLU(inplace=True)))
        layers += [BasicBlock(width, residual) for _ in range(num_blocks)]
    layers.append(nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(widths[-1], 10)))
    net = nn.Sequential(*layers)
    for m in net.modules():  # He initialisation, as in the ResNet chapter
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
    return net


# --- training and evaluation ------------------------------------------------------------------------------
# The loop is written here, not run by cnnbook.train, because train cannot express the recipe: it measures
# the validation split after every epoch (inside the timed run; without a validation split, the whole
# training split), it keeps one image size for the whole run, it has no test-time augmentation, and it
# always uses channels-last (no ablation). It reuses train's pieces: the optimiser, the one-cycle schedule,
# the precision choice and train_epoch, the loop over the batches itself.
def image_sides(num_epochs: int, first_side: int) -> list[int]:
    """The side of the training images in each epoch: from ``first_side`` up to 28 in even steps over the
    first half of the epochs, then 28 (the network ends at the size it is tested at; one epoch: 28)."""
    ramp = num_epochs // 2
    return [SIDE - 2 * round((SIDE - first_side) * (ramp - epoch) / ramp / 2) if epoch < ramp else SIDE
            for epoch in range(num_epochs)]


def autocast_for(precision: str):
    """A fresh context that computes in ``precision`` ("bf16": bfloat16 autocast; "fp32": as is)."""
    return torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16" else contextlib.nullcontext()


@torch.inference_mode()
def accuracy(net: nn.Module, data: cnnbook.FashionMNIST, split: str, tta: bool, precision: str) -> float:
    """Accuracy on a split; with ``tta`` each image is scored as it is and mirrored, and the scores added."""
    net.eval()
    correct = torch.zeros((), dtype=torch.long)
    with autocast_for(precision):
        for X, y in data.batches(split, 1000, shuffle=False):
            scores = net(X)
            if tta:
                scores = scores + net(X.flip(3))
            correct += (scores.argmax(dim=1) == y).sum()
    return correct.item() / len(data.split(split)[1])


def make_net(S: cnnbook.Settings, tricks: dict) -> nn.Module:
    net = speedrun_net(**S.model)
    return net.to(memory_format=torch.channels_last) if tricks["channels_last"] else net


def run(seed: int, data: cnnbook.FashionMNIST, split: str, S: cnnbook.Settings, tricks: dict,
        precision: str) -> dict:
    """Train one network from ``seed`` and evaluate it once on ``split``; the clock runs from the first
    training step to the end of the evaluation."""
    seed_everything(seed)
    net = make_net(S, tricks)
    steps = data.num_batches("train", S.batch_size)
    optimizer = make_optimizer(net, S)
    schedule = make_schedule(optimizer, S, total_steps=S.num_epochs * steps)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=S.label_smoothing)
    scaler = torch.amp.GradScaler("cuda", enabled=False)  # loss scaling is for float16 on CUDA only
    generator = torch.Generator().manual_seed(seed)  # the batches' order and augmentation
    start = time.perf_counter()
    for side in image_sides(S.num_epochs, tricks["first_side"]):
        batches = data.batches("train", S.batch_size, augment=S.augment, resize=side, generator=generator)
        loss_sum, _, n = train_epoch(net, batches, loss_fn, optimizer, schedule,
                                     lambda: autocast_for(precision), scaler)
    acc = accuracy(net, data, split, tricks["tta"], precision)
    seconds = time.perf_counter() - start
    return dict(seed=seed, seconds=seconds, accuracy=acc, train_loss=loss_sum.item() / n)


def warm_up(data: cnnbook.FashionMNIST, split: str, S: cnnbook.Settings, tricks: dict,
            precision: str) -> None:
    """Untimed, on a throw-away network: two training steps at every image side and batch size the runs
    will see (the last batch of an epoch is smaller), and one evaluation batch."""
    net = make_net(S, tricks)
    optimizer = torch.optim.SGD(net.parameters(), lr=1e-9)
    X, y = next(data.batches("train", S.batch_size, shuffle=False))
    last = len(data.train_labels) % S.batch_size or S.batch_size
    for side in sorted(set(image_sides(S.num_epochs, tricks["first_side"]))):
        Xs = nn.functional.interpolate(X, size=(side, side), mode="bilinear") if side != SIDE else X
        for batch in sorted({len(y), min(last, len(y))}):
            for _ in range(2):
                with autocast_for(precision):
                    loss = nn.functional.cross_entropy(net(Xs[:batch]), y[:batch])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
    net.eval()
    with torch.inference_mode(), autocast_for(precision):
        for X, _ in data.batches(split, 1000, shuffle=False):
            net(X)
            break


# --- reporting --------------------------------------------------------------------------------------------
def summarise(runs: list[dict]) -> dict:
    """Mean and sample standard deviation of accuracy and seconds, the fraction of seeds at 93 % or more,
    and whether the goal is met (mean accuracy >= 93 %, every run within 60 s)."""
    accs, secs = [r["accuracy"] for r in runs], [r["seconds"] for r in runs]
    std = (lambda xs: statistics.stdev(xs) if len(xs) > 1 else None)  # noqa: E731
    summary = dict(seeds=len(runs), mean_acc=statistics.mean(accs), std_acc=std(accs),
                   mean_seconds=statistics.mean(secs), std_seconds=std(secs), max_seconds=max(secs),
                   reached=sum(a >= GOAL_ACC for a in accs) / len(accs),
                   within_time=sum(s <= GOAL_S for s in secs) / len(secs))
    summary["goal_met"] = (len(runs) >= 5 and summary["mean_acc"] >= GOAL_ACC
                           and summary["max_seconds"] <= GOAL_S)
    return summary


def pm(mean: float, std: float | None, scale: float = 1.0, digits: int = 2) -> str:
    return f"{scale * mean:.{digits}f}" + ("" if std is None else f" ± {scale * std:.{digits}f}")


def markdown(record: dict) -> str:
    """The record as a Markdown table: one row per seed, then the mean, the fraction and the verdict."""
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
              f"{s['within_time']:.0%}. Goal (mean ≥ {100 * GOAL_ACC:.1f} % over ≥ 5 seeds, each ≤ "
              f"{GOAL_S:.0f} s): {'met' if s['goal_met'] else 'not met'}."]
    return "\n".join(lines) + "\n"


def ablation_table(records: list[dict]) -> str:
    """One row per record (the full recipe first): mean accuracy and seconds, and the change in accuracy
    against the full recipe."""
    records = sorted(records, key=lambda r: (len(r["ablate"]), r["ablate"]))
    full = next((r for r in records if not r["ablate"]), None)
    base = full["summary"]["mean_acc"] if full else None
    lines = ["| recipe | epochs | seeds | accuracy (%) | Δ points | training s |",
             "|---|--:|--:|--:|--:|--:|"]
    for r in records:
        s = r["summary"]
        delta = "–" if full is None or r is full else f"{100 * (s['mean_acc'] - base):+.2f}"
        name = ", ".join(r["ablate"]) or "full recipe"
        lines.append(f"| {name} | {r['settings']['num_epochs']} | {s['seeds']} | "
                     f"{pm(s['mean_acc'], s['std_acc'], 100)} | {delta} | "
                     f"{pm(s['mean_seconds'], s['std_seconds'], digits=1)} |")
    return "\n".join(lines) + "\n"


def default_out(split: str, ablate: list[str]) -> Path:
    """benchmarks/results/speedrun-cpu[-val][-<ablation>...]: an ablation or a validation run never
    replaces the record of the full recipe on the test set."""
    return RESULTS / "-".join(["speedrun-cpu", *(["val"] if split == "val" else []), *ablate])


def inside(path: Path, folder: Path) -> bool:
    return path.resolve().is_relative_to(folder.resolve())


# --- the command ------------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--split", choices=("test", "val"), default="test",
                        help="evaluate on the test set (default) or the validation split")
    parser.add_argument("--seeds", type=int, default=5, help="runs, seeded 0, 1, ... (default 5)")
    parser.add_argument("--epochs", type=int, help=f"epochs (default {RECIPE.num_epochs})")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    parser.add_argument("--ablate", action="append", default=[], choices=list(ABLATIONS), metavar="NAME",
                        help="take one idea out (may be repeated): "
                             + "; ".join(f"{k}: {v}" for k, v in ABLATIONS.items()))
    parser.add_argument("--smoke", action="store_true",
                        help="a tiny subset, one epoch: checks that it runs (writes to a temporary folder)")
    parser.add_argument("--out", type=Path, help="where to write <out>.json and <out>.md (default: "
                        "benchmarks/results/speedrun-cpu[-val][-<ablation>])")
    parser.add_argument("--table", action="store_true",
                        help="only write the ablation table (speedrun-ablations-cpu[-val].md) from records")
    args = parser.parse_args(argv)
    if args.seeds < 1 or (args.epochs is not None and args.epochs < 1) or (args.threads or 1) < 1:
        parser.error("--seeds, --epochs and --threads must be at least 1")
    if args.out is not None and args.out.suffix in (".json", ".md"):
        args.out = args.out.with_suffix("")
    if args.smoke and args.out is not None and inside(args.out, RESULTS):
        parser.error("a smoke run never writes into benchmarks/results/: give another --out, or none")
    return args


def write_table(args: argparse.Namespace) -> dict:
    folder = args.out.parent if args.out else RESULTS
    stem = "speedrun-cpu-val" if args.split == "val" else "speedrun-cpu"
    records = [json.loads(p.read_text()) for p in sorted(folder.glob("speedrun-cpu*.json"))]
    records = [r for r in records if r["split"] == args.split and not r["smoke"]]
    if not records:
        print(f"No {args.split} records in {folder}: run the speedrun first.")
        return {}
    table = ablation_table(records)
    path = folder / f"{stem.replace('speedrun-cpu', 'speedrun-ablations-cpu')}.md"
    write_text_atomically(path, table)
    print(table + f"wrote {path}")
    return dict(table=table, files=[str(path)])


def main(argv: list[str] | None = None) -> dict:
    """Run the speedrun as the command line says; returns the record (or, with --table, the table)."""
    args = parse_args(argv)
    if args.table:
        return write_table(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    S, tricks, wanted = ablated(args.ablate)
    if args.smoke:
        S = S.replace(num_epochs=1, train_subset=1024, val_subset=500, test_subset=500)
    if args.epochs:
        S = S.replace(num_epochs=args.epochs)
    data = cnnbook.load_fashion_mnist(device="cpu", train_subset=S.train_subset, val_subset=S.val_subset,
                                      test_subset=S.test_subset)
    net = make_net(S, tricks)
    precision, why = choose_precision(net, S, data, torch.device("cpu"), wanted)
    params, macs = cnnbook.count_params(net), cnnbook.count_macs(net, (1, 1, SIDE, SIDE))
    machine = dict(cpu=cpu_model(), threads=torch.get_num_threads(), native_bf16=cpu_has_bf16(),
                   torch=torch.__version__, python=platform.python_version(), cnnbook=cnnbook.__version__)
    print(f"speedrun on {machine['cpu']}, {machine['threads']} threads, torch {machine['torch']}; {why}; "
          f"native bfloat16: {'yes' if machine['native_bf16'] else 'no'}")
    print(f"{params:,} parameters, {macs / 1e6:.1f} M multiply-adds per 28x28 image; "
          f"{len(data.train_labels):,} training images, {plural(S.num_epochs, 'epoch')} of sides "
          f"{image_sides(S.num_epochs, tricks['first_side'])}; {args.split} on "
          f"{len(data.split(args.split)[1]):,} images; ablation: {', '.join(args.ablate) or 'none'}",
          flush=True)
    warm_up(data, args.split, S, tricks, precision)
    runs = []
    for seed in range(args.seeds):
        r = run(seed, data, args.split, S, tricks, precision)
        runs.append(r)
        print(f"seed {seed}: {r['seconds']:5.1f} s  {args.split} accuracy {100 * r['accuracy']:.2f} %  "
              f"(final training loss {r['train_loss']:.3f})", flush=True)
    summary = s = summarise(runs)
    print(f"mean over {plural(len(runs), 'seed')}: {args.split} accuracy "
          f"{pm(s['mean_acc'], s['std_acc'], 100)} %, {pm(s['mean_seconds'], s['std_seconds'], digits=1)} s; "
          f"{s['reached']:.0%} of seeds at "
          f"{100 * GOAL_ACC:.0f} % or more, {s['within_time']:.0%} within {GOAL_S:.0f} s; "
          f"goal {'met' if s['goal_met'] else 'not met'}")
    record = dict(created=datetime.now(timezone.utc).isoformat(timespec="seconds"), split=args.split,
                  smoke=args.smoke, ablate=args.ablate, settings=asdict(S), tricks=tricks,
                  sides=image_sides(S.num_epochs, tricks["first_side"]), precision=precision,
                  precision_reason=why, parameters=params, macs=macs, machine=machine,
                  goal=dict(accuracy=GOAL_ACC, seconds=GOAL_S), runs=runs, summary=summary)
    out = args.out or (Path(tempfile.mkdtemp(prefix="speedrun-smoke-")) / "speedrun-cpu" if args.smoke
                       else default_out(args.split, args.ablate))
    out.parent.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out.parent / f"{out.name}.json", out.parent / f"{out.name}.md"
    record["files"] = [str(json_path), str(md_path)]
    write_json_atomically(json_path, record)
    write_text_atomically(md_path, markdown(record))
    print(f"wrote {out}.json and .md" + (" (a smoke run: a temporary folder)" if args.smoke and not args.out
                                        else ""))
    return record


if __name__ == "__main__":
    main()
