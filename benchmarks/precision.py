"""float32 or bfloat16? Every chapter's cpu-profile network, trained both ways on this CPU.

    make bench                          # runs this after speed.py
    python benchmarks/precision.py [--chapters lenet nin] [--seconds 3] [--images 11000]
    python benchmarks/precision.py --accuracy training lenet    # whole runs in both precisions

For each chapter's ``cpu`` form (built by the chapter's own code) and each precision, two figures:

  model only  = training images/s of forward + backward + optimiser step on one batch already in
                memory (the chapter's optimiser, loss and batch size; channels-last), median of 3 timings
  whole loop  = training images/s of ``cnnbook.train`` itself (batches cut, normalised and augmented as
                in the chapter, the schedule, the bookkeeping), one epoch on a class-balanced subset,
                validation excluded; loop / model = the share of the ceiling the loop reaches

and the choice ``cnnbook.train`` makes on this machine with ``precision="auto"`` (bf16 only where the
CPU has native bfloat16 and a short probe finds it at least
BF16_MIN_SPEEDUP (1.05x) faster). Writes
benchmarks/results/precision-<device>.json and .md (the table of the book's speed appendix).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("CNNBOOK_PROGRESS", "0")  # no progress bars in the benchmark's output

import cnnbook  # noqa: E402
from cnnbook.book import NETWORKS, build_network  # noqa: E402
from cnnbook.train import BF16_MIN_SPEEDUP, choose_precision, cpu_has_bf16, fast_memory_format, make_optimizer  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
BF16_FLAGS = ("avx512_bf16", "amx_bf16", "amx_tile", "avx512f", "avx2", "bf16")


def cpu_flags() -> list[str]:
    """The CPU flags that matter for bfloat16 (from /proc/cpuinfo), present on this machine."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                present = set(line.split(":", 1)[1].split())
                return [f for f in BF16_FLAGS if f in present]
    return []


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "unknown CPU"


def autocast(precision: str):
    return torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16" else contextlib.nullcontext()


