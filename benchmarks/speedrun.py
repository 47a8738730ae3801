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
import platform
import sys
import tempfile
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import cnnbook  # noqa: E402
from cnnbook.book import chapter_code  # noqa: E402
from cnnbook.profiles import cpu_model  # noqa: E402
from cnnbook.results import plural, write_json_atomically, write_text_atomically  # noqa: E402
from cnnbook.speedrun import (ABLATIONS, GOAL_ACC, GOAL_S, SIDE, ablation_table, load_records,  # noqa: E402
                              markdown, run_seeds, summarise, summary_line)
from cnnbook.train import choose_precision, cpu_has_bf16  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
CHAPTER = chapter_code("12_speedrun.ipynb")  # the network and its image sides: chapter 12's own code

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
# Throughput (bfloat16, channels-last, batch 256, one batch in memory): (16, 32, 64) 10,000-10,700 images/s,
# (16, 48, 96) 7,800, (24, 48, 96) 5,000 -- about 36-52 G multiply-adds per second each: wider networks cost
# what their arithmetic costs.
# torch.compile (inductor, this CPU) trained the recipe's network at 5,400 images/s against 9,900 eager, after
# 32 s of compiling: not used.
RECIPE = cnnbook.settings("speedrun", "cpu")  # the one source: cnnbook's profile table
# What Settings has no field for: test-time flips, the memory layout, the first epoch's image side
TRICKS = dict(tta=True, channels_last=True, first_side=CHAPTER.FIRST_SIDE)


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
        elif name == "no-stride-2-stem":
            S = S.replace(model={**S.model, "stem": "3x3+pool"})
        elif name == "no-channels-last":
            tricks["channels_last"] = False
        elif name == "fp32":
            precision = "fp32"
        else:
            raise ValueError(f"unknown ablation {name!r}: use one of {', '.join(ABLATIONS)}")
    return S, tricks, precision


def default_out(split: str, ablate: list[str], epochs: int | None = None) -> Path:
    """benchmarks/results/speedrun-cpu[-val][-<ablation>...][-<N>-epochs]: an ablation, a validation run or
    another number of epochs never replaces the record of the full recipe on the test set."""
    extra = [f"{epochs}-epochs"] if epochs not in (None, RECIPE.num_epochs) else []
    return RESULTS / "-".join(["speedrun-cpu", *(["val"] if split == "val" else []), *ablate, *extra])


def unused(out: Path) -> Path:
    """``out`` if no record is there yet, else the first free ``out-run2``, ``out-run3``...: a rerun adds a
    record, it never replaces one (give --out to choose the name)."""
    candidate, k = out, 1
    while candidate.with_name(candidate.name + ".json").exists():
        k += 1
        candidate = out.with_name(f"{out.name}-run{k}")
    return candidate


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
    records = load_records(args.split, folder, args.epochs or RECIPE.num_epochs)
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
    build = lambda: CHAPTER.speedrun_net(**S.model)  # noqa: E731
    sides = CHAPTER.image_sides(S.num_epochs, tricks["first_side"])
    net = build()
    precision, why = choose_precision(net, S, data, torch.device("cpu"), wanted)
    params, macs = cnnbook.count_params(net), cnnbook.count_macs(net, (1, 1, SIDE, SIDE))
    machine = dict(cpu=cpu_model(), threads=torch.get_num_threads(), native_bf16=cpu_has_bf16(),
                   torch=torch.__version__, python=platform.python_version(), cnnbook=cnnbook.__version__)
    print(f"speedrun on {machine['cpu']}, {machine['threads']} threads, torch {machine['torch']}; {why}; "
          f"native bfloat16: {'yes' if machine['native_bf16'] else 'no'}")
    print(f"{params:,} parameters, {macs / 1e6:.1f} M multiply-adds per 28x28 image; "
          f"{len(data.train_labels):,} training images, {plural(S.num_epochs, 'epoch')} of sides "
          f"{sides}; {args.split} on "
          f"{len(data.split(args.split)[1]):,} images; ablation: {', '.join(args.ablate) or 'none'}",
          flush=True)
    runs = run_seeds(build, data, S, sides, seeds=range(args.seeds), split=args.split, tta=tricks["tta"],
                     channels_last=tricks["channels_last"], precision=precision)
    summary = summarise(runs)
    print(summary_line(summary, args.split))
    record = dict(created=datetime.now(timezone.utc).isoformat(timespec="seconds"), split=args.split,
                  smoke=args.smoke, ablate=args.ablate, settings=asdict(S), tricks=tricks,
                  sides=sides, precision=precision,
                  precision_reason=why, parameters=params, macs=macs, machine=machine,
                  goal=dict(accuracy=GOAL_ACC, seconds=GOAL_S), runs=runs, summary=summary)
    out = args.out or (Path(tempfile.mkdtemp(prefix="speedrun-smoke-")) / "speedrun-cpu" if args.smoke
                       else unused(default_out(args.split, args.ablate, args.epochs)))
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
