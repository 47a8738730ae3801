"""The trainer: it learns, validates per epoch and tests once, stops on NaN, survives Ctrl-C without losing a
finished record, explains the usual mistakes in a few lines, and chooses its arithmetic per machine."""
from __future__ import annotations

import json

import pytest
import torch
from torch import nn

import cnnbook
from cnnbook import Settings, TrainingDiverged, train
import importlib

train_module = importlib.import_module("cnnbook.train")
from cnnbook.errors import CnnbookError, NetworkError, SettingsError
from cnnbook.results import Result


def small_net(in_channels: int = 1) -> nn.Module:
    return nn.Sequential(nn.Conv2d(in_channels, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(4),
                         nn.Flatten(), nn.Linear(8 * 7 * 7, 10))


def settings(**changes) -> Settings:
    values = dict(chapter="test", profile="smoke", num_epochs=3, batch_size=32, lr=0.05)
    values.update(changes)
    return Settings(**values)


def test_learns_validates_each_epoch_and_tests_once(tiny_data):
    torch.manual_seed(0)
    result = train(small_net(), tiny_data, settings(), device="cpu", plot=False, test=True)
    assert result.status == "finished" and result.num_epochs == 3 and result.learned
    assert result.test_acc > 0.95 and result.val_acc > 0.95
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    assert set(result.history[0]) == {"epoch", "train_loss", "train_acc", "val_acc", "examples_per_s", "seconds"}
    assert result.test_acc_se == pytest.approx((result.test_acc * (1 - result.test_acc) / 200) ** 0.5)
    assert len(result.per_class_acc) == 10 and sum(map(sum, result.confusion)) == 200


def test_trials_do_not_look_at_the_test_set(tiny_data, monkeypatch):
    seen = []
    original = tiny_data.batches

    def spy(split="train", *args, **kwargs):
        seen.append(split)
        return original(split, *args, **kwargs)

    monkeypatch.setattr(tiny_data, "batches", spy)
    result = train(small_net(), tiny_data, settings(num_epochs=1), device="cpu", verbose=False)
    assert result.test_acc is None and result.val_acc is not None
    assert "test" not in seen


def test_verbose_false_prints_nothing(tiny_data, capsys):
    train(small_net(), tiny_data, settings(num_epochs=1), device="cpu", verbose=False)
    assert capsys.readouterr().out == ""


def test_adamw_cosine_and_augmentation_run(tiny_data):
    torch.manual_seed(0)
    S = settings(optimizer="adamw", lr=3e-3, schedule="cosine", augment=True, num_epochs=2, resize=32)
    net = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(4), nn.Flatten(),
                        nn.Linear(8 * 16, 10))
    result = train(net, tiny_data, S, device="cpu", plot=False)
    assert result.input_size == (1, 1, 32, 32) and result.num_epochs == 2


def test_evaluate_matches_the_record(tiny_data):
    torch.manual_seed(0)
    net = small_net()
    result = train(net, tiny_data, settings(num_epochs=1), device="cpu", plot=False, test=True)
    assert cnnbook.evaluate(net, tiny_data) == pytest.approx(result.test_acc)
    assert cnnbook.evaluate(net, tiny_data, "val") == pytest.approx(result.val_acc)
    probs, labels = cnnbook.predict(net, tiny_data)
    assert probs.shape == (200, 10) and torch.allclose(probs.sum(1), torch.ones(200))


def test_nan_loss_stops_with_a_message_naming_the_learning_rate(tiny_data):
    torch.manual_seed(0)
    net = small_net()
    with pytest.raises(TrainingDiverged) as err:
        train(net, tiny_data, settings(lr=1e8, schedule="constant"), device="cpu", plot=False)
    message = str(err.value)
    assert "NaN or infinite" in message and "lr=100000000.0" in message and "too high" in message
    assert len(message.splitlines()) <= 3
    assert err.value.result.status == "diverged"
    assert all(torch.isfinite(p).all() for p in net.parameters())  # weights of the last good epoch


