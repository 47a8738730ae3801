"""benchmarks/gpu_check.py on the CPU, in seconds: the rows it reports, its verdicts and its T4 prediction.

Its figures (speeds, memory on a GPU) are measurements it prints, not tested here."""
from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest
import torch

import cnnbook
from cnnbook.data import DataError, locate

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "benchmarks" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_small_network_learns_and_its_row_says_so(gpu_check, tiny_data):
    row = gpu_check.check_chapter("lenet", tiny_data, steps=30, warmup=5, eval_images=150)
    S = cnnbook.settings("lenet", "gpu")
    assert row["held_out_split"] == ("val" if tiny_data.val_labels is not None else "test")
    assert row["held_out_images"] == min(150, len(tiny_data.split(row["held_out_split"])[1]))
    assert len(row["losses"]) == 30 and row["loss_falls"] and row["accuracy"] >= 0.3 and row["learns"]
    assert row["memory_method"] == "estimate" and row["memory"] > 14 * row["parameters"] and row["fits"]
    assert row["batch_size"] == S.batch_size and row["num_epochs"] == S.num_epochs
    assert row["train_per_s"] > 0 and row["eval_per_s"] > 0 and row["macs"] > 0 and row["layers"] > 5
    assert row["t4"]["a_s"] is None and row["t4"]["method"] == "b"  # no fp16 peak known for a CPU
    assert row["t4_s"] == row["t4"]["b_s"] and row["within_budget"] == (row["t4_s"] <= 300)


def test_a_network_that_does_not_learn_is_flagged(gpu_check, tiny_data):
    frozen = cnnbook.settings("lenet", "gpu").replace(lr=1e-9, schedule="constant", augment=False)
    row = gpu_check.check_chapter("lenet", tiny_data, steps=12, warmup=2, eval_images=100, batch_size=32, S=frozen)
    assert not row["loss_falls"] and not row["learns"]
    v = gpu_check.verdict([row])
    assert v["learns"] == ["lenet"] and not v["ok"]
    assert "DOES NOT LEARN" in gpu_check.row_line(row)


@pytest.mark.parametrize("losses, accuracy, learns", [
    ([2.3] * 10 + [1.0] * 10, 0.6, True),
    ([2.3] * 20, 0.6, False),  # the loss does not fall
    ([2.3] * 10 + [1.0] * 10, 0.12, False),  # near chance
    ([2.3] * 10 + [float("nan")] * 10, 0.6, False),  # diverged
])
def test_learning_verdict(gpu_check, losses, accuracy, learns):
    assert gpu_check.learning_verdict(losses, accuracy)["learns"] is learns


def test_memory_estimate_counts_weights_and_grows_with_the_batch(gpu_check):
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(),
                              torch.nn.Linear(8 * 28 * 28, 10))
    S = cnnbook.settings("lenet", "gpu")  # SGD with momentum: weights, gradients, momentum, fp16 copy
    params = sum(p.numel() for p in net.parameters())
    activations = 2 * (8 + 8 + 8 + 10 / 784) * 28 * 28  # fp16 bytes per image of the four layers' outputs
    assert gpu_check.estimate_memory(net, S, 28) == pytest.approx(14 * params + 2 * activations * S.batch_size,
                                                                   rel=1e-3)
    bigger = gpu_check.estimate_memory(net, S.replace(batch_size=2 * S.batch_size), 28, data_bytes=1000)
    assert bigger > gpu_check.estimate_memory(net, S, 28) + 1000
    adamw = gpu_check.estimate_memory(net, S.replace(optimizer="adamw"), 28)
    assert adamw - gpu_check.estimate_memory(net, S, 28) == 4 * params  # a second state copy


