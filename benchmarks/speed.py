"""How fast is cnnbook? d2l's data loader + trainer against cnnbook's, same networks, same device.

    make bench                 # or: python benchmarks/speed.py [--repeats 3] [--quick]

For each network the script trains with d2l 1.0.3 (``load_data_fashion_mnist`` + ``train_ch6``) and
with cnnbook (``load_fashion_mnist`` + ``train``), alternating the two (A B A B ...) and keeping the
median of the repeats, and measures the *ceiling*: the model-only training step (forward, backward,
SGD step) on one batch already on the device. Both trainers get the same network, initialisation
(d2l's Xavier-uniform), optimiser (plain SGD), learning rate, batch size and epochs.

Both do the same work: d2l's recipe trains on all 60,000 training images and evaluates the 10,000 test
images after every epoch, and so does cnnbook's run here.

Definitions, the same for both trainers:
  images/s    = training images / training wall time, data loading included, per-epoch test
                evaluation excluded (it is timed separately and reported in the wall time per epoch)
  epoch (s)   = the whole run's wall time / epochs (training + data loading + test evaluation)
  ceiling     = images/s of the model-only step in the fastest memory layout on the device, in float32
                and in each other precision cnnbook trained in (bfloat16 autocast); a trainer is compared
                with the ceiling in its own precision

Writes benchmarks/results/<device>.json and .md (the table the book's appendix page shows).
d2l is installed only for this script (benchmarks/requirements.txt); its loader reads the same
local Fashion-MNIST files that cnnbook found (no download).
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import cnnbook  # noqa: E402
from cnnbook.book import chapter_code  # noqa: E402
from cnnbook.data import FashionMNIST, cache_dir, locate, read_verified  # noqa: E402
from cnnbook.train import device_name, fast_memory_format  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"


# --- the networks and recipes ---------------------------------------------------------------------
def lenet_1998():
    """d2l's LeNet: the book's chapter-3 LeNet with sigmoid and average pooling on 28x28 (padding 2)."""
    code = chapter_code(ROOT / "chapters" / "03_lenet.ipynb")
    return code.lenet(1, 10, padding=2)  # the paper's sigmoid and average pooling


def resnet_cpu():
    """The ResNet chapter's cpu-profile network, or None while that chapter does not exist."""
    path = ROOT / "chapters" / "09_resnet.ipynb"
    if not path.exists():
        return None
    code = chapter_code(path)
    return code.resnet(1, 10, **cnnbook.settings("resnet", "cpu").model)


# name, network factory, recipe (d2l's train_ch6 recipe: plain SGD, Xavier init, constant lr)
BENCHMARKS = [
    ("LeNet (d2l's)", lenet_1998, dict(lr=0.9, batch_size=256, num_epochs=10)),
    ("ResNet-8 (ch. 9)", resnet_cpu, dict(lr=0.05, batch_size=256, num_epochs=1)),
]


def xavier_(net: nn.Module) -> nn.Module:
    """d2l's train_ch6 initialisation, applied before cnnbook trains so both start alike."""
    for m in net.modules():
        if type(m) in (nn.Linear, nn.Conv2d):
            nn.init.xavier_uniform_(m.weight)
    return net


# --- d2l ---------------------------------------------------------------------------------------------
def d2l_workdir() -> Path:
    """A folder whose ../data/FashionMNIST/raw holds the uncompressed files d2l's loader looks for."""
    raw = cache_dir().parent / "d2l" / "data" / "FashionMNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for name, path in locate().items():  # the files cnnbook uses, verified
        target = raw / name
        if not target.exists():
            target.write_bytes(read_verified(path, name))
    work = raw.parents[2] / "work"
    work.mkdir(exist_ok=True)
    return work


def run_d2l(make_net, recipe: dict, device: torch.device) -> dict:
    from d2l import torch as d2l

    torch.manual_seed(0)
    net = make_net()
    old_cwd = os.getcwd()
    os.chdir(d2l_workdir())  # d2l reads root="../data"
    try:
        train_iter, test_iter = d2l.load_data_fashion_mnist(recipe["batch_size"])
    finally:
        os.chdir(old_cwd)
    evaluate, eval_time, accuracies = d2l.evaluate_accuracy_gpu, [0.0], []

    def timed_evaluate(*args, **kwargs):  # train_ch6 calls this once per epoch
        t0 = time.perf_counter()
        accuracies.append(evaluate(*args, **kwargs))
        eval_time[0] += time.perf_counter() - t0
        return accuracies[-1]

    d2l.evaluate_accuracy_gpu = timed_evaluate
    printed = io.StringIO()
    start = time.perf_counter()
    try:
        with contextlib.redirect_stdout(printed):  # the Animator prints a figure's repr outside notebooks
            d2l.train_ch6(net, train_iter, test_iter, recipe["num_epochs"], recipe["lr"], device)
    finally:
        d2l.evaluate_accuracy_gpu = evaluate
    wall = time.perf_counter() - start
    n = len(train_iter.dataset) * recipe["num_epochs"]
    return dict(examples_per_s=n / (wall - eval_time[0]), epoch_s=wall / recipe["num_epochs"],
                test_acc=accuracies[-1], wall_s=wall)


