"""cnnbook: the plumbing behind the book's chapters -- data, training, inspection, plots, profiles.

The models themselves are written in the chapters; this package holds what every chapter shares.
"""
__version__ = "0.1.0"

from .data import CLASSES, DataError, FashionMNIST, load_fashion_mnist
from .inspection import count_macs, count_params, summary
from .plots import (compare_histories, plot_confusion_matrix, plot_history, plot_network, plot_tradeoffs,
                    show_images, show_mistakes)
from .profiles import Settings, current_profile, default_device, settings, setup
from .results import Result, load_results
from .train import TrainingDiverged, evaluate, predict, train

__all__ = [
    "CLASSES", "DataError", "FashionMNIST", "load_fashion_mnist",
    "count_macs", "count_params", "summary",
    "compare_histories", "plot_confusion_matrix", "plot_history", "plot_network", "plot_tradeoffs", "show_images",
    "show_mistakes",
    "Settings", "current_profile", "default_device", "settings", "setup",
    "Result", "load_results",
    "TrainingDiverged", "evaluate", "predict", "train",
]
