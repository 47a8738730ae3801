"""The training runs that some exercise solutions and profile choices quote, rerunnable on any machine.

    python scripts/exercise_runs.py googlenet-9 densenet-8     # or: all (the default)

Each run trains variants of a chapter's `cpu`-profile network with that chapter's settings, on the
training split, and compares them on the **validation** split with the chapter's own run (its record in
``results/<chapter>.json``: same settings, same split; the test set is not used), or, for the exercises
set on a subset, with each other over three seeds. Networks come from the chapters' own code
(``chapter_code``); each variant starts from seed 0 (and 1, 2 on a subset) and trains in the precision
the chapter's record used, so it differs from the chapter's run only in what the exercise changes.
One run trains nothing: densenet-9 measures the memory and time of a training step with and without
the checkpointing that DenseNet's solution 9 shows (its own code, read from the chapter).

Writes ``results/exercises/<run>.json`` and prints a Markdown table per run; the solutions (or, for
googlenet-dropout, the chapter's text) cite the file. Times on this repository's 2-core CPU (Intel Xeon,
float32, 21 minutes in all): training-4-5-6 about 2 minutes, lenet-7-8 1, alexnet-7 under 1, alexnet-8 1,
googlenet-9 6, googlenet-10 1, googlenet-dropout 3, densenet-8 2, resnet-8-9 4, densenet-9 1. Seconds per
epoch are one run's, on whatever else the machine was doing.
"""
from __future__ import annotations

import os

os.environ.setdefault("KINETO_LOG_LEVEL", "5")  # before torch: no profiler error about a missing GPU

import argparse
import ast
import copy
import json
import re
import statistics
import sys
import textwrap
import time
from datetime import datetime, timezone
from pathlib import Path

import nbformat
import torch
from torch import nn
from torch.profiler import ProfilerActivity, profile

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import cnnbook  # noqa: E402
from cnnbook.book import chapter_code  # noqa: E402
from cnnbook.profiles import seed_everything  # noqa: E402
from cnnbook.results import load_result, plural, write_json_atomically  # noqa: E402
from cnnbook.train import TrainingDiverged, device_name  # noqa: E402

OUT = ROOT / "results" / "exercises"


def chapter_function(notebook: str, name: str):
    """A function a chapter defines outside its ``model`` cells (e.g. GoogLeNet's ``he_init``, written in
    its experiment's cell), taken from the chapter's source rather than copied here."""
    for cell in nbformat.read(ROOT / "chapters" / notebook, as_version=4).cells:
        if cell.cell_type == "code" and f"def {name}(" in cell.source:
            found = [node for node in ast.parse(cell.source).body
                     if isinstance(node, ast.FunctionDef) and node.name == name]
            namespace = {"nn": nn}
            exec(compile(ast.Module(body=found, type_ignores=[]), notebook, "exec"), namespace)
            return namespace[name]
    raise LookupError(f"{notebook} defines no function {name}")


def googlenet_9(code, S):
    """Exercise 9: without batch normalisation, two initialisations at two learning rates."""
    def plain():
        return code.googlenet(1, 10, **{**S.model, "batch_norm": False})

    he_init = chapter_function("07_googlenet.ipynb", "he_init")
    return [(f"no BN, default init, lr {lr}", plain, S.replace(lr=lr)) for lr in (S.lr, 0.02)] + \
           [(f"no BN, He init, lr {lr}", lambda: he_init(plain()), S.replace(lr=lr)) for lr in (S.lr, 0.02)]


def googlenet_10(code, S):
    """Exercise 10: every Inception block replaced by one 3x3 convolution with its output channels."""
    def plain_3x3():
        net = code.googlenet(1, 10, **S.model)
        channels = net.conv3[0].out_channels
        for name, block in list(net.named_children()):
            if name.startswith("inception"):
                setattr(net, name, code.conv(channels, block.out_channels, 3, padding=1, batch_norm=True))
                channels = block.out_channels
        return net

    return [("3x3 convolutions instead of Inception blocks", plain_3x3, S)]