class InterruptAt(nn.Module):
    """Wraps a network and raises KeyboardInterrupt at the given training call, as Ctrl-C would."""

    def __init__(self, net: nn.Module, at_call: int):
        super().__init__()
        self.net, self.at_call, self.calls = net, at_call, 0

    def forward(self, X):
        if self.training:
            self.calls += 1
            if self.calls == self.at_call:
                raise KeyboardInterrupt
        return self.net(X)


def finished_record(tmp_path, tiny_data) -> Result:
    torch.manual_seed(0)
    result = train(small_net(), tiny_data, settings(num_epochs=1), device="cpu", plot=False, test=True)
    assert result.save(tmp_path) == tmp_path / "test.json"
    return result


@pytest.mark.parametrize("at_epoch", [1, 2], ids=["before the first epoch ends", "during epoch 2"])
def test_interrupt_never_replaces_a_finished_record(tiny_data, tmp_path, monkeypatch, capsys, at_epoch):
    monkeypatch.setenv("CNNBOOK_RESULTS", str(tmp_path))
    monkeypatch.setenv("CNNBOOK_PRECISION", "fp32")  # no probe: its calls would count too
    finished = finished_record(tmp_path, tiny_data)
    before = (tmp_path / "test.json").read_text()
    steps = tiny_data.num_batches("train", 32)
    net = InterruptAt(small_net(), at_call=(at_epoch - 1) * steps + 3)
    result = train(net, tiny_data, settings(num_epochs=3), device="cpu", plot=False, save=True)
    assert result.status == "interrupted" and result.num_epochs == at_epoch - 1
    out = capsys.readouterr().out
    assert "Interrupted" in out and "Not saved" in out
    assert (tmp_path / "test.json").read_text() == before  # the finished record is untouched
    assert cnnbook.load_result("test") == finished
    assert result.save(tmp_path) is None  # saving it by hand is refused too
    json.dumps(result.to_dict(), allow_nan=False)  # valid JSON even with no epoch done
    text = str(cnnbook.describe_run(result))
    assert "interrupted" in text and "training cell again" in text
    assert "training cell again" in str(cnnbook.describe_mistakes(result))


def test_save_is_atomic_and_valid_json(tiny_data, tmp_path):
    result = finished_record(tmp_path, tiny_data)
    result.train_loss = float("nan")
    path = result.save(tmp_path)
    values = json.loads(path.read_text())  # json.loads rejects nothing, so check the text itself
    assert "NaN" not in path.read_text() and values["train_loss"] is None
    assert not list(tmp_path.glob(".*tmp"))  # no temporary file left behind


def test_a_run_at_chance_says_it_did_not_learn_and_is_not_saved(tiny_data, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CNNBOOK_RESULTS", str(tmp_path))
    net = nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 10))
    with torch.no_grad():
        for p in net.parameters():
            p.zero_()
    net[1].weight.requires_grad_(False)  # a network that cannot learn: every score stays 0
    S = settings(num_epochs=1, lr=1e-12, schedule="constant", momentum=0.0)
    result = train(net, tiny_data, S, device="cpu", plot=False, save=True)
    assert not result.learned
    out = capsys.readouterr().out
    assert "did not learn" in out and "Not saved" in out
    assert not (tmp_path / "test.json").exists()
    assert "did not learn" in str(cnnbook.describe_run(result))


def test_record_is_json_and_round_trips(tiny_data, tmp_path):
    torch.manual_seed(0)
    result = train(small_net(), tiny_data, settings(num_epochs=1), architecture="Small", device="cpu",
                   plot=False, test=True)
    path = result.save(tmp_path)
    values = json.loads(path.read_text())
    assert values["architecture"] == "Small" and values["parameters"] == cnnbook.count_params(small_net())
    assert values["macs"] > 0 and values["versions"]["torch"] == torch.__version__
    assert values["precision"] in ("fp32", "bf16")
    assert cnnbook.load_results(tmp_path)[0] == result


