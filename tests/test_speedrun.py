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
    assert speedrun.default_out("test", [], 20).name == "speedrun-cpu-20-epochs"
    assert speedrun.default_out("test", [], speedrun.RECIPE.num_epochs).name == "speedrun-cpu"


def test_a_rerun_adds_a_record_and_never_replaces_one(speedrun, tmp_path):
    out = tmp_path / "speedrun-cpu"
    assert speedrun.unused(out) == out
    (tmp_path / "speedrun-cpu.json").write_text("{}")
    assert speedrun.unused(out).name == "speedrun-cpu-run2"
    (tmp_path / "speedrun-cpu-run2.json").write_text("{}")
    assert speedrun.unused(out).name == "speedrun-cpu-run3"
    # the committed record of the recipe is taken: a plain rerun writes beside it
    assert speedrun.unused(RESULTS / "speedrun-cpu") != RESULTS / "speedrun-cpu"


def test_the_recipe_is_the_profile_tables_and_the_network_chapter_12s(speedrun):
    import cnnbook
    from cnnbook.book import build_network

    assert speedrun.RECIPE == cnnbook.settings("speedrun", "cpu")
    assert speedrun.TRICKS["first_side"] == speedrun.CHAPTER.FIRST_SIDE
    net = build_network("speedrun")
    assert cnnbook.count_params(net) == cnnbook.count_params(speedrun.CHAPTER.speedrun_net(**speedrun.RECIPE.model))


def test_each_ablation_takes_out_its_idea(speedrun):
    full = speedrun.ablated([])
    for name in speedrun.ABLATIONS:
        assert speedrun.ablated([name]) != full, name
    S, tricks, precision = speedrun.ablated(list(speedrun.ABLATIONS))
    assert S.label_smoothing == 0 and not S.augment and not S.model["residual"] and precision == "fp32"
    assert S.model["stem"] == "3x3+pool" and "stem" not in full[0].model
    assert tricks == dict(tta=False, channels_last=False, first_side=28)


@pytest.mark.parametrize("num_epochs", [1, 2, 5, 8, 13])
def test_progressive_sides_grow_and_end_at_28(speedrun, num_epochs):
    sides = speedrun.CHAPTER.image_sides(num_epochs, 20)
    assert len(sides) == num_epochs and sides == sorted(sides) and sides[-1] == 28
    assert all(side % 2 == 0 and 20 <= side <= 28 for side in sides)
    assert speedrun.CHAPTER.image_sides(num_epochs, 28) == [28] * num_epochs


@pytest.mark.parametrize("side", [20, 22, 26, 28])
@pytest.mark.parametrize("residual", [True, False])
@pytest.mark.parametrize("stem", ["stride-2", "3x3+pool"])
def test_the_network_takes_every_side_it_trains_on(speedrun, side, residual, stem):
    assert_trains(speedrun.CHAPTER.speedrun_net(residual=residual, stem=stem), side=side)


def test_the_timed_run_wants_one_side_per_epoch(speedrun, tiny_data):
    from cnnbook.errors import SettingsError
    from cnnbook.speedrun import timed_run

    S = speedrun.RECIPE.replace(num_epochs=3)
    with pytest.raises(SettingsError, match="one whole-number image side"):
        timed_run(speedrun.CHAPTER.speedrun_net, tiny_data, S, [20, 24, 28, 28])


def test_summary_fraction_and_sample_std(speedrun):
    runs = [dict(seed=i, seconds=s, accuracy=a) for i, (s, a) in enumerate([(50, 0.931), (55, 0.929),
                                                                            (58, 0.935), (59, 0.930),
                                                                            (57, 0.932)])]
    s = speedrun.summarise(runs)
    assert s["reached"] == 0.8 and s["mean_acc"] == pytest.approx(0.9314) and s["goal_met"]
    assert s["std_acc"] == pytest.approx(0.0023022, rel=1e-4)  # sample std (n - 1)
    assert not speedrun.summarise(runs[:4])["goal_met"]  # fewer than 5 seeds
    assert not speedrun.summarise(runs + [dict(seed=5, seconds=61, accuracy=0.94)])["goal_met"]


def _record(ablate, accs, secs, seeds=None):
    runs = [dict(seed=k, accuracy=a, seconds=t) for k, a, t in zip(seeds or range(len(accs)), accs, secs)]
    from cnnbook.speedrun import summarise
    return dict(ablate=ablate, runs=runs, summary=summarise(runs), settings=dict(num_epochs=10))


