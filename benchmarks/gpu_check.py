"""Does the gpu profile fit a Colab T4? Train every chapter's network briefly and predict its full run.

    make gpu-check             # or: python benchmarks/gpu_check.py [--steps 150] [--chapters lenet resnet] [--quick]

On the device present (CUDA if available, else the CPU -- then it says so), for each chapter that trains a
network (``cnnbook.book.NETWORKS``), the chapter's own network in the chosen profile (default ``gpu``) is
trained for a bounded number of steps with the profile's optimiser, schedule (stretched over those
steps), learning rate, batch size, resizing, augmentation and label smoothing, through the book's own
pieces (``make_optimizer``, ``make_schedule``, ``fast_memory_format``, ``FashionMNIST.batches``; fp16
autocast and a GradScaler on CUDA, as ``cnnbook.train.train`` does). It reports per chapter:

* learns     -- the mean loss of the last 10 steps is at least 10 % below that of the first 10, and the
                accuracy on held-out images (the validation split if the data has one, else the test set)
                is at least 30 % (chance: 10 %);
* memory     -- CUDA: the peak allocated by the training steps (``torch.cuda.max_memory_allocated``);
                elsewhere, and beside it on CUDA, an estimate (weights, gradients, optimiser state, and the
                fp16 outputs of every layer at the profile's batch size, doubled for the backward pass);
                it fits when it plus 0.5 GiB for the CUDA context stays within a T4's 15 GiB;
* speed      -- training images/s after a warm-up, synchronised, data preparation included;
* T4 time    -- the chapter's predicted time on a T4, against 5 min per chapter and 45 min for the book:
                epochs x (55,000 training + 15,000 evaluated images) at a T4's rate, predicted (a) from the
                rate measured here divided by the ratio of this GPU's fp16 tensor-core peak to a T4's, and
                (b) from the multiply-adds at 7.5 T/s or the step time measured here x 2, whichever is
                slower; (b) is the prediction and (a) a pessimistic bound (see ``predict_t4``).

Writes benchmarks/results/gpu-check-<device>.json and .md (not with --quick unless --output is given).
One chapter failing is reported with its error and the others still run. Not part of the tests.
"""
from __future__ import annotations

import argparse
import contextlib
import gc
import inspect
import json
import platform
import re
import sys
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import cnnbook  # noqa: E402
from cnnbook.book import NETWORKS, build_network  # noqa: E402
from cnnbook.data import FashionMNIST  # noqa: E402
from cnnbook.inspection import count_macs, count_params  # noqa: E402
from cnnbook.profiles import Settings  # noqa: E402
from cnnbook.t4 import (EVAL_BATCH_SIZE, EVAL_IMAGES_PER_EPOCH, HOST_FACTOR,  # noqa: E402,F401
                        T4_MACS_PER_S, TRAIN_IMAGES_PER_EPOCH, TRAIN_MAC_FACTOR, leaf_modules, predict_t4)
from cnnbook.train import device_name, fast_memory_format, make_optimizer, make_schedule  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"

# --- budgets and the T4 -------------------------------------------------------------------------------------
CHAPTER_BUDGET_S = 5 * 60
BOOK_BUDGET_S = 45 * 60
T4_MEMORY = 15 * 2**30  # 15 GiB (nvidia-smi: 15,360 MiB)
CUDA_CONTEXT = 2**29  # ~0.5 GiB the CUDA context and cuDNN take outside PyTorch's allocator
MIN_ACCURACY = 0.30  # chance is 0.10
MIN_LOSS_DROP = 0.10  # last-10-step mean loss at least 10 % below the first-10-step mean

# Dense fp16 tensor-core peaks (TFLOP/s, without sparsity) from NVIDIA's data sheets. Method (a) scales the
# throughput measured here by peak(this GPU) / peak(T4): pessimistic, because a small network is bound by
# kernel launches and the host, not by the tensor cores, and so gains far less than that from a big GPU.
FP16_PEAK_TFLOPS = {
    "T4": 65, "V100": 125, "A10G": 70, "A10": 125, "L4": 121, "A100": 312, "L40S": 362, "L40": 181,
    "H100 PCIe": 756, "H100": 989, "H200": 989, "GH200": 989, "B200": 2250,
}


