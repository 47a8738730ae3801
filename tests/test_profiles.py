"""Profiles: one table, chosen by device, overridden by CNNBOOK_PROFILE."""
from __future__ import annotations

import pytest
import torch

import cnnbook
from cnnbook import profiles


@pytest.mark.parametrize("chapter", profiles.chapters())
def test_every_chapter_has_all_profiles(chapter):
    cpu, gpu, smoke = (cnnbook.settings(chapter, p) for p in ("cpu", "gpu", "smoke"))
    assert cpu.train_subset is None and gpu.train_subset is None  # cpu and gpu train on all the data
    assert smoke.num_epochs == 1 and smoke.train_subset and smoke.train_subset <= 5000
    assert smoke.model == cpu.model and smoke.resize == cpu.resize  # smoke runs the cpu network
    assert gpu.num_epochs >= cpu.num_epochs


def test_environment_overrides_the_device_choice(monkeypatch):
    monkeypatch.setenv("CNNBOOK_PROFILE", "smoke")
    assert cnnbook.current_profile() == "smoke"
    assert cnnbook.settings("training").profile == "smoke"
    monkeypatch.delenv("CNNBOOK_PROFILE")
    assert cnnbook.current_profile() == ("gpu" if torch.cuda.is_available() else "cpu")


def test_unknown_profile_and_chapter_are_explained(monkeypatch):
    monkeypatch.setenv("CNNBOOK_PROFILE", "huge")
    with pytest.raises(ValueError, match="not a profile. Use one of smoke, cpu, gpu"):
        cnnbook.current_profile()
    with pytest.raises(cnnbook.SettingsError, match="Known chapters: training"):
        cnnbook.settings("nonexistent", "cpu")


def test_replace_keeps_the_rest():
    S = cnnbook.settings("training", "cpu")
    T = S.replace(lr=0.01)
    assert T.lr == 0.01 and T.num_epochs == S.num_epochs and S.lr != 0.01


def test_chapter_times_are_the_committed_runs():
    """The times Colab's CPU warning quotes: in the committed notebooks' precision, the durations recorded
    in them; in the other precision, what benchmarks/book_times.py measured on the same processor."""
    import json
    from pathlib import Path

    root = Path(__file__).parents[1]
    times = profiles.chapter_times()
    notebooks = sorted(root.glob("chapters/[0-9]*.ipynb"))
    assert sorted(times) == [nb.name for nb in notebooks]
    bench = root / "benchmarks" / "results" / "book-times-cpu.json"
    runs = json.loads(bench.read_text())["runs"] if bench.is_file() else {}
    for nb in notebooks:
        record = json.loads(nb.read_text())["metadata"]["cnnbook"]
        entry = times[nb.name]
        assert record["profile"] == "cpu"
        assert entry["seconds"][record["precision"]] == record["duration_s"], nb.name
        assert entry["device"] == record["device_name"], nb.name
        for precision, seconds in entry["seconds"].items():
            if precision != record["precision"]:
                assert seconds == runs[precision]["chapters"][nb.name]["seconds"], (nb.name, precision)
    # a column the benchmark filled from the committed execution (--committed) is that execution's
    for precision, run in runs.items():
        if run.get("source"):
            for name, row in run["chapters"].items():
                assert row["seconds"] == times[name]["seconds"][precision], (name, precision)


@pytest.mark.parametrize("native_bf16", [True, False])
def test_colab_without_a_gpu_says_how_long_the_chapter_takes(monkeypatch, capsys, native_bf16):
    """Colab's CPU runtime (no native bfloat16) is told the float32 times, a CPU with bfloat16 the bf16 ones."""
    import sys
    import types

    import importlib

    train_module = importlib.import_module("cnnbook.train")
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    monkeypatch.setattr(profiles, "_TIME_WARNED", set())
    monkeypatch.setattr(profiles.torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(profiles, "default_device", lambda: profiles.torch.device("cpu"))
    monkeypatch.setattr(train_module, "cpu_has_bf16", lambda: native_bf16)
    monkeypatch.delenv("CNNBOOK_PRECISION", raising=False)
    monkeypatch.setenv("CNNBOOK_PROFILE", "cpu")
    precision = "bf16" if native_bf16 else "fp32"
    profiles.setup()
    times = profiles.chapter_times()
    total = sum(t["seconds"].get(precision, t["seconds"].get("fp32")) for t in times.values())
    out = capsys.readouterr().out
    assert "no GPU" in out and f"about {total / 60:.0f} minutes" in out
    assert ("no native bfloat16" in out) == (not native_bf16)
    profiles.settings("vgg")
    profiles.settings("vgg")  # said once per chapter
    vgg = times["05_vgg.ipynb"]["seconds"]
    out = capsys.readouterr().out
    assert out.count("this chapter takes about") == 1
    assert profiles._minutes(vgg.get(precision, vgg["fp32"])) in out
    assert ("float32" in out) == (precision == "fp32" or "bf16" not in vgg)
    profiles.settings("vgg", "smoke")
    assert capsys.readouterr().out == ""


