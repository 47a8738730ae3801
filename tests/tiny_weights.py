"""Stand-in weights for the tests of the export and the page: each chapter's network trained a few dozen
steps (seconds), saved with cnnbook.weights.save into a folder given by $CNNBOOK_WEIGHTS_DIR.

    CNNBOOK_WEIGHTS_DIR=/tmp/w python tests/tiny_weights.py      # all chapters, for development
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from cnnbook import weights
from cnnbook.book import NETWORKS, build_network
from cnnbook.data import MEAN, STD, load_fashion_mnist


def train_tiny(chapters=tuple(NETWORKS), steps: int = 30, batch_size: int = 64) -> None:
    """Train each chapter's network ``steps`` Adam steps on the start of the training set and save it."""
    data = load_fashion_mnist(device="cpu")
    for chapter in chapters:
        torch.manual_seed(0)
        net = build_network(chapter)
        optimizer = torch.optim.Adam(net.parameters(), lr=2e-3)
        net.train()
        for step in range(steps):
            idx = slice(step * batch_size, (step + 1) * batch_size)
            X = (data.train_images[idx].unsqueeze(1).float() / 255 - MEAN) / STD
            loss = F.cross_entropy(net(X), data.train_labels[idx].long())
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        weights.save(net.eval(), chapter, {"chapter": chapter, "architecture": f"{chapter} (tiny test run)",
                                           "test_acc": None, "settings": {}, "steps": steps})


if __name__ == "__main__":
    train_tiny()
