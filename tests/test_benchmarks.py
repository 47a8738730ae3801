"""The speed benchmark's bookkeeping (its timings are figures it prints, not tested here), and d2l's place."""
from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def speed():
    spec = importlib.util.spec_from_file_location("speed", ROOT / "benchmarks" / "speed.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_median_run_keeps_the_median_and_every_repeat(speed):
    runs = [dict(examples_per_s=s, epoch_s=60000 / s, test_acc=a) for s, a in ((300, 0.7), (100, 0.8), (200, 0.9))]
    mid = speed.median_run(runs)
    assert mid["examples_per_s"] == 200 and mid["test_acc"] == 0.9
    assert mid["repeats"] == [300, 100, 200]


def test_table_ratios(speed):
    run = lambda s: dict(examples_per_s=s, epoch_s=1.0, test_acc=0.8)  # noqa: E731
    record = dict(machine=dict(device_name="CPU (2 threads)", cpu="x", cpu_count=2, python="3", torch="2"),
                  created="2026-01-01T00:00:00", repeats=3,
                  benchmarks=[dict(name="Net", recipe=dict(num_epochs=10), ceiling=dict(examples_per_s=4000.0),
                                   d2l=run(1000.0), cnnbook=run(3600.0))])
    table = speed.markdown(record)
    assert re.search(r"\| Net, 10 epochs \| d2l \| fp32 \| 1,000 \| .* \| 1\.00× \| 0\.25× \|", table)
    assert re.search(r"\|  \| cnnbook \| fp32 \| 3,600 \| .* \| 3\.60× \| 0\.90× \|", table)


def test_each_trainer_meets_the_ceiling_in_its_own_precision_and_pairs_are_divided(speed):
    run = lambda s, p, reps: dict(examples_per_s=s, epoch_s=1.0, test_acc=0.8, precision=p, repeats=reps)  # noqa: E731
    record = dict(machine=dict(device_name="CPU", cpu="x", cpu_count=2, python="3", torch="2"),
                  created="2026-01-01T00:00:00", repeats=3,
                  benchmarks=[dict(name="Net", recipe=dict(num_epochs=10),
                                   ceilings=dict(fp32=dict(examples_per_s=4000.0), bf16=dict(examples_per_s=6000.0)),
                                   d2l=run(1000.0, "fp32", [1000.0, 900.0, 1100.0]),
                                   cnnbook=run(4800.0, "bf16", [4800.0, 3600.0, 3300.0]))])
    table = speed.markdown(record)
    assert re.search(r"\|  \| cnnbook \| bf16 \| 4,800 \| .* \| 4\.80× \| 0\.80× \|", table)
    assert re.search(r"\| Net, 10 epochs \| d2l \| fp32 \| 1,000 \| .* \| 1\.00× \| 0\.25× \|", table)
    assert "| | ceiling | bf16 | 6,000 |" in table
    assert "cnnbook / d2l by repeat 4.80×, 4.00×, 3.00× (median 4.00×)" in table


def test_d2l_finds_the_local_files_uncompressed(speed, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    work = speed.d2l_workdir()
    raw = work.parent / "data" / "FashionMNIST" / "raw"  # d2l reads root="../data"
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte"):
        assert (raw / name).read_bytes()[:3] == b"\x00\x00\x08"


def test_d2l_is_never_a_dependency_of_the_book():
    for path in (ROOT / "requirements.txt", ROOT / "pyproject.toml"):
        assert "d2l" not in path.read_text().lower()
    sources = list((ROOT / "cnnbook").glob("*.py")) + list((ROOT / "chapters").glob("*.ipynb"))
    for path in sources:
        assert not re.search(r"(import|from) d2l", path.read_text()), f"{path.name} imports d2l"