def model_only(chapter: str, precision: str, seconds: float, repeats: int = 3) -> float:
    """Images/s of the bare training step (one batch in memory), median of ``repeats`` timings."""
    torch.manual_seed(0)
    S = cnnbook.settings(chapter, "cpu")
    fmt = fast_memory_format(torch.device("cpu"))
    net = build_network(chapter, "cpu").to(memory_format=fmt)
    side = S.resize or 28
    X = torch.randn(S.batch_size, 1, side, side).contiguous(memory_format=fmt)
    y = torch.randint(0, 10, (S.batch_size,))
    optimizer = make_optimizer(net, S)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=S.label_smoothing)

    def step():
        with autocast(precision):
            loss = loss_fn(net(X), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(3):
        step()
    rates = []
    for _ in range(repeats):
        steps, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            step()
            steps += 1
        rates.append(steps * S.batch_size / (time.perf_counter() - start))
    return statistics.median(rates)


def whole_loop(chapter: str, precision: str, data) -> float:
    """Training images/s of cnnbook.train for one epoch on ``data`` (validation excluded)."""
    torch.manual_seed(0)
    S = cnnbook.settings(chapter, "cpu").replace(num_epochs=1)
    r = cnnbook.train(build_network(chapter, "cpu"), data, S, verbose=False, precision=precision)
    return r.examples_per_s


def accuracy(chapters: list[str]) -> int:
    """Train each chapter's cpu form as its chapter does (same seed, data, settings) in fp32 and in bf16,
    and compare the test accuracies with their standard errors: bf16 must stay within the noise."""
    data = cnnbook.load_fashion_mnist(device="cpu")
    rows = []
    for chapter in chapters:
        row = dict(chapter=chapter)
        for precision in ("fp32", "bf16"):
            cnnbook.profiles.seed_everything(0)
            r = cnnbook.train(build_network(chapter, "cpu"), data, cnnbook.settings(chapter, "cpu"),
                              verbose=False, test=True, precision=precision)
            row[precision] = dict(test_acc=r.test_acc, se=r.test_acc_se, val_acc=r.val_acc,
                                  examples_per_s=r.examples_per_s, wall_time_s=r.wall_time_s)
        diff = row["bf16"]["test_acc"] - row["fp32"]["test_acc"]
        noise = (row["bf16"]["se"] ** 2 + row["fp32"]["se"] ** 2) ** 0.5
        row.update(difference=diff, combined_se=noise, within_noise=abs(diff) <= 2 * noise)
        rows.append(row)
        print(f"{chapter}: fp32 {row['fp32']['test_acc']:.4f} ({row['fp32']['wall_time_s']:.0f} s), bf16 "
              f"{row['bf16']['test_acc']:.4f} ({row['bf16']['wall_time_s']:.0f} s): difference {100 * diff:+.2f} "
              f"points, combined standard error {100 * noise:.2f} -> "
              f"{'within' if row['within_noise'] else 'OUTSIDE'} the noise (2 SE)", flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "precision-accuracy-cpu.json").write_text(json.dumps(dict(
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"), cpu=cpu_model(), rows=rows),
        indent=1) + "\n")
    return 0 if all(r["within_noise"] for r in rows) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chapters", nargs="*", default=list(NETWORKS))
    parser.add_argument("--seconds", type=float, default=3.0, help="per model-only timing")
    parser.add_argument("--images", type=int, default=11_000, help="training images for the whole loop")
    parser.add_argument("--quick", action="store_true", help="tiny timings: checks that it runs")
    parser.add_argument("--accuracy", nargs="+", metavar="CHAPTER",
                        help="instead: train these chapters fully in fp32 and bf16 and compare test accuracy")
    parser.add_argument("--table", action="store_true",
                        help="only rewrite precision-cpu.md from the recorded precision-cpu.json (no timing)")
    args = parser.parse_args(argv)
    if args.table:
        (RESULTS / "precision-cpu.md").write_text(markdown(json.loads((RESULTS / "precision-cpu.json").read_text())))
        print(f"wrote {RESULTS / 'precision-cpu.md'}")
        return 0
    if args.accuracy:
        return accuracy(args.accuracy)
    if args.quick:
        args.seconds, args.images = 0.3, 512
    data = cnnbook.load_fashion_mnist(device="cpu", train_subset=args.images, val_subset=500)
    has_bf16 = cpu_has_bf16()
    rows = []
    for chapter in args.chapters:
        row = dict(chapter=chapter, parameters=cnnbook.count_params(build_network(chapter, "cpu")))
        for precision in ("fp32", "bf16", "fp32", "bf16"):  # alternate; keep the second round
            row[f"model_{precision}"] = model_only(chapter, precision, args.seconds)
            row[f"loop_{precision}"] = whole_loop(chapter, precision, data)
        net = build_network(chapter, "cpu")
        S = cnnbook.settings(chapter, "cpu")
        row["auto"], row["auto_reason"] = choose_precision(net, S, data, torch.device("cpu"), "auto")
        row["loop_speedup"] = row["loop_bf16"] / row["loop_fp32"]
        rows.append(row)
        print(f"{chapter:>10}: model fp32 {row['model_fp32']:7,.0f}  bf16 {row['model_bf16']:7,.0f} | loop fp32 "
              f"{row['loop_fp32']:7,.0f}  bf16 {row['loop_bf16']:7,.0f} ({row['loop_speedup']:.2f}x) | "
              f"auto: {row['auto']}", flush=True)
    record = dict(created=datetime.now(timezone.utc).isoformat(timespec="seconds"), cpu=cpu_model(),
                  cpu_flags=cpu_flags(), native_bf16=has_bf16, threads=torch.get_num_threads(),
                  torch=torch.__version__, images=args.images, seconds=args.seconds, quick=args.quick,
                  rows=rows)
    if not args.quick:
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "precision-cpu.json").write_text(json.dumps(record, indent=1) + "\n")
        (RESULTS / "precision-cpu.md").write_text(markdown(record))
    print(markdown(record))
    return 0


def markdown(record: dict) -> str:
    lines = [
        f"CPU: {record['cpu']}, {record['threads']} threads, torch {record['torch']}; bfloat16-related flags: "
        f"{', '.join(record['cpu_flags']) or 'none'} (native bfloat16: {'yes' if record['native_bf16'] else 'no'}).",
        "",
        "| chapter | parameters | model fp32 | model bf16 | loop fp32 | loop bf16 | bf16 / fp32 (loop) "
        "| loop / model | auto picks |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in record["rows"]:
        share = r[f"loop_{r['auto']}"] / r[f"model_{r['auto']}"]
        lines.append(f"| {r['chapter']} | {r['parameters']:,} | {r['model_fp32']:,.0f} | {r['model_bf16']:,.0f} | "
                     f"{r['loop_fp32']:,.0f} | {r['loop_bf16']:,.0f} | {r['loop_speedup']:.2f}× | {share:.2f} | "
                     f"{r['auto']} |")
    lines += ["", "Training images per second. *Model*: forward, backward and optimiser step on one batch "
              "in memory; *loop*: `cnnbook.train` for one epoch of "
              f"{record['images']:,} images (validation excluded); *loop / model*: the share of the model-only "
              "speed the loop reaches, in the precision auto picks. *Auto picks*: what `precision=\"auto\"` "
              f"chooses here (bf16 only with native bfloat16 and a probe ≥ {BF16_MIN_SPEEDUP}× faster)."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