# --- the prediction ---------------------------------------------------------------------------------------
def fp16_peak(name: str) -> float | None:
    """The dense fp16 tensor-core peak (TFLOP/s) of a CUDA device, by its name; None if unknown."""
    name = name.upper()
    for key in sorted(FP16_PEAK_TFLOPS, key=len, reverse=True):  # "H100 PCIe" before "H100", "A10G" before "A10"
        if all(part in name for part in key.upper().split()):
            return FP16_PEAK_TFLOPS[key]
    return None




# --- memory -----------------------------------------------------------------------------------------------------
def estimate_memory(net: nn.Module, S: Settings, side: int, data_bytes: int = 0, activation_bytes: int = 2) -> int:
    """Bytes a training step needs at the profile's batch size, estimated without running it there.

    fp32 weights and gradients, the optimiser's state (SGD momentum: one copy, AdamW: two), autocast's fp16
    copy of the weights, and the outputs of every layer (forward hooks on the leaf modules, measured at a
    batch of 2 and scaled to the batch size) at ``activation_bytes`` each, doubled for the backward pass
    (the gradients of the activations). Operations outside modules (a residual sum, a concatenation) are
    not counted; in-place ReLUs are counted as new memory: a rough figure, for a CPU without a GPU.
    ``data_bytes``: the data set held on the device, added as it is.
    """
    params = count_params(net)
    state_copies = 2 if S.optimizer == "adamw" else (1 if S.momentum else 0)
    weights = params * (4 + 4 + 4 * state_copies + 2)
    elements = 0

    def hook(module, inputs, output):
        nonlocal elements
        outputs = output if isinstance(output, (tuple, list)) else (output,)
        elements += sum(o.numel() for o in outputs if torch.is_tensor(o))

    leaves = [m for m in net.modules() if not list(m.children())]
    handles = [m.register_forward_hook(hook) for m in leaves]
    device = next(net.parameters()).device
    was_training = net.training
    try:
        net.eval()
        with torch.no_grad():
            net(torch.zeros(2, 1, side, side, device=device))
    finally:
        for h in handles:
            h.remove()
        net.train(was_training)
    activations = elements // 2 * S.batch_size * activation_bytes * 2
    return weights + activations + data_bytes