# --- cnnbook -------------------------------------------------------------------------------------------
def run_cnnbook(make_net, recipe: dict, device: torch.device) -> dict:
    torch.manual_seed(0)
    net = xavier_(make_net())
    # the same work as d2l's recipe: all 60,000 training images, and the 10,000 test images evaluated
    # after every epoch (here as the validation split; the book itself holds 5,000 out and tests once)
    full = cnnbook.load_fashion_mnist(device=device, val_size=0)
    data = FashionMNIST(full.train_images, full.train_labels, full.test_images, full.test_labels,
                        full.classes, full.test_images, full.test_labels)
    S = cnnbook.Settings(chapter="benchmark", profile="benchmark", optimizer="sgd", momentum=0.0,
                         weight_decay=0.0, schedule="constant", **recipe)
    r = cnnbook.train(net, data, S, device=device, verbose=False)
    return dict(examples_per_s=r.examples_per_s, epoch_s=r.wall_time_s / r.num_epochs, test_acc=r.val_acc,
                wall_s=r.wall_time_s, precision=r.precision)


# --- the ceiling -----------------------------------------------------------------------------------------
def ceiling(make_net, recipe: dict, device: torch.device, precision: str = "fp32", seconds: float = 3.0,
            repeats: int = 3) -> dict:
    """Examples/s of forward + backward + SGD step on one batch already on the device (median of repeats),
    in float32 or under bfloat16 autocast (the precision a trainer ran in is compared with its own ceiling)."""
    torch.manual_seed(0)
    fmt = fast_memory_format(device)
    net = make_net().to(device, memory_format=fmt)
    X = torch.randn(recipe["batch_size"], 1, 28, 28, device=device).contiguous(memory_format=fmt)
    y = torch.randint(0, 10, (recipe["batch_size"],), device=device)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01)
    loss_fn = nn.CrossEntropyLoss()

    def step():
        optimizer.zero_grad(set_to_none=True)
        with (torch.autocast(device.type, dtype=torch.bfloat16) if precision == "bf16"
              else contextlib.nullcontext()):
            loss = loss_fn(net(X), y)
        loss.backward()
        optimizer.step()

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    for _ in range(5):
        step()
    sync()
    rates = []
    for _ in range(repeats):
        steps, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            step()
            steps += 1
            if steps % 10 == 0:
                sync()
        sync()
        rates.append(steps * recipe["batch_size"] / (time.perf_counter() - start))
    return dict(examples_per_s=statistics.median(rates), repeats=[round(r, 1) for r in rates],
                memory_format=str(fmt).removeprefix("torch."), precision=precision)


# --- the report -----------------------------------------------------------------------------------------
def machine(device: torch.device) -> dict:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return dict(device=device.type, device_name=device_name(device), cpu=cpu, cpu_count=os.cpu_count(),
                torch_threads=torch.get_num_threads(), python=platform.python_version(),
                torch=torch.__version__, platform=platform.platform())


