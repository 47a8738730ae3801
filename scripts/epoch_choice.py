"""The runs that chose the `cpu` profile's epoch counts, on the validation split only (issue 25).

    python scripts/epoch_choice.py vgg:7 vgg:6 googlenet:4 [--precision fp32]

Each ``chapter:epochs`` trains the chapter's `cpu`-profile network (built by the chapter's own code) with
its settings and ``num_epochs=epochs``, seed 0, in float32 by default (the arithmetic the book's runs use),
and reports the **validation** accuracy, the training accuracy and the training time; the test set is not
read. Appends one JSON line per run to ``benchmarks/results/epoch-choice-cpu.jsonl``; the comments in
``cnnbook/profiles.py`` quote it. Times are one run's, on whatever else the machine was doing.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "benchmarks" / "results" / "epoch-choice-cpu.jsonl"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", help="chapter:epochs, e.g. vgg:7")
    parser.add_argument("--precision", choices=("fp32", "bf16", "auto"), default="fp32")
    args = parser.parse_args(argv)
    os.environ["CNNBOOK_PRECISION"] = args.precision

    import cnnbook
    from cnnbook.book import build_network
    from cnnbook.profiles import settings, seed_everything
    from cnnbook.results import versions

    data = cnnbook.load_fashion_mnist()
    for spec in args.runs:
        chapter, _, epochs = spec.partition(":")
        if not epochs.isdigit():
            parser.error(f"{spec!r}: write chapter:epochs, e.g. vgg:7")
        S = settings(chapter, "cpu").replace(num_epochs=int(epochs))
        seed_everything(0)
        net = build_network(chapter, "cpu")
        start = time.perf_counter()
        r = cnnbook.train(net, data, S, verbose=False, plot=False)  # validation only: no test set
        row = dict(chapter=chapter, epochs=S.num_epochs, precision=r.precision, val_acc=r.val_acc,
                   train_acc=round(r.train_acc, 4), seconds=round(time.perf_counter() - start, 1),
                   images_per_s=round(r.examples_per_s), settings=dict(lr=S.lr, optimizer=S.optimizer,
                   momentum=S.momentum, batch_size=S.batch_size), cnnbook=versions().get("cnnbook"),
                   created=datetime.now(timezone.utc).isoformat(timespec="seconds"))
        print(json.dumps(row), flush=True)
        with OUT.open("a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
