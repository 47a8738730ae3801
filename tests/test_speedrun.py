"""benchmarks/speedrun.py in seconds: its smoke run's rows and summary, where it writes, its recipe's pieces.

Its accuracies and times are measurements it prints, not tested here."""
from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest
import torch

from cnnbook.data import DataError, locate

from conftest import assert_trains

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


@pytest.fixture(scope="module")
def speedrun():
    spec = importlib.util.spec_from_file_location("speedrun", ROOT / "benchmarks" / "speedrun.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def snapshot(folder: Path) -> dict[str, float]:
    return {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} if folder.is_dir() else {}


def test_smoke_run_prints_a_row_per_seed_and_the_summary_and_writes_outside_the_results(speedrun, capsys):
    try:
        locate(allow_download=False)
    except DataError:
        pytest.skip("Fashion-MNIST is not on this machine")
    before = snapshot(RESULTS)
    record = speedrun.main(["--smoke", "--seeds", "2"])
    printed = capsys.readouterr().out
    try:
        assert snapshot(RESULTS) == before, "a smoke run wrote into benchmarks/results/"
        assert [r["seed"] for r in record["runs"]] == [0, 1]
        for r in record["runs"]:
            assert r["seconds"] > 0 and 0 <= r["accuracy"] <= 1
            assert f"seed {r['seed']}: " in printed
            assert f"test accuracy {100 * r['accuracy']:.2f} %" in printed
        s = record["summary"]
        assert s["seeds"] == 2 and s["reached"] in (0, 0.5, 1) and s["std_acc"] is not None
        assert not s["goal_met"]  # two seeds of a smoke run never meet it
        assert "mean over 2 seeds" in printed and "of seeds at 93 % or more" in printed
        machine = record["machine"]
        assert machine["cpu"] in printed and f"{machine['threads']} threads" in printed
        assert f"torch {torch.__version__}" in printed and "native bfloat16: " in printed
        assert record["precision"] in ("fp32", "bf16") and record["smoke"] and record["sides"] == [28]
        json_path, md_path = map(Path, record["files"])
        assert not json_path.resolve().is_relative_to(RESULTS.resolve())
        assert json.loads(json_path.read_text())["runs"] == json.loads(json.dumps(record["runs"]))
        table = md_path.read_text()
        assert "| 0 | " in table and "| 1 | " in table and "| mean ± std |" in table
    finally:
        for path in record.get("files", []):
            if "speedrun-smoke-" in path:
                shutil.rmtree(Path(path).parent, ignore_errors=True)


def test_a_smoke_run_refuses_to_write_into_the_results(speedrun):
    with pytest.raises(SystemExit):
        speedrun.parse_args(["--smoke", "--out", str(RESULTS / "speedrun-cpu")])


def test_ablations_and_validation_runs_never_replace_the_record(speedrun):
    assert speedrun.default_out("test", []) == RESULTS / "speedrun-cpu"
    assert speedrun.default_out("val", []).name == "speedrun-cpu-val"
    assert speedrun.default_out("test", ["no-tta"]).name == "speedrun-cpu-no-tta"


def test_each_ablation_takes_out_its_idea(speedrun):
    full = speedrun.ablated([])
    for name in speedrun.ABLATIONS:
        assert speedrun.ablated([name]) != full, name
    S, tricks, precision = speedrun.ablated(list(speedrun.ABLATIONS))
    assert S.label_smoothing == 0 and not S.augment and not S.model["residual"] and precision == "fp32"
    assert tricks == dict(tta=False, channels_last=False, first_side=28)


@pytest.mark.parametrize("num_epochs", [1, 2, 5, 8, 13])
def test_progressive_sides_grow_and_end_at_28(speedrun, num_epochs):
    sides = speedrun.image_sides(num_epochs, 20)
    assert len(sides) == num_epochs and sides == sorted(sides) and sides[-1] == 28
    assert all(side % 2 == 0 and 20 <= side <= 28 for side in sides)
    assert speedrun.image_sides(num_epochs, 28) == [28] * num_epochs


@pytest.mark.parametrize("side", [20, 22, 26, 28])
@pytest.mark.parametrize("residual", [True, False])
def test_the_network_takes_every_side_it_trains_on(speedrun, side, residual):
    assert_trains(speedrun.speedrun_net(residual=residual), side=side)


def test_summary_fraction_and_sample_std(speedrun):
    runs = [dict(seed=i, seconds=s, accuracy=a) for i, (s, a) in enumerate([(50, 0.931), (55, 0.929),
                                                                            (58, 0.935), (59, 0.930),
                                                                            (57, 0.932)])]
    s = speedrun.summarise(runs)
    assert s["reached"] == 0.8 and s["mean_acc"] == pytest.approx(0.9314) and s["goal_met"]
    assert s["std_acc"] == pytest.approx(0.0023022, rel=1e-4)  # sample std (n - 1)
    assert not speedrun.summarise(runs[:4])["goal_met"]  # fewer than 5 seeds
    assert not speedrun.summarise(runs + [dict(seed=5, seconds=61, accuracy=0.94)])["goal_met"]