def test_t4_prediction_uses_arithmetic_or_the_measured_step_and_shows_the_peak_bound(gpu_check):
    # measured on a GPU 10x a T4's peak: 10,000 training and 100,000 evaluated images/s here
    t4 = gpu_check.predict_t4(num_epochs=2, batch_size=100, macs=1_000_000, layers=10, train_per_s=1e4,
                              eval_per_s=1e5, speedup_over_t4=10)
    # (a), a bound only: the rates here / 10
    assert t4["a_s"] == pytest.approx(2 * (55_000 / 1_000 + 15_000 / 10_000))
    # (b): a small network is bound by the host: the step measured here (100 / 10,000 s) x 2
    assert t4["b_s"] == pytest.approx(2 * (550 * 0.02 + 15 * 0.02)) and t4["b_bound"] == "host"
    assert t4["method"] == "b" and t4["seconds"] == t4["b_s"]
    # a big network is bound by its multiply-adds: 3 x 1 G x 100 / 7.5 T per step, 1 G x 1,000 / 7.5 T per batch
    big = gpu_check.predict_t4(2, 100, 10**9, 10, train_per_s=1e4, eval_per_s=1e5, speedup_over_t4=None)
    assert big["b_s"] == pytest.approx(2 * (550 * 3e11 / 7.5e12 + 15 * 1e12 / 7.5e12)) and big["b_bound"] == "compute"
    assert big["a_s"] is None and big["method"] == "b" and big["seconds"] == big["b_s"]
    # on a CPU (nothing measured on a GPU): the launch model, 3 ms + 3 x 10 layers x 10 us per step
    cpu = gpu_check.predict_t4(2, 100, 1_000_000, 10, 1e4, 1e5, speedup_over_t4=None)
    assert cpu["b_s"] == pytest.approx(2 * (550 * 3.3e-3 + 15 * 1.1e-3))


@pytest.mark.parametrize("name, peak", [
    ("NVIDIA H100 80GB HBM3", 989), ("NVIDIA H100 PCIe", 756), ("NVIDIA H200", 989), ("Tesla T4", 65),
    ("NVIDIA A10G", 70), ("NVIDIA A100-SXM4-40GB", 312), ("NVIDIA GeForce RTX 4090", None),
])
def test_fp16_peak_by_device_name(gpu_check, name, peak):
    assert gpu_check.fp16_peak(name) == peak


def test_the_book_verdict(gpu_check):
    def row(chapter, t4_s, **extra):
        return dict(chapter=chapter, learns=True, fits=True, t4_s=t4_s, within_budget=t4_s <= 300, **extra)

    assert gpu_check.verdict([row("lenet", 200), row("resnet", 280)])["ok"]
    over = gpu_check.verdict([row(f"net{i}", 290) for i in range(10)])  # each within 5 min, 48 min in all
    assert not over["ok"] and not over["book_within_budget"] and over["chapter_budget"] == []
    slow = gpu_check.verdict([row("lenet", 200), row("resnet", 301)])
    assert slow["chapter_budget"] == ["resnet"] and not slow["ok"]
    unfit = gpu_check.verdict([row("alexnet", 100) | dict(fits=False)])
    assert unfit["fits"] == ["alexnet"] and not unfit["ok"]


def test_one_failing_chapter_is_reported_and_the_others_run(gpu_check, tiny_data, monkeypatch, tmp_path):
    real = gpu_check.build_network

    def build(chapter, profile="cpu"):
        if chapter == "vgg":
            raise RuntimeError("CUDA out of memory (pretend)")
        return real(chapter, profile)

    monkeypatch.setattr(gpu_check, "build_network", build)
    record = gpu_check.run_checks(tiny_data, ["vgg", "lenet"], steps=6, warmup=1, eval_images=64, batch_size=32)
    failed, done = record["chapters"]
    assert failed["error"] == "RuntimeError: CUDA out of memory (pretend)" and "error" not in done
    assert record["verdict"]["failed"] == ["vgg"] and not record["verdict"]["ok"]
    assert record["machine"]["device"] == "cpu" and record["speedup_over_t4"] is None
    json_path, md_path = gpu_check.write_report(record, tmp_path)
    assert json_path.name == "gpu-check-cpu.json"
    assert json.loads(json_path.read_text())["chapters"][1]["chapter"] == "lenet"
    table = md_path.read_text()
    assert "| vgg | failed: RuntimeError: CUDA out of memory (pretend) |" in table
    assert "| lenet |" in table and "No CUDA device" in table and "verdict: **FAIL**" in table
    assert math.isfinite(record["verdict"]["book_t4_s"])


def test_device_slug(gpu_check):
    assert gpu_check.device_slug("NVIDIA H100 80GB HBM3") == "nvidia-h100-80gb-hbm3"
    assert gpu_check.device_slug("CPU (2 threads)") == "cpu"


def test_quick_run_from_the_command_line(gpu_check, tmp_path, capsys):
    try:
        locate(allow_download=False)
    except DataError:
        pytest.skip("Fashion-MNIST is not on this machine")
    status = gpu_check.main(["--quick", "--chapters", "training", "--device", "cpu", "--output", str(tmp_path)])
    out = capsys.readouterr().out
    assert status in (0, 1) and "VERDICT:" in out and "NOTE: no CUDA device" in out
    assert (tmp_path / "gpu-check-cpu.json").is_file() and (tmp_path / "gpu-check-cpu.md").is_file()