# --- training a few steps ------------------------------------------------------------------------------------
def endless_batches(data: FashionMNIST, S: Settings, batch_size: int, generator: torch.Generator
                    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Full training batches, epoch after epoch (a partial last batch is skipped: one shape to tune for)."""
    while True:
        for X, y in data.batches("train", batch_size, augment=S.augment, resize=S.resize, generator=generator):
            if len(y) == batch_size:
                yield X, y


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train_steps(net: nn.Module, data: FashionMNIST, S: Settings, steps: int, warmup: int,
                batch_size: int | None = None, seed: int = 0) -> dict:
    """Train ``net`` for ``steps`` steps with the settings' recipe, the schedule stretched over the steps.

    Returns:
        ``losses`` (one per step), ``train_per_s`` (images/s over the steps after ``warmup``, synchronised)
        and, on CUDA, ``peak_allocated`` and ``peak_reserved`` (bytes).
    """
    device = data.device
    batch_size = batch_size or S.batch_size
    optimizer = make_optimizer(net, S)
    schedule = make_schedule(optimizer, S, total_steps=steps)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=S.label_smoothing)
    use_amp = device.type == "cuda"  # as cnnbook.train.train does
    if use_amp:
        torch.backends.cudnn.benchmark = True
        torch.cuda.reset_peak_memory_stats(device)
    autocast = (lambda: torch.autocast("cuda", dtype=torch.float16)) if use_amp else contextlib.nullcontext
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    batches = endless_batches(data, S, batch_size, torch.Generator().manual_seed(seed))
    losses = []
    net.train()
    start = None
    for step in range(steps):
        if step == warmup:
            sync(device)
            start = time.perf_counter()
        X, y = next(batches)
        with autocast():
            loss = loss_fn(net(X), y)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        schedule.step()
        losses.append(loss.detach().float())
    sync(device)
    seconds = time.perf_counter() - start
    out = dict(losses=torch.stack(losses).cpu().tolist(), train_per_s=(steps - warmup) * batch_size / seconds)
    if use_amp:
        out.update(peak_allocated=torch.cuda.max_memory_allocated(device),
                   peak_reserved=torch.cuda.max_memory_reserved(device))
    return out


@torch.inference_mode()
def held_out_accuracy(net: nn.Module, data: FashionMNIST, split: str, num_images: int, resize: int | None,
                      batch_size: int = 500) -> tuple[float, float]:
    """Accuracy on the first ``num_images`` of ``split``, and the images/s of that evaluation."""
    net.eval()
    device = data.device
    autocast = (lambda: torch.autocast("cuda", dtype=torch.float16)) if device.type == "cuda" \
        else contextlib.nullcontext
    batch_size = min(batch_size, num_images)
    with autocast():  # one batch untimed: cuDNN chooses its kernels for the evaluation's shapes
        net(next(data.batches(split, batch_size, shuffle=False, resize=resize))[0])
    sync(device)
    start = time.perf_counter()
    correct, seen = torch.zeros((), dtype=torch.long, device=device), 0
    for X, y in data.batches(split, batch_size, shuffle=False, resize=resize):
        X, y = X[:num_images - seen], y[:num_images - seen]
        with autocast():
            correct += (net(X).argmax(dim=1) == y).sum()
        seen += len(y)
        if seen >= num_images:
            break
    accuracy = correct.item() / seen
    return accuracy, seen / (time.perf_counter() - start)


def learning_verdict(losses: list[float], accuracy: float, window: int = 10) -> dict:
    """Whether the loss falls (last ``window`` steps' mean vs the first's) and the accuracy leaves chance."""
    window = max(1, min(window, len(losses) // 3))
    first = sum(losses[:window]) / window
    last = sum(losses[-window:]) / window
    falls = last <= (1 - MIN_LOSS_DROP) * first  # NaN compares False: a diverged run does not learn
    return dict(loss_first=first, loss_last=last, loss_falls=falls, learns=falls and accuracy >= MIN_ACCURACY)


# --- one chapter ------------------------------------------------------------------------------------------------
def held_out_split(data: FashionMNIST) -> str:
    """``"val"`` when the data holds a validation split, else ``"test"``."""
    try:
        data.split("val")
        return "val"
    except Exception:  # noqa: BLE001 - older cnnbook: ValueError; newer without validation: SettingsError
        return "test"


def check_chapter(chapter: str, data: FashionMNIST, steps: int = 150, warmup: int = 20, eval_images: int = 2000,
                  profile: str = "gpu", batch_size: int | None = None, S: Settings | None = None,
                  make_net: Callable[[], nn.Module] | None = None, speedup_over_t4: float | None = None) -> dict:
    """Train one chapter's network briefly on ``data``'s device and return its row of the report.

    Args:
        chapter: a key of ``cnnbook.book.NETWORKS``.
        steps, warmup: training steps, and how many of them are left out of the throughput.
        eval_images: held-out images the accuracy is measured on.
        batch_size: train with this batch size instead of the profile's (--quick); memory is still
            estimated at the profile's.
        S, make_net: override the settings and the network (tests); default: the profile's and the chapter's.
        speedup_over_t4: peak(this device) / peak(T4) for prediction method (a); None: method (b) only.
    """
    S = S or cnnbook.settings(chapter, profile)
    device = data.device
    torch.manual_seed(0)
    net = make_net() if make_net else build_network(chapter, profile=profile)
    side = S.resize or data.train_images.shape[-1]
    row = dict(chapter=chapter, architecture=type(net).__name__, parameters=count_params(net),
               macs=count_macs(net, (1, 1, side, side)), input_side=side, num_epochs=S.num_epochs,
               batch_size=S.batch_size, trained_batch_size=batch_size or S.batch_size, optimizer=S.optimizer,
               lr=S.lr, schedule=S.schedule, augment=S.augment, label_smoothing=S.label_smoothing,
               steps=steps, warmup=warmup)
    row["layers"] = leaf_modules(net)
    data_bytes = sum(t.numel() * t.element_size() for t in vars(data).values() if torch.is_tensor(t))
    row["memory_estimate"] = estimate_memory(net, S, side, data_bytes)
    net.to(device, memory_format=fast_memory_format(device))
    run = train_steps(net, data, S, steps, warmup, batch_size=batch_size)
    split = held_out_split(data)
    accuracy, eval_per_s = held_out_accuracy(net, data, split, eval_images, S.resize)
    row.update(losses=[round(x, 4) for x in run["losses"]], train_per_s=run["train_per_s"],
               eval_per_s=eval_per_s, held_out_split=split,
               held_out_images=min(eval_images, len(data.split(split)[1])),
               accuracy=accuracy, **learning_verdict(run["losses"], accuracy))
    if "peak_allocated" in run and row["trained_batch_size"] == S.batch_size:
        row.update(memory=run["peak_allocated"], memory_reserved=run["peak_reserved"], memory_method="measured")
        needed = max(run["peak_allocated"], run["peak_reserved"])
    else:
        row.update(memory=row["memory_estimate"], memory_method="estimate")
        needed = row["memory_estimate"]
    row["fits"] = needed + CUDA_CONTEXT <= T4_MEMORY
    t4 = predict_t4(S.num_epochs, S.batch_size, row["macs"], row["layers"], run["train_per_s"], eval_per_s,
                    speedup_over_t4)
    row.update(t4=t4, t4_s=t4["seconds"], within_budget=t4["seconds"] <= CHAPTER_BUDGET_S)
    return row


# --- the report -------------------------------------------------------------------------------------------------
def verdict(rows: list[dict]) -> dict:
    """Each chapter learns, fits and stays within 5 min on a T4; the book within 45 min; ok when all hold."""
    done = [r for r in rows if "error" not in r]
    failed = [r["chapter"] for r in rows if "error" in r]
    book_s = sum(r["t4_s"] for r in done)
    out = dict(
        learns=[r["chapter"] for r in done if not r["learns"]],
        fits=[r["chapter"] for r in done if not r["fits"]],
        chapter_budget=[r["chapter"] for r in done if not r["within_budget"]],
        failed=failed, book_t4_s=book_s, book_within_budget=book_s <= BOOK_BUDGET_S and not failed,
    )
    out["ok"] = bool(rows) and not (out["learns"] or out["fits"] or out["chapter_budget"] or failed) \
        and out["book_within_budget"]
    return out


def fmt_bytes(n: float) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


def fmt_s(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    minutes, s = divmod(round(seconds), 60)
    return f"{minutes} min {s:02d} s" if minutes else f"{s} s"


def row_line(r: dict) -> str:
    """One chapter in a line for the console."""
    if "error" in r:
        return f"{r['chapter']}: FAILED -- {r['error']}"
    t4 = r["t4"]
    return (f"{r['chapter']}: loss {r['loss_first']:.3f} -> {r['loss_last']:.3f}, {r['held_out_split']} accuracy "
            f"{r['accuracy']:.1%} ({'learns' if r['learns'] else 'DOES NOT LEARN'}) · memory "
            f"{fmt_bytes(r['memory'])} {r['memory_method']} ({'fits' if r['fits'] else 'DOES NOT FIT'} 15 GiB) · "
            f"{r['train_per_s']:,.0f} images/s · T4: {fmt_s(t4['a_s'])} (a), {fmt_s(t4['b_s'])} (b) -> "
            f"{fmt_s(r['t4_s'])} ({'within' if r['within_budget'] else 'OVER'} 5 min)")


def markdown(record: dict) -> str:
    m, v = record["machine"], record["verdict"]
    speedup = record["speedup_over_t4"]
    lines = [
        f"**{m['device_name']}** · PyTorch {m['torch']} · Python {m['python']} · profile `{record['profile']}` · "
        f"{record['steps']} steps per chapter ({record['warmup']} warm-up) · measured {record['created'][:10]}"
        + (" · **quick run: not a measurement**" if record["quick"] else ""),
        "",
    ]
    if m["device"] != "cuda":
        lines += ["No CUDA device: trained on the CPU; memory is an estimate, and the T4 time comes from the "
                  "multiply-adds and the launch overhead alone (method b).", ""]
    lines += [
        "| chapter | params | MACs/image | epochs × batch | loss first → last 10 | accuracy | learns | "
        "peak memory | fits 15 GiB | images/s here | T4 (a) | T4 (b) | T4 chapter | ≤ 5 min |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in record["chapters"]:
        if "error" in r:
            lines.append(f"| {r['chapter']} | failed: {r['error'][:200]} |" + " |" * 12)
            continue
        lines.append(
            f"| {r['chapter']} | {r['parameters'] / 1e6:.2f} M | {r['macs'] / 1e6:,.1f} M | "
            f"{r['num_epochs']} × {r['batch_size']} | {r['loss_first']:.3f} → {r['loss_last']:.3f} | "
            f"{r['accuracy']:.1%} ({r['held_out_split']}) | {'yes' if r['learns'] else '**no**'} | "
            f"{fmt_bytes(r['memory'])} ({r['memory_method']}) | {'yes' if r['fits'] else '**no**'} | "
            f"{r['train_per_s']:,.0f} | {fmt_s(r['t4']['a_s'])} | {fmt_s(r['t4']['b_s'])} | "
            f"{fmt_s(r['t4_s'])} | {'yes' if r['within_budget'] else '**no**'} |")
    lines += [
        "",
        f"Book on a T4: **{fmt_s(v['book_t4_s'])}** (budget 45 min) · verdict: **{'PASS' if v['ok'] else 'FAIL'}**"
        + "".join(f" · {what}: {', '.join(v[key])}" for key, what in (
            ("learns", "does not learn"), ("fits", "does not fit"), ("chapter_budget", "over 5 min"),
            ("failed", "failed")) if v[key]),
        "",
        "How the T4 time is predicted: chapter time = epochs × (55,000 / training images/s + 15,000 / evaluated "
        "images/s), the 15,000 being validation and test, pessimistically both every epoch. "
        + f"(b), the prediction: per training step, the larger of {TRAIN_MAC_FACTOR} × the forward multiply-adds "
        f"× batch size at {T4_MACS_PER_S / 1e12:.1f} T multiply-adds/s (15 TFLOP/s, a practical fp16 rate for a "
        f"T4) and the step's time measured here × {HOST_FACTOR:g} (a T4 is no faster than this GPU where the "
        "step is bound by kernel launches, and Colab's 2 vCPUs launch them about twice as slowly); evaluation "
        "alike, 1 × the multiply-adds. "
        + (f"(a), shown as a pessimistic bound only: this device's images/s divided by {speedup:.1f}, the ratio "
           "of its dense fp16 tensor-core peak to a T4's (65 TFLOP/s), which would hold only for a network "
           "bound by the tensor cores. " if speedup else "(a) not available: no known fp16 peak for this device. ")
        + "Neither was checked on a real T4.",
        "",
        "Memory: CUDA's peak allocated during training at the profile's batch size (measured), or an estimate "
        "(weights, gradients, optimiser state, fp16 layer outputs × 2 for the backward pass); it fits when it "
        "plus 0.5 GiB for the CUDA context is within 15 GiB. Learns: the last 10 steps' mean loss at least 10 % "
        "below the first 10 steps', and ≥ 30 % accuracy on held-out images.",
    ]
    return "\n".join(lines) + "\n"


def device_slug(name: str) -> str:
    """``NVIDIA H100 80GB HBM3`` -> ``nvidia-h100-80gb-hbm3``; any CPU -> ``cpu``."""
    if name.startswith("CPU"):
        return "cpu"
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def write_report(record: dict, folder: Path) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    stem = folder / f"gpu-check-{device_slug(record['machine']['device_name'])}"
    json_path, md_path = stem.with_suffix(".json"), stem.with_suffix(".md")
    json_path.write_text(json.dumps(record, indent=1) + "\n")
    md_path.write_text(markdown(record))
    return json_path, md_path


def run_checks(data: FashionMNIST, chapters: list[str], steps: int, warmup: int, eval_images: int,
               profile: str = "gpu", batch_size: int | None = None, quick: bool = False) -> dict:
    """Check each chapter in turn (a failure is recorded and the next one runs); the whole report."""
    device = data.device
    name = device_name(device)
    peak = fp16_peak(name) if device.type == "cuda" else None
    speedup = peak / FP16_PEAK_TFLOPS["T4"] if peak else None
    record = dict(machine=dict(device=device.type, device_name=name, python=platform.python_version(),
                               torch=torch.__version__, cuda=torch.version.cuda),
                  profile=profile, steps=steps, warmup=warmup, eval_images=eval_images, quick=quick,
                  speedup_over_t4=speedup, created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                  chapters=[])
    for chapter in chapters:
        start = time.perf_counter()
        try:
            row = check_chapter(chapter, data, steps, warmup, eval_images, profile, batch_size,
                                speedup_over_t4=speedup)
        except Exception as err:  # noqa: BLE001 - report the chapter and go on with the others
            traceback.print_exc(limit=3, file=sys.stdout)
            message = str(err).strip().splitlines()
            row = dict(chapter=chapter, error=f"{type(err).__name__}: {message[0] if message else ''}"[:500])
        row["check_s"] = round(time.perf_counter() - start, 1)
        record["chapters"].append(row)
        print(f"{row_line(row)}  [{row['check_s']} s]", flush=True)
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
    record["verdict"] = verdict(record["chapters"])
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chapters", nargs="+", default=list(NETWORKS), choices=list(NETWORKS), metavar="CHAPTER",
                        help=f"default: all of {', '.join(NETWORKS)}")
    parser.add_argument("--steps", type=int, default=150, help="training steps per chapter (default 150)")
    parser.add_argument("--warmup", type=int, default=None, help="steps left out of the throughput (default: "
                        "20, or a quarter of the steps if fewer)")
    parser.add_argument("--eval-images", type=int, default=2000, help="held-out images for the accuracy")
    parser.add_argument("--profile", default="gpu", choices=("gpu", "cpu", "smoke"))
    parser.add_argument("--quick", action="store_true",
                        help="check that it runs: 6 steps at batch size <= 32 on a 2,048-image subset")
    parser.add_argument("--device", default=None, help="default: CUDA if available, else the CPU")
    parser.add_argument("--output", type=Path, default=None,
                        help="folder for gpu-check-<device>.json and .md (default benchmarks/results; "
                             "--quick writes nothing unless this is given)")
    args = parser.parse_args(argv)
    if args.steps < 3:
        parser.error("--steps must be at least 3")

    device = torch.device(args.device) if args.device else \
        torch.device("cuda" if torch.cuda.is_available() else "cpu")
    steps, eval_images, batch_size = args.steps, args.eval_images, None
    subset = dict(train_subset=2048, test_subset=1024) if args.quick else {}
    if args.quick and "val_subset" in inspect.signature(cnnbook.load_fashion_mnist).parameters:
        subset["val_subset"] = 512
    if args.quick:
        steps, eval_images, batch_size = min(steps, 6), min(eval_images, 256), 32
    warmup = args.warmup if args.warmup is not None else min(20, steps // 4)
    if not 0 <= warmup < steps:
        parser.error("--warmup must be in [0, steps)")

    print(f"gpu-check on {device_name(device)} · torch {torch.__version__} · profile {args.profile!r} · "
          f"{steps} steps per chapter", flush=True)
    if device.type != "cuda":
        print("NOTE: no CUDA device -- training on the CPU: memory is an estimate and the T4 time comes from "
              "the multiply-adds and launch overhead (method b) only.", flush=True)
    if args.quick:
        print("NOTE: --quick: a few steps at batch size 32 on a small subset; checks that it runs, measures nothing.")
    data = cnnbook.load_fashion_mnist(device=device, **subset)
    split = held_out_split(data)
    print(f"held-out accuracy on the first {eval_images:,} images of the "
          f"{'validation split' if split == 'val' else 'TEST set (the data has no validation split)'}", flush=True)
    record = run_checks(data, args.chapters, steps, warmup, eval_images, args.profile, batch_size, args.quick)
    table = markdown(record)
    print("\n" + table)
    v = record["verdict"]
    print(f"VERDICT: {'PASS' if v['ok'] else 'FAIL'} -- book on a T4 {fmt_s(v['book_t4_s'])} (budget 45 min); "
          f"not learning: {', '.join(v['learns']) or 'none'}; not fitting 15 GiB: {', '.join(v['fits']) or 'none'}; "
          f"over 5 min: {', '.join(v['chapter_budget']) or 'none'}; failed: {', '.join(v['failed']) or 'none'}")
    if args.output or not args.quick:
        for path in write_report(record, args.output or RESULTS):
            print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return 0 if v["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
