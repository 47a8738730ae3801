"""The training runs that some exercise solutions quote, rerunnable on any machine.

    python scripts/exercise_runs.py googlenet-9 googlenet-10 densenet-8     # or: all (default)

Each run trains variants of a chapter's `cpu`-profile network with that chapter's settings, on the
training split, and compares them on the **validation** split with the chapter's own run (its record in
``results/<chapter>.json``: same settings, same split; the test set is not used). Networks come from the
chapters' own code (``chapter_code``); each variant starts from seed 0 and trains in the precision the
chapter's record used, so it differs from the chapter's run only in what the exercise changes.

Writes ``results/exercises/<run>.json`` and prints a Markdown table per run; the solutions cite the file.
Times on this repository's 2-core CPU: googlenet-9 about 10 minutes, googlenet-10 4, densenet-8 2,
resnet-8-9 6. Seconds per epoch are one run's, on whatever else the machine was doing.
"""
from __future__ import annotations

import argparse
import ast
import json
import sys
from datetime import datetime, timezone
from pathlib import Path

import nbformat
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import cnnbook  # noqa: E402
from cnnbook.book import chapter_code  # noqa: E402
from cnnbook.profiles import seed_everything  # noqa: E402
from cnnbook.results import load_result, write_json_atomically  # noqa: E402
from cnnbook.train import TrainingDiverged  # noqa: E402

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


def densenet_8(code, S):
    """Exercise 8: no compression in the transitions (DenseNet-B)."""
    return [("compression 1.0", lambda: code.densenet(1, 10, **{**S.model, "compression": 1.0}), S)]


def resnet_8_9(code, S):
    """Exercises 8 and 9: no shortcuts; bottleneck blocks with the widths divided by 4."""
    narrow = tuple(w // 4 for w in S.model["widths"])
    return [("no shortcuts", lambda: code.resnet(1, 10, **{**S.model, "shortcut": False}), S),
            ("bottleneck blocks, widths / 4",
             lambda: code.resnet(1, 10, **{**S.model, "block": "bottleneck", "widths": narrow}), S)]


RUNS = {  # name: (chapter key, notebook, variants)
    "googlenet-9": ("googlenet", "07_googlenet.ipynb", googlenet_9),
    "googlenet-10": ("googlenet", "07_googlenet.ipynb", googlenet_10),
    "densenet-8": ("densenet", "10_densenet.ipynb", densenet_8),
    "resnet-8-9": ("resnet", "09_resnet.ipynb", resnet_8_9),
}


def run(name: str) -> dict:
    chapter, notebook, variants = RUNS[name]
    reference = load_result(chapter)
    if reference is None or reference.val_acc is None:
        raise SystemExit(f"{name}: no finished record results/{chapter}.json to compare with: run the "
                         f"chapter first (make execute CHAPTERS=chapters/{notebook}).")
    S = cnnbook.settings(chapter, "cpu")
    code = chapter_code(ROOT / "chapters" / notebook)
    data = cnnbook.load_fashion_mnist(settings=S)
    rows = [dict(variant=f"the chapter's network ({reference.architecture}, its record)",
                 parameters=reference.parameters, macs=reference.macs, lr=reference.settings.get("lr"),
                 val_acc_epoch1=reference.history[0].get("val_acc") if reference.history else None,
                 val_acc=reference.val_acc, train_loss=reference.train_loss, precision=reference.precision,
                 epoch_s=reference.wall_time_s / reference.num_epochs)]
    for label, build, settings in variants(code, S):
        seed_everything(0)
        try:
            result = cnnbook.train(build(), data, settings, architecture=label, verbose=False,
                                   precision=reference.precision)
        except TrainingDiverged as err:  # a learning rate too large is an answer too
            result = err.result
        rows.append(dict(variant=label, parameters=result.parameters, macs=result.macs, lr=settings.lr,
                         val_acc_epoch1=result.history[0]["val_acc"] if result.history else None,
                         val_acc=result.val_acc,
                         train_loss=result.train_loss, precision=result.precision, status=result.status,
                         epoch_s=result.wall_time_s / result.num_epochs))
        print(f"  {label}: {result.status}, validation {result.val_acc}", flush=True)
    return dict(run=name, chapter=chapter, epochs=S.num_epochs, validation_images=len(data.val_labels),
                device=result.device_name,
                created=datetime.now(timezone.utc).isoformat(timespec="seconds"), rows=rows)


def table(record: dict) -> str:
    lines = [f"**{record['run']}** ({record['epochs']} epochs, {record['validation_images']:,} validation "
             f"images, {record['device']}, {record['created'][:10]})", "",
             "| variant | parameters | multiply-adds | lr | val. acc. after epoch 1 | val. acc. | "
             "final training loss | s / epoch |", "|---|--:|--:|--:|--:|--:|--:|--:|"]
    def show(value, fmt, missing="–"):
        return missing if value is None else fmt.format(value)

    for r in record["rows"]:
        status = r.get("status", "–")
        lines.append(" | ".join([
            f"| {r['variant']}", f"{r['parameters']:,}", f"{r['macs']:,}", str(r["lr"]),
            show(r["val_acc_epoch1"] and 100 * r["val_acc_epoch1"], "{:.1f} %", status),
            show(r["val_acc"] and 100 * r["val_acc"], "{:.1f} %", status),
            show(r["train_loss"], "{:.3f}"), show(r.get("epoch_s"), "{:.0f}")]) + " |")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="*", choices=[*RUNS, "all"], default=["all"])
    names = list(RUNS) if "all" in (args := parser.parse_args(argv)).runs else args.runs
    OUT.mkdir(parents=True, exist_ok=True)
    for name in names:
        print(f"{name} ...", flush=True)
        record = run(name)
        unfinished = [r["variant"] for r in record["rows"] if r.get("status") == "interrupted"]
        if unfinished:  # an interrupted or diverged run never replaces a finished record
            print(f"{name}: not written ({', '.join(unfinished)} did not finish); "
                  f"results/exercises/{name}.json is unchanged.", flush=True)
            continue
        write_json_atomically(OUT / f"{name}.json", record)
        print(table(record), "\n", flush=True)


if __name__ == "__main__":
    main()