def googlenet_dropout(code, S):
    """The chapter's profile choice (not an exercise): dropout before the linear layer, 20 % and the
    paper's 40 %, against the profile's none."""
    return [(f"dropout {p}", lambda p=p: code.googlenet(1, 10, **{**S.model, "dropout": p}), S)
            for p in (0.2, 0.4)]


def densenet_8(code, S):
    """Exercise 8: no compression in the transitions (DenseNet-B)."""
    return [("compression 1.0", lambda: code.densenet(1, 10, **{**S.model, "compression": 1.0}), S)]


def resnet_8_9(code, S):
    """Exercises 8 and 9: no shortcuts; bottleneck blocks with the widths divided by 4."""
    narrow = tuple(w // 4 for w in S.model["widths"])
    return [("no shortcuts", lambda: code.resnet(1, 10, **{**S.model, "shortcut": False}), S),
            ("bottleneck blocks, widths / 4",
             lambda: code.resnet(1, 10, **{**S.model, "block": "bottleneck", "widths": narrow}), S)]


def training_4_5_6(code, S):
    """Chapter 2, exercises 4-6: half and double the width; AdamW; no ReLUs (and average pooling)."""
    width = S.model["width"]

    def without_relu(pool=None):
        net = code.tiny_cnn(width)
        for i, layer in enumerate(net):
            if isinstance(layer, nn.ReLU):
                net[i] = nn.Identity()
            elif pool and isinstance(layer, nn.MaxPool2d):
                net[i] = pool(2)
        return net

    return [(f"width {w}", lambda w=w: code.tiny_cnn(w), S) for w in (width // 2, 2 * width)] + [
        ("AdamW, lr 0.003, weight decay 0.05", lambda: code.tiny_cnn(width),
         S.replace(optimizer="adamw", lr=0.003, weight_decay=0.05)),
        ("no ReLUs", without_relu, S),
        ("no ReLUs, average pooling", lambda: without_relu(nn.AvgPool2d), S)]


def lenet_7_8(code, S):
    """Chapter 3, exercises 7 and 8, on the experiment's subset: the four forms at the experiment's best
    learning rates (ReLU 0.1, sigmoid 1.0), and the profile's form with doubled widths."""
    S = S.replace(num_epochs=min(5, S.num_epochs))
    forms = [("relu", "max", 0.1), ("sigmoid", "avg", 1.0), ("relu", "avg", 0.1), ("sigmoid", "max", 1.0)]
    wide = {**S.model, "widths": (12, 32), "fc_units": (240, 168)}
    return [(f"{act}, {pool} pooling, lr {lr}",
             lambda act=act, pool=pool: code.lenet(1, 10, **{**S.model, "activation": act, "pool": pool}),
             S.replace(lr=lr)) for act, pool, lr in forms] + [
        ("relu, max pooling, widths doubled, lr 0.1", lambda: code.lenet(1, 10, **wide), S.replace(lr=0.1))]


def alexnet_7(code, S):
    """Chapter 4, exercise 7: one epoch on 6,000 images with plain SGD at two rates, and AdamW."""
    def net():
        return code.alexnet(1, 10, image_size=S.resize or 28, **S.model)

    one = S.replace(num_epochs=1)
    return [(f"SGD, lr {lr}", net, one.replace(optimizer="sgd", lr=lr, weight_decay=5e-4))
            for lr in (0.01, 0.05)] + [
        (f"AdamW (the profile's), lr {S.lr}", net, one)]


def alexnet_8(code, S):
    """Chapter 4, exercise 8: the dropout experiment with the profile's weight decay, 20 epochs on 2,000
    images; for each seed, both networks start from the same weights."""
    return [(f"dropout {p}", lambda p=p: code.alexnet(1, 10, image_size=S.resize or 28,
                                                     **{**S.model, "dropout": p}), S.replace(num_epochs=20))
            for p in (0.5, 0.0)]


# name: (chapter key, notebook, variants, subset). Without a subset the variants train on the whole
# training split and are compared with the chapter's record; with one, among themselves, each with
# several seeds (on a small subset one run's luck moves the accuracy by several points). A run named
# after an exercise is quoted in that chapter's solutions, those in QUOTED_IN_TEXT in the chapter's text.
RUNS = {
    "training-4-5-6": ("training", "02_training_a_cnn.ipynb", training_4_5_6, None),
    "lenet-7-8": ("lenet", "03_lenet.ipynb", lenet_7_8, dict(train_subset=12_000, val_subset=2_000, seeds=3)),
    "alexnet-7": ("alexnet", "04_alexnet.ipynb", alexnet_7, dict(train_subset=6_000, val_subset=2_000, seeds=3)),
    "alexnet-8": ("alexnet", "04_alexnet.ipynb", alexnet_8, dict(train_subset=2_000, val_subset=2_000, seeds=3)),
    "googlenet-9": ("googlenet", "07_googlenet.ipynb", googlenet_9, None),
    "googlenet-10": ("googlenet", "07_googlenet.ipynb", googlenet_10, None),
    "googlenet-dropout": ("googlenet", "07_googlenet.ipynb", googlenet_dropout, None),
    "densenet-8": ("densenet", "10_densenet.ipynb", densenet_8, None),
    "resnet-8-9": ("resnet", "09_resnet.ipynb", resnet_8_9, None),
}
QUOTED_IN_TEXT = {"googlenet-dropout"}  # the profile's choice, explained where the profile is


def solution_code(notebook: str, number: int) -> str:
    """The Python block that solution ``number`` of a chapter shows: the code a solution teaches is the code
    this script measures, not a copy of it."""
    cells = nbformat.read(ROOT / "chapters" / notebook, as_version=4).cells
    text = "\n".join(c.source for c in cells if c.cell_type == "markdown")
    solutions = text[text.index("<summary>Solutions"):]
    item = re.search(rf"^{number}\. (.*?)(?=^\d+\. |</details>)", solutions, re.S | re.M)
    block = item and re.search(r"```python\n(.*?)\n *```", item.group(1), re.S)
    if not block:
        raise LookupError(f"{notebook}: solution {number} shows no Python code block")
    return textwrap.dedent(block.group(1))


def checkpointing_solution(code):
    """``use_checkpointing`` as DenseNet's solution 9 writes it, run against the chapter's ``code``."""
    namespace = {"torch": torch, "nn": nn, "DenseBlock": code.DenseBlock}
    exec(compile(solution_code("10_densenet.ipynb", 9), "10_densenet.ipynb, solution 9", "exec"), namespace)
    return namespace["use_checkpointing"]


def memory_kept(net: nn.Module, X: torch.Tensor) -> int:
    """Bytes that net(X) leaves allocated in training mode: what autograd keeps for the backward pass, plus
    the small output, as PyTorch's profiler counts the allocations."""
    net.train()
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        out = net(X)
    del out
    return prof.key_averages().total_average().self_cpu_memory_usage


def pass_times(net: nn.Module, X: torch.Tensor, passes: int) -> list[float]:
    """Seconds of each of ``passes`` forward and backward passes (cross-entropy loss), after one warm-up."""
    y, times = torch.zeros(len(X), dtype=torch.long), []
    for i in range(passes + 1):
        start = time.perf_counter()
        nn.functional.cross_entropy(net(X), y).backward()
        if i:
            times.append(time.perf_counter() - start)
        net.zero_grad(set_to_none=True)
    return times


def gradient_difference(a: nn.Module, b: nn.Module, X: torch.Tensor) -> float:
    """The largest difference between the gradients of two networks' losses on X."""
    y = torch.zeros(len(X), dtype=torch.long)
    for net in (a, b):
        net.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(net(X), y).backward()
    return max((p.grad - q.grad).abs().max().item() for p, q in zip(a.parameters(), b.parameters()))


def densenet_9() -> dict:
    """Chapter 10, exercise 9: activation memory and time of a training step with and without
    checkpointing each dense layer's first half, for the chapter's network and for DenseNet-121; the
    checkpointed forward is the solution's own code. In float32, on random images (neither memory nor time
    depends on what the images show)."""
    code = chapter_code(ROOT / "chapters" / "10_densenet.ipynb")
    use_checkpointing = checkpointing_solution(code)
    S = cnnbook.settings("densenet", "cpu")
    rows = []
    for network, build, shape, rounds, passes in [
            (f"the chapter's network (cpu profile), {S.model['block_config']} layers",
             lambda: code.densenet(1, 10, **S.model), (64, 1, 28, 28), 10, 5),
            ("DenseNet-121, 224 x 224 colour images", code.densenet, (4, 3, 224, 224), 12, 1)]:
        torch.manual_seed(0)
        nets = {"plain": build()}
        nets["checkpointed"] = use_checkpointing(copy.deepcopy(nets["plain"]))
        X = torch.randn(shape)
        kept = {name: memory_kept(net, X) for name, net in nets.items()}
        difference = gradient_difference(*nets.values(), X)  # recomputing must not change the gradients
        times = {name: [] for name in nets}
        for _ in range(rounds):  # alternate the two, so that the machine's drift hits both alike
            for name, net in nets.items():
                times[name] += pass_times(net, X, passes)
        for name in nets:
            rows.append(dict(network=network, checkpointing=name == "checkpointed", images=shape[0],
                             side=shape[-1], bytes_per_image=kept[name] / shape[0],
                             step_s=statistics.median(times[name]), passes=len(times[name]),
                             max_gradient_difference=difference))
            print(f"  {network}, {name}: {kib_or_mib(rows[-1]['bytes_per_image'])} per image, "
                  f"{rows[-1]['step_s']:.3f} s per pass (median of {len(times[name])}); largest gradient "
                  f"difference {difference:.1e}", flush=True)
    return dict(run="densenet-9", chapter="densenet", kind="measurement", precision="fp32",
                device=device_name(torch.device("cpu")),
                created=datetime.now(timezone.utc).isoformat(timespec="seconds"), rows=rows)


# Measurements that train nothing: name -> function returning the record.
MEASUREMENTS = {"densenet-9": densenet_9}


def summarise(label: str, lr: float, results: list) -> dict:
    """One row: the variant's runs (one per seed) averaged; ``val_accs`` keeps each seed's figure."""
    first = results[0]

    def mean(values):
        values = [v for v in values if v is not None]
        return sum(values) / len(values) if values else None

    statuses = {r.status for r in results}
    status = ("interrupted" if "interrupted" in statuses else "finished" if statuses == {"finished"}
              else f"diverged ({sum(r.status == 'diverged' for r in results)} of {len(results)} seeds)")
    return dict(variant=label, parameters=first.parameters, macs=first.macs, lr=lr,
                val_acc_epoch1=mean(r.history[0].get("val_acc") if r.history else None for r in results),
                val_acc=mean(r.val_acc for r in results), val_accs=[r.val_acc for r in results],
                train_acc=mean(r.train_acc for r in results), train_loss=mean(r.train_loss for r in results),
                precision=first.precision, status=status,
                epoch_s=mean(r.wall_time_s / r.num_epochs for r in results if r.num_epochs))


def run(name: str) -> dict:
    chapter, notebook, variants, subset = RUNS[name]
    reference = load_result(chapter)
    if reference is None or reference.val_acc is None:
        raise SystemExit(f"{name}: no finished record results/{chapter}.json to compare with: run the "
                         f"chapter first (make execute CHAPTERS=chapters/{notebook}).")
    S = cnnbook.settings(chapter, "cpu")
    code = chapter_code(ROOT / "chapters" / notebook)
    data = (cnnbook.load_fashion_mnist(train_subset=subset["train_subset"], val_subset=subset["val_subset"])
            if subset else cnnbook.load_fashion_mnist(settings=S))
    rows = [] if subset else [summarise(f"the chapter's network ({reference.architecture}, its record)",
                                        reference.settings.get("lr"), [reference])]
    epochs, seeds = set(), range(subset.get("seeds", 1) if subset else 1)
    for label, build, settings in variants(code, S):
        results = []
        for seed in seeds:
            seed_everything(seed)
            try:
                results.append(cnnbook.train(build(), data, settings, architecture=label, verbose=False,
                                             precision=reference.precision, seed=seed))
            except TrainingDiverged as err:  # a learning rate too large is an answer too
                results.append(err.result)
        rows.append(summarise(label, settings.lr, results))
        epochs.add(settings.num_epochs)
        print(f"  {label}: {rows[-1]['status']}, validation {rows[-1]['val_acc']}", flush=True)
    return dict(run=name, chapter=chapter, epochs=max(epochs), training_images=len(data.train_labels),
                validation_images=len(data.val_labels), seeds=len(seeds),
                device=results[-1].device_name,
                created=datetime.now(timezone.utc).isoformat(timespec="seconds"), rows=rows)


def table(record: dict) -> str:
    lines = [f"**{record['run']}** ({plural(record['epochs'], 'epoch')}, {record.get('training_images', 55_000):,} "
             f"training and {record['validation_images']:,} validation images, {record['device']}, "
             f"{record['created'][:10]})", "",
             "| variant | parameters | multiply-adds | lr | val. acc. after epoch 1 | val. acc. | "
             "train. acc. | final training loss | s / epoch |", "|---|--:|--:|--:|--:|--:|--:|--:|--:|"]
    def show(value, fmt, missing="–"):
        return missing if value is None else fmt.format(value)

    def spread(values):  # several seeds: their range
        values = [v for v in values or [] if v is not None]
        return f" ({100 * min(values):.1f}–{100 * max(values):.1f})" if len(values) > 1 else ""

    for r in record["rows"]:
        status = r.get("status", "–")
        lines.append(" | ".join([
            f"| {r['variant']}", f"{r['parameters']:,}", f"{r['macs']:,}", str(r["lr"]),
            show(r["val_acc_epoch1"] and 100 * r["val_acc_epoch1"], "{:.1f} %", status),
            show(r["val_acc"] and 100 * r["val_acc"], "{:.1f} %", status) + spread(r.get("val_accs")),
            show(r.get("train_acc") and 100 * r["train_acc"], "{:.1f} %"),
            show(r["train_loss"], "{:.3f}"), show(r.get("epoch_s"), "{:.1f}")]) + " |")
    return "\n".join(lines)


def measurement_table(record: dict) -> str:
    lines = [f"**{record['run']}** ({record['precision']}, {record['device']}, {record['created'][:10]}; time: "
             "median of the forward and backward passes, the two forms alternated)", "",
             "| network | checkpointing | images per batch | kept after the forward pass, per image | "
             "s per forward and backward pass |", "|---|---|--:|--:|--:|"]
    for r in record["rows"]:
        lines.append(f"| {r['network']} | {'yes' if r['checkpointing'] else 'no'} | {r['images']} | "
                     f"{kib_or_mib(r['bytes_per_image'])} | {r['step_s']:.3f} |")
    return "\n".join(lines)


def kib_or_mib(n: float) -> str:
    """A size as the solutions write it: 673 KiB, 125 MiB."""
    return f"{n / 2 ** 20:,.0f} MiB" if n >= 10 * 2 ** 20 else f"{n / 2 ** 10:,.0f} KiB"


def run_names(argv=None) -> list[str]:
    """The runs the command line names, in order; none, or "all", is every run."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    # a string default: argparse checks a nargs="*" default against the choices as it is
    parser.add_argument("runs", nargs="*", choices=[*RUNS, *MEASUREMENTS, "all"], default="all")
    runs = parser.parse_args(argv).runs
    runs = [runs] if isinstance(runs, str) else runs
    return [*RUNS, *MEASUREMENTS] if "all" in runs else runs


def main(argv=None) -> None:
    names = run_names(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    for name in names:
        print(f"{name} ...", flush=True)
        if name in MEASUREMENTS:  # an interrupted measurement raises before anything is written
            write_json_atomically(OUT / f"{name}.json", record := MEASUREMENTS[name]())
            print(measurement_table(record), "\n", flush=True)
            continue
        record = run(name)
        unfinished = [r["variant"] for r in record["rows"] if r.get("status") == "interrupted"]
        if unfinished:  # an interrupted run never replaces a finished record (a diverged one is an answer)
            print(f"{name}: not written ({', '.join(unfinished)} did not finish); "
                  f"results/exercises/{name}.json is unchanged.", flush=True)
            continue
        write_json_atomically(OUT / f"{name}.json", record)
        print(table(record), "\n", flush=True)


if __name__ == "__main__":
    main()