def median_run(runs: list[dict]) -> dict:
    """The run with the median images/s (its other figures come with it), plus every repeat's speed."""
    ordered = sorted(runs, key=lambda r: r["examples_per_s"])
    mid = dict(ordered[(len(ordered) - 1) // 2])
    mid["repeats"] = [round(r["examples_per_s"], 1) for r in runs]
    mid["test_accs"] = [round(r["test_acc"], 4) for r in runs]
    return mid


def markdown(record: dict) -> str:
    m = record["machine"]
    lines = [
        f"**{m['device_name']}** — {m['cpu']}, {m['cpu_count']} logical cores; Python {m['python']}, "
        f"PyTorch {m['torch']}; measured {record['created'][:10]}, median of "
        f"{record['repeats']} alternating repeats. Each trainer is compared with the ceiling in its own "
        "precision; *cnnbook / d2l by repeat* divides the two trainers' speeds within each A-B pair.",
        "",
        "| network | trainer | precision | images/s | s/epoch | test acc. | vs d2l | vs ceiling |",
        "|---|---|---|--:|--:|--:|--:|--:|",
    ]
    paired = []
    for b in record["benchmarks"]:
        ceilings = b.get("ceilings") or {"fp32": b["ceiling"]}  # records before 2026-11-24 had one ceiling
        epochs = b["recipe"]["num_epochs"]
        name = f"{b['name']}, {epochs} epoch{'s' if epochs != 1 else ''}"  # only on the group's first row
        for who in ("d2l", "cnnbook"):
            r = b[who]
            vs_d2l = r["examples_per_s"] / b["d2l"]["examples_per_s"]
            precision = r.get("precision", "fp32")  # d2l's train_ch6 trains in float32
            ceil = ceilings.get(precision, ceilings["fp32"])["examples_per_s"]
            lines.append(f"| {name} | {who} | {precision} | {r['examples_per_s']:,.0f} | {r['epoch_s']:.1f} | "
                         f"{r['test_acc']:.4f} | {vs_d2l:.2f}× | {r['examples_per_s'] / ceil:.2f}× |")
            name = ""
        for precision, c in ceilings.items():
            lines.append(f"| | ceiling | {precision} | {c['examples_per_s']:,.0f} | – | – | – | 1.00× |")
        ratios = repeat_ratios(b)
        if ratios:
            whole = (f"; whole run of the median repeats, d2l's time / cnnbook's: "
                     f"{b['d2l']['wall_s'] / b['cnnbook']['wall_s']:.2f}×"
                     if "wall_s" in b["d2l"] and "wall_s" in b["cnnbook"] else "")
            paired.append(f"- {b['name']}: cnnbook / d2l by repeat "
                          f"{', '.join(f'{x:.2f}×' for x in ratios)} (median {statistics.median(ratios):.2f}×)"
                          + whole)
    if paired:
        lines += [""] + paired
    return "\n".join(lines) + "\n"


def repeat_ratios(benchmark: dict) -> list[float]:
    """cnnbook's speed over d2l's within each alternating pair of runs (A B, A B, ...)."""
    d2l, ours = benchmark["d2l"].get("repeats", []), benchmark["cnnbook"].get("repeats", [])
    return [c / d for c, d in zip(ours, d2l)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="alternating repeats per trainer (median kept)")
    parser.add_argument("--quick", action="store_true", help="1 epoch, 1 repeat: check that it runs")
    parser.add_argument("--output", type=Path, default=RESULTS, help="folder for <device>.json and .md")
    parser.add_argument("--table", action="store_true",
                        help="only rewrite <device>.md from the recorded <device>.json (no timing)")
    args = parser.parse_args(argv)
    if args.table:
        path = args.output / f"{cnnbook.default_device().type}.json"
        (path.with_suffix(".md")).write_text(markdown(json.loads(path.read_text())))
        print(f"wrote {path.with_suffix('.md')} from {path.name}")
        return 0
    try:
        import d2l  # noqa: F401
    except ImportError:
        print("d2l is not installed: run `make bench` (it installs benchmarks/requirements.txt and "
              "d2l==1.0.3 with --no-deps).", file=sys.stderr)
        return 2

    device = cnnbook.default_device()
    repeats = 1 if args.quick else args.repeats
    record = dict(machine=machine(device), repeats=repeats, quick=args.quick, benchmarks=[],
                  created=datetime.now(timezone.utc).isoformat(timespec="seconds"))
    print(f"benchmark on {record['machine']['device_name']} ({record['machine']['cpu']}), {repeats} repeat(s)")
    for name, make_net, recipe in BENCHMARKS:
        if make_net() is None:
            print(f"skipped {name}: its chapter does not exist yet")
            continue
        recipe = dict(recipe, num_epochs=1) if args.quick else recipe
        runs: dict[str, list[dict]] = {"d2l": [], "cnnbook": []}
        for i in range(repeats):
            for who, run in (("d2l", run_d2l), ("cnnbook", run_cnnbook)):  # A B A B ...
                r = run(make_net, recipe, device)
                runs[who].append(r)
                print(f"  {name} · {who} · repeat {i + 1}: {r['examples_per_s']:,.0f} images/s, "
                      f"{r['epoch_s']:.1f} s/epoch, test accuracy {r['test_acc']:.4f}", flush=True)
        precisions = ["fp32"] + sorted({r.get("precision", "fp32") for r in runs["cnnbook"]} - {"fp32"})
        ceilings = {}
        for precision in precisions:
            ceilings[precision] = ceiling(make_net, recipe, device, precision)
            print(f"  {name} · ceiling ({precision}): {ceilings[precision]['examples_per_s']:,.0f} images/s",
                  flush=True)
        record["benchmarks"].append(dict(name=name, recipe=recipe, ceilings=ceilings,
                                         d2l=median_run(runs["d2l"]), cnnbook=median_run(runs["cnnbook"])))
    table = markdown(record)
    print("\n" + table)
    if not args.quick:
        args.output.mkdir(parents=True, exist_ok=True)
        (args.output / f"{device.type}.json").write_text(json.dumps(record, indent=1) + "\n")
        (args.output / f"{device.type}.md").write_text(table)
        print(f"wrote {args.output / device.type}.json and .md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
