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