# --- the usual mistakes, each with a short message that says the fix ------------------------------------
def short(err: pytest.ExceptionInfo) -> str:
    message = str(err.value)
    assert isinstance(err.value, CnnbookError)
    assert len(message.splitlines()) <= 3, message
    return message


def test_wrong_input_channels(tiny_data):
    with pytest.raises(NetworkError) as err:
        train(small_net(in_channels=3), tiny_data, settings(), device="cpu", plot=False)
    assert "in_channels" in short(err)


def test_wrong_number_of_classes(tiny_data):
    net = nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 7))
    with pytest.raises(NetworkError) as err:
        train(net, tiny_data, settings(), device="cpu", plot=False)
    assert "returns shape (2, 7)" in short(err) and "(2, 10)" in str(err.value)


class TwoOutputs(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = small_net()

    def forward(self, X):
        out = self.net(X)
        return out, out


@pytest.mark.parametrize("call, expected", [
    (lambda d: train(small_net, d, settings()), "call it first"),
    (lambda d: train(small_net(), d, "lenet"), "cnnbook.settings('lenet')"),
    (lambda d: train(small_net(), d, settings(), device="cuda"), "no CUDA GPU"),
    (lambda d: train(TwoOutputs(), d, settings()), "returns a tuple"),
    (lambda d: train(small_net(), [1, 2], settings()), "load_fashion_mnist"),
    (lambda d: train(small_net(), d, settings(), precision="half"), "'fp32' or 'bf16'"),
    (lambda d: settings(num_epochs=0), "num_epochs=0"),
    (lambda d: settings(batch_size=0), "batch_size=0"),
    (lambda d: settings(lr="0.1"), "not in quotes"),
    (lambda d: settings(optimizer="adam"), "'sgd' or 'adamw'"),
    (lambda d: cnnbook.evaluate(small_net(in_channels=3), d), "in_channels"),
    (lambda d: cnnbook.predict(small_net(in_channels=3), d), "in_channels"),
    (lambda d: d.split("valid"), "'train', 'val' or 'test'"),
], ids=["builder", "string settings", "cuda", "tuple output", "not our data", "precision", "zero epochs",
        "zero batch", "string lr", "optimizer", "evaluate shapes", "predict shapes", "split"])
def test_common_mistakes_get_a_short_message(tiny_data, call, expected):
    if expected == "no CUDA GPU" and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(CnnbookError) as err:
        call(tiny_data)
    assert expected in short(err)


def test_torchvision_data_is_named(tiny_data):
    torchvision = pytest.importorskip("torchvision")
    fake = torchvision.datasets.VisionDataset.__new__(torchvision.datasets.VisionDataset)
    with pytest.raises(SettingsError) as err:
        train(small_net(), fake, settings())
    assert "torchvision" in short(err)


def test_compact_errors_in_ipython():
    from IPython.testing.globalipapp import start_ipython

    shell = start_ipython()
    assert cnnbook.install_compact_errors()
    assert CnnbookError in shell.custom_exceptions


# --- the arithmetic ------------------------------------------------------------------------------------------
def test_precision_falls_back_to_fp32_without_native_bf16(tiny_data, monkeypatch):
    monkeypatch.setattr(train_module, "cpu_has_bf16", lambda: False)
    S = settings()
    choice, why = train_module.choose_precision(small_net(), S, tiny_data, torch.device("cpu"), "auto")
    assert choice == "fp32" and "no native bfloat16" in why
    result = train(small_net(), tiny_data, settings(num_epochs=1), device="cpu", verbose=False)
    assert result.precision == "fp32"


def test_precision_auto_keeps_fp32_when_the_probe_finds_bf16_slower(tiny_data, monkeypatch):
    monkeypatch.setattr(train_module, "cpu_has_bf16", lambda: True)
    monkeypatch.setattr(train_module, "_probe", lambda *a, **k: {"fp32": 1.0, "bf16": 1.5})
    monkeypatch.setattr(train_module, "_PROBES", {})
    assert train_module.choose_precision(small_net(), settings(), tiny_data, torch.device("cpu"))[0] == "fp32"
    monkeypatch.setattr(train_module, "_probe", lambda *a, **k: {"fp32": 2.0, "bf16": 1.0})
    monkeypatch.setattr(train_module, "_PROBES", {})
    assert train_module.choose_precision(small_net(), settings(), tiny_data, torch.device("cpu"))[0] == "bf16"


@pytest.mark.parametrize("speedup, expected", [(1.0, "fp32"), (1.03, "fp32"), (1.07, "bf16"), (1.2, "bf16")])
def test_precision_auto_needs_a_clear_gain_for_bf16(tiny_data, monkeypatch, speedup, expected):
    """A network that runs the same in both stays fp32 despite probe noise; a 7-20 % gain (LeNet's) picks bf16."""
    monkeypatch.setattr(train_module, "cpu_has_bf16", lambda: True)
    monkeypatch.setattr(train_module, "_probe", lambda *a, **k: {"fp32": speedup, "bf16": 1.0})
    monkeypatch.setattr(train_module, "_PROBES", {})
    choice, why = train_module.choose_precision(small_net(), settings(), tiny_data, torch.device("cpu"))
    assert choice == expected and f"{speedup:.2f}x" in why


def test_precision_switch_forces_either(tiny_data, monkeypatch):
    monkeypatch.setenv("CNNBOOK_PRECISION", "bf16")
    result = train(small_net(), tiny_data, settings(num_epochs=1), device="cpu", verbose=False, test=True)
    assert result.precision == "bf16" and result.test_acc > 0.5
    monkeypatch.setenv("CNNBOOK_PRECISION", "fp32")
    assert train(small_net(), tiny_data, settings(num_epochs=1), device="cpu", verbose=False).precision == "fp32"


def test_the_probe_times_the_layout_train_uses(tiny_data):
    """Found by the precision benchmark: a contiguous network probed with channels-last images made
    bf16 look slower than it is in training (LeNet 1.14x faster in the loop, 'auto' chose fp32)."""
    seen = []

    class Spy(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem, self.conv, self.head = nn.Conv2d(1, 4, 3), nn.Conv2d(4, 4, 3), nn.Linear(4, 10)

        def forward(self, x):
            seen.append(self.conv.weight.is_contiguous(memory_format=torch.channels_last))
            return self.head(self.conv(self.stem(x)).mean(dim=(2, 3)))

    net = Spy()
    train_module._probe(net, settings(), tiny_data, torch.device("cpu"), steps=1, warmup=0, rounds=1, min_seconds=0.0)
    assert seen and all(seen)
    assert not net.conv.weight.is_contiguous(memory_format=torch.channels_last)  # the caller's network untouched


def test_the_probe_leaves_the_network_and_the_random_state_alone(tiny_data):
    net = small_net()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    rng = torch.get_rng_state()
    train_module._probe(net, settings(), tiny_data, torch.device("cpu"), steps=1, warmup=1, rounds=2, min_seconds=0.0)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert torch.equal(rng, torch.get_rng_state())


def _record(path, chapter, per_class, n=1000):
    """A finished record whose ten classes of ``n`` test images reach ``per_class``."""
    confusion = []
    for c, acc in enumerate(per_class):
        row = [0] * 10
        row[c] = round(acc * n)
        row[(c + 1) % 10] = n - row[c]
        confusion.append(row)
    acc = sum(per_class) / 10
    result = Result(chapter=chapter, architecture=chapter.title(), profile="cpu", device="cpu",
                    device_name="CPU", num_epochs=1, parameters=1, macs=1, input_size=(1, 1, 28, 28),
                    test_acc=acc, train_acc=acc, train_loss=0.5, wall_time_s=1.0, examples_per_s=1.0,
                    test_acc_se=(acc * (1 - acc) / (10 * n)) ** 0.5, test_size=10 * n,
                    per_class_acc=list(per_class), confusion=confusion)
    (path / f"{chapter}.json").write_text(json.dumps(result.to_dict()))
    return result


def test_per_class_changes_are_judged_against_their_noise(tmp_path, monkeypatch):
    """A class of 1,000 test images at 70 % has a standard error of 1.4 points, so a change needs about
    4 points to stand out; the old text listed every change from half a point ("better on Dress +2.4")."""
    monkeypatch.setenv("CNNBOOK_RESULTS", str(tmp_path))
    before = [0.70, 0.70, 0.99, 0.90, 0.90, 0.90, 0.90, 0.90, 0.90, 0.90]
    _record(tmp_path, "old", before)
    after = _record(tmp_path, "new", [0.76, 0.72, 0.97, 0.90, 0.90, 0.90, 0.90, 0.90, 0.90, 0.90])
    text = str(cnnbook.describe_mistakes(after, previous="old", classes=[f"c{i}" for i in range(10)]))
    assert "beyond noise: better on c0 +6.0; worse on c2 -2.0" in text, text  # c2: 99 % -> 97 %, SE 0.6
    assert "c1" not in text.split("beyond noise")[1], text  # +2.0 at 70 %: within its noise
    quiet = _record(tmp_path, "quiet", [0.72] + before[1:])
    text = str(cnnbook.describe_mistakes(quiet, previous="old", classes=[f"c{i}" for i in range(10)]))
    assert "no class changes by more than its noise" in text and "c0 +2.0, is within it" in text, text


def test_a_smoke_run_never_replaces_the_books_record_or_weights(tiny_data, tmp_path, monkeypatch):
    """A finished smoke run (the classroom's set-up check) writes its record to results/smoke/, leaves the
    book's results/<chapter>.json as it was and ships no weights, even with CNNBOOK_SAVE_WEIGHTS=1; a gpu
    run's record goes to results/gpu/."""
    from cnnbook import weights

    monkeypatch.setenv("CNNBOOK_RESULTS", str(tmp_path))
    monkeypatch.setenv("CNNBOOK_SAVE_WEIGHTS", "1")
    monkeypatch.setenv("CNNBOOK_WEIGHTS_DIR", str(tmp_path / "weights"))
    monkeypatch.setenv("CNNBOOK_PRECISION", "fp32")
    book_record = tmp_path / "test.json"
    book_record.write_text('{"the book": "cpu record"}')
    shipped = []
    monkeypatch.setattr(weights, "save", lambda *args: shipped.append(args) or "sha")
    for profile in ("smoke", "gpu"):
        result = train(small_net(), tiny_data, settings(profile=profile, num_epochs=2), device="cpu",
                       plot=False, save=True)
        assert result.finished and result.learned
        assert json.loads((tmp_path / profile / "test.json").read_text())["profile"] == profile
    assert book_record.read_text() == '{"the book": "cpu record"}'
    assert shipped == [] and not (tmp_path / "weights").exists()
    monkeypatch.setenv("CNNBOOK_PROFILE", "smoke")
    assert cnnbook.load_result("test").profile == "smoke"  # each profile reads its own records
    result = train(small_net(), tiny_data, settings(profile="cpu", num_epochs=2), device="cpu", plot=False,
                   save=True)
    assert json.loads(book_record.read_text())["profile"] == "cpu" and len(shipped) == 1  # the book's run


def test_per_class_changes_account_for_ten_comparisons(tmp_path, monkeypatch):
    """Ten classes judged at once: a change beyond 2 but within 2.81 standard errors of its difference is
    not flagged (at 2 it would be, by chance, in about two chapters in five)."""
    monkeypatch.setenv("CNNBOOK_RESULTS", str(tmp_path))
    before = [0.90] * 10
    _record(tmp_path, "old", before)
    # 90 % vs 93.2 % on 1,000 images: SEs 0.95 and 0.80 points, the difference's 1.24; 2 SE = 2.5, 2.81 SE = 3.5
    after = _record(tmp_path, "new", [0.932] + before[1:])
    text = str(cnnbook.describe_mistakes(after, previous="old", classes=[f"c{i}" for i in range(10)]))
    assert "no class changes by more than its noise" in text and "2.8 standard errors" in text, text
    bigger = _record(tmp_path, "bigger", [0.94] + before[1:])
    text = str(cnnbook.describe_mistakes(bigger, previous="old", classes=[f"c{i}" for i in range(10)]))
    assert "beyond noise: better on c0 +4.0" in text, text


@pytest.mark.parametrize("optimizer, schedule", [("sgd", "onecycle"), ("sgd", "cosine"), ("adamw", "onecycle")])
def test_the_momentum_that_runs_is_the_one_the_settings_print(tiny_data, monkeypatch, optimizer, schedule):
    """Every step of a real run uses ``S.momentum`` (SGD, Nesterov) or AdamW's default beta1 = 0.9: the
    one-cycle schedule once cycled them 0.95 -> 0.85 -> 0.95 behind every printed ``momentum=0.9``."""
    seen = []
    cls = torch.optim.SGD if optimizer == "sgd" else torch.optim.AdamW
    original = cls.step

    def spy(self, *args, **kwargs):
        group = self.param_groups[0]
        seen.append((group["momentum"], group["nesterov"]) if optimizer == "sgd" else group["betas"][0])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(cls, "step", spy)
    monkeypatch.setenv("CNNBOOK_PRECISION", "fp32")  # no precision probe (its own throwaway SGD) in the count
    S = settings(optimizer=optimizer, schedule=schedule, num_epochs=2, momentum=0.9,
                 lr=0.05 if optimizer == "sgd" else 3e-3)
    train(small_net(), tiny_data, S, device="cpu", verbose=False)
    assert len(seen) >= 8
    expected = (S.momentum, True) if optimizer == "sgd" else 0.9
    assert set(seen) == {expected}, f"momentum during training: {sorted(set(seen))}"
    seen.clear()
    train(small_net(), tiny_data, S.replace(momentum=0.0), device="cpu", verbose=False)
    if optimizer == "sgd":  # S.replace(momentum=0) is plain SGD, as chapter 8's sweep says
        assert set(seen) == {(0.0, False)}


def test_progressive_sides_and_flip_test_time_augmentation(tiny_data):
    seen = []
    original = tiny_data.batches

    def spy(split="train", *args, **kwargs):
        if split == "train":
            seen.append(kwargs.get("resize"))
        return original(split, *args, **kwargs)

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(4), nn.Flatten(),
                        nn.Linear(8 * 16, 10))
    tiny_data.batches = spy
    try:
        result = train(net, tiny_data, settings(num_epochs=3), device="cpu", plot=False, test=True,
                       sides=[20, 24, 28], tta=True, precision="fp32")  # fp32: no precision probe
    finally:
        del tiny_data.batches
    assert seen == [20, 24, 28] and result.sides == [20, 24, 28] and result.tta and net.cnnbook_tta
    assert result.input_size == (1, 1, 28, 28)
    # every later evaluation scores the image and its mirror, as the record's test accuracy did
    assert cnnbook.evaluate(net, tiny_data) == pytest.approx(result.test_acc)
    X, _ = next(tiny_data.batches("test", 50, shuffle=False))
    net.eval()
    with torch.no_grad():
        both = net(X) + net(X.flip(-1))
    probs, _ = cnnbook.predict(net, tiny_data)
    assert torch.equal(probs[:50].argmax(1), both.argmax(1))
    round_trip = Result.from_dict(result.to_dict())
    assert round_trip.tta and round_trip.sides == [20, 24, 28]
    # a run without them records neither
    plain = train(small_net(), tiny_data, settings(num_epochs=1), device="cpu", verbose=False)
    assert plain.sides is None and not plain.tta


@pytest.mark.parametrize("sides", [[28], [28, 28, 28, 28], [28, "24", 20], [28, 4, 28], [28, True, 28]])
def test_sides_must_be_one_whole_side_per_epoch(tiny_data, sides):
    with pytest.raises(SettingsError, match="one whole-number image side"):
        train(small_net(), tiny_data, settings(num_epochs=3), device="cpu", verbose=False, sides=sides)