def test_ablation_verdicts_compare_seed_by_seed_and_name_a_collapsed_seed():
    from cnnbook.speedrun import ablation_table, difference, verdict, verdicts

    full = _record([], [0.922, 0.918, 0.918, 0.924, 0.925], [49, 49, 50, 49, 49])
    # each seed 0.3-0.4 points lower: beyond the noise seed by seed, though the means' spreads overlap
    tta = _record(["no-tta"], [0.919, 0.915, 0.914, 0.920, 0.922], [49, 50, 49, 50, 49])
    d, se, paired = difference(tta, full, "accuracy")
    assert paired and d == pytest.approx(-0.0034) and se < 0.001
    assert "lower beyond the noise" in verdict(tta, full)
    assert "identical to the recipe's" in verdict(_record(["x"], *[[r[k] for r in full["runs"]]
                                                                  for k in ("accuracy", "seconds")]), full)
    slow = _record(["fp32"], [0.921, 0.919, 0.917, 0.924, 0.926], [65, 66, 65, 64, 66])
    assert "time longer beyond the noise" in verdict(slow, full)
    assert "time within the noise" in verdict(slow, full, time_floor=20)  # the machine's drift is larger
    collapsed = _record(["no-augment"], [0.923, 0.8726, 0.9256, 0.9226, 0.9162], [46, 46, 48, 49, 49])
    assert "seed 1 ended far below the others (87.26 %" in verdict(collapsed, full)
    assert "far below" not in verdict(tta, full)
    unpaired = _record(["y"], [0.92, 0.921], [50, 50], seeds=[7, 8])
    assert difference(unpaired, full, "accuracy")[2] is False
    table = ablation_table([tta, full, slow])
    rows = table.splitlines()[2:]
    assert rows[0].startswith("| nothing (the recipe) |") and len(rows) == 3
    lines = verdicts([tta, full, slow], time_floor=2.3).splitlines()
    assert [line.split("**")[1] for line in lines] == ["fp32", "no-tta"]
    assert "time longer beyond the noise" in lines[0] and "lower beyond the noise" in lines[1]


def test_the_committed_records_are_the_recipes_and_the_chapter_reads_them():
    from cnnbook.speedrun import load_record, load_records

    val = load_records("val")
    names = sorted(tuple(r["ablate"]) for r in val)
    assert names == sorted([()] + [(name,) for name in speedrun_ablations()])
    for r in val + [load_record("speedrun-cpu"), load_record("speedrun-cpu-run2")]:
        assert len(r["runs"]) >= 5 and r["settings"]["num_epochs"] == 10 and not r["smoke"]
    twice = [load_record("speedrun-cpu"), load_record("speedrun-cpu-run2")]
    assert [x["accuracy"] for x in twice[0]["runs"]] == [x["accuracy"] for x in twice[1]["runs"]]


def speedrun_ablations():
    from cnnbook.speedrun import ABLATIONS
    return list(ABLATIONS)


def test_profile_and_layer_times_cover_the_step_and_every_layer():
    import cnnbook
    from cnnbook.book import chapter_code
    from cnnbook.speedrun import layer_times, profile_steps

    code = chapter_code("12_speedrun.ipynb")
    S = cnnbook.settings("speedrun", "smoke")
    rows = layer_times(code.speedrun_net(**S.model), batch_size=8, repeats=1)
    assert [r[0] for r in rows] == list(range(7)) and rows[-1][2] == (10,) and all(r[3] > 0 for r in rows)
    try:
        data = cnnbook.load_fashion_mnist(settings=S)
    except cnnbook.DataError:
        pytest.skip("Fashion-MNIST is not on this machine")
    kinds = profile_steps(lambda: code.speedrun_net(**S.model), data, S.replace(batch_size=64), steps=3)
    assert {k for k, _, _ in kinds} >= {"convolution", "batch norm", "ReLU"}
    assert sum(share for _, _, share in kinds) == pytest.approx(1.0)


def test_beat_the_record_exercise_checks_every_condition():
    from cnnbook.exercises import check

    good = [dict(seed=k, seconds=55.0, accuracy=0.932) for k in range(5)]
    assert check("speedrun/beat-the-record", good)
    assert check("speedrun/beat-the-record", dict(runs=good))  # a benchmark record
    cases = {
        "under 93.0 %": [dict(r, accuracy=0.9157) for r in good],
        "Over the 60 s limit (seed 3: 61.0 s)": [dict(r, seconds=61.0) if r["seed"] == 3 else r for r in good],
        "at least 5 seeds": good[:4],
        "seeds repeat": [dict(r, seed=0) for r in good],
        "looks like a percentage": [dict(r, accuracy=93.2) for r in good],
        "not a dict": [1, 2, 3, 4, 5],
        "No answer yet": None,
        "evaluated on the val split": [dict(r, split="val") for r in good],
        "trained on cuda": [dict(r, device="cuda") for r in good],
    }
    for reason, answer in cases.items():
        result = check("speedrun/beat-the-record", answer)
        assert not result and reason in str(result), (reason, str(result))
