"""cnnbook: the plumbing behind the book's chapters -- data, training, inspection, plots, profiles.

The models themselves are written in the chapters; this package holds what every chapter shares.
Needs torch >= 2.3 (``torch.amp.GradScaler("cuda")``).
"""
__version__ = "0.2.0"

from .analysis import describe_mistakes, describe_run
from .data import CLASSES, DataError, FashionMNIST, load_fashion_mnist
from .errors import CnnbookError, NetworkError, SettingsError, install_compact_errors
from .inspection import count_macs, count_params, summary
from .plots import (compare_histories, plot_confusion_matrix, plot_history, plot_network, plot_tradeoffs,
                    show_images, show_mistakes)
from .profiles import Settings, current_profile, default_device, settings, setup
from .results import Result, load_result, load_results
from .train import TrainingDiverged, evaluate, predict, train


def build_network(chapter: str, profile: str = "cpu"):
    """The network another chapter trains (e.g. ``"resnet"``), built by that chapter's own code."""
    from .book import build_network as build

    return build(chapter, profile)


install_compact_errors()  # in a notebook, cnnbook's errors show as their message, without a traceback

__all__ = [
    "CLASSES", "DataError", "FashionMNIST", "load_fashion_mnist",
    "CnnbookError", "NetworkError", "SettingsError",
    "count_macs", "count_params", "summary",
    "compare_histories", "plot_confusion_matrix", "plot_history", "plot_network", "plot_tradeoffs", "show_images",
    "show_mistakes",
    "Settings", "current_profile", "default_device", "settings", "setup",
    "Result", "load_result", "load_results",
    "TrainingDiverged", "evaluate", "predict", "train",
    "describe_mistakes", "describe_run", "build_network",
]
