"""The trainer: it learns, stops on NaN, survives Ctrl-C, explains wrong shapes, records results."""
from __future__ import annotations

import json

import pytest
import torch
from torch import nn

import cnnbook
from cnnbook import Settings, TrainingDiverged, train


def small_net(in_channels: int = 1) -> nn.Module:
    return nn.Sequential(nn.Conv2d(in_channels, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(4),
                         nn.Flatten(), nn.Linear(8 * 7 * 7, 10))


def settings(**changes) -> Settings:
    values = dict(chapter="test", profile="smoke", num_epochs=3, batch_size=32, lr=0.05)
    values.update(changes)
    return Settings(**values)


def test_learns_a_separable_task(tiny_data):
    torch.manual_seed(0)
    result = train(small_net(), tiny_data, settings(), device="cpu", plot=False)
    assert result.status == "finished" and result.num_epochs == 3
    assert result.test_acc > 0.95
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    assert set(result.history[0]) == {"epoch", "train_loss", "train_acc", "test_acc", "examples_per_s", "seconds"}


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
    result = train(net, tiny_data, settings(num_epochs=1), device="cpu", plot=False)
    assert cnnbook.evaluate(net, tiny_data) == pytest.approx(result.test_acc)
    probs, labels = cnnbook.predict(net, tiny_data)
    assert probs.shape == (200, 10) and torch.allclose(probs.sum(1), torch.ones(200))


def test_nan_loss_stops_with_a_message_naming_the_learning_rate(tiny_data):
    torch.manual_seed(0)
    net = small_net()
    with pytest.raises(TrainingDiverged) as err:
        train(net, tiny_data, settings(lr=1e8, schedule="constant"), device="cpu", plot=False)
    message = str(err.value)
    assert "NaN or infinite" in message and "learning rate" in message and "lr=100000000.0" in message
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


def test_interrupt_keeps_finished_epochs(tiny_data, capsys):
    torch.manual_seed(0)
    steps_per_epoch = tiny_data.num_batches("train", 32)
    net = InterruptAt(small_net(), at_call=steps_per_epoch + 5)  # during epoch 2
    result = train(net, tiny_data, settings(num_epochs=3), device="cpu", plot=False)
    assert result.status == "interrupted" and result.num_epochs == 1 and len(result.history) == 1
    assert "Interrupted" in capsys.readouterr().out


def test_wrong_input_channels_gives_actionable_error(tiny_data):
    with pytest.raises(ValueError, match="in_channels .*1 channel"):
        train(small_net(in_channels=3), tiny_data, settings(), device="cpu", plot=False)


def test_wrong_number_of_classes_gives_actionable_error(tiny_data):
    net = nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 7))
    with pytest.raises(ValueError, match=r"returns shape \(2, 7\).*expected \(2, 10\)"):
        train(net, tiny_data, settings(), device="cpu", plot=False)


def test_record_is_json_and_round_trips(tiny_data, tmp_path):
    torch.manual_seed(0)
    result = train(small_net(), tiny_data, settings(num_epochs=1), architecture="Small", device="cpu", plot=False)
    path = result.save(tmp_path)
    values = json.loads(path.read_text())
    assert values["architecture"] == "Small" and values["parameters"] == cnnbook.count_params(small_net())
    assert values["macs"] > 0 and values["versions"]["torch"] == torch.__version__
    assert cnnbook.load_results(tmp_path)[0] == result
