"""The "Try the networks" page's files: each shipped network exported to ONNX, a few test images, the runtime.

The site build calls :func:`write_site_files` (a Sphinx hook, registered in ``_config.yml``); it can also be
run by hand:

    python -m cnnbook.export _build/html/_static/try      # writes models/, ort/ and try-data.json there

Each network is exported from the chapter's own code and its shipped weights (:mod:`cnnbook.weights`),
wrapped so that the page does no arithmetic of its own: the model takes raw pixel values (0-255, white
garment on black, 28 x 28), normalises them as the trainer does, and returns the ten class probabilities
and the first convolution's feature maps.
"""
from __future__ import annotations

import argparse
import base64
import json
import shutil
import sys
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from . import weights
from .data import CLASSES, MEAN, STD

OPSET = 17  # onnxruntime-web 1.30 runs opsets up to 21
SAMPLES_PER_CLASS = 3
ORT_VERSION = "1.30.0"  # package.json pins the same
# The runtime's WebAssembly build, enough for the wasm backend (no WebGPU/WebGL): the page loads ort.wasm.min.js,
# which imports the .mjs glue that fetches the .wasm.
ORT_FILES = ("ort.wasm.min.js", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")


class Pixels2Probabilities(nn.Module):
    """A trained network with the book's preprocessing before it and a softmax after it.

    Input: ``pixels`` (B, 1, 28, 28), float values 0-255 as in Fashion-MNIST's files.
    Outputs: ``probabilities`` (B, 10) and ``features`` (B, C, H, W), the first convolution's output.
    ``tta``: score each image as it is and mirrored and add the scores, as the chapter's run was evaluated
    (chapter 12's test-time augmentation).
    """

    def __init__(self, net: nn.Module, resize: int | None = None, tta: bool = False):
        super().__init__()
        self.net, self.resize, self.tta = net, resize, tta
        self.first_conv = next(m for m in net.modules() if isinstance(m, nn.Conv2d))
        self._features = None
        self.first_conv.register_forward_hook(self._keep)

    def _keep(self, module, inputs, output):
        self._features = output

    def forward(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        X = pixels / 255  # the steps of FashionMNIST.batches, in its order
        if self.resize and self.resize != X.shape[-1]:
            X = F.interpolate(X, size=(self.resize, self.resize), mode="bilinear", align_corners=False)
        X = (X - MEAN) / STD
        mirrored = self.net(X.flip(-1)) if self.tta else 0  # first: the features kept are the image's own
        probabilities = torch.softmax(self.net(X) + mirrored, dim=1)
        return probabilities, self._features


def trained_network(chapter: str) -> tuple[nn.Module, dict]:
    """The chapter's network (built by its own code) with the shipped weights, in eval mode, and its record."""
    from .book import build_network

    net = build_network(chapter, profile="cpu")
    record = weights.load(net, chapter)
    net = net.to("cpu", torch.float32, memory_format=torch.contiguous_format).eval()
    return net, record


def export_network(chapter: str, path: str | Path) -> dict:
    """Export chapter ``chapter``'s trained network to ONNX at ``path``; return what the page shows of it."""
    net, record = trained_network(chapter)
    resize = (record.get("settings") or {}).get("resize")
    model = Pixels2Probabilities(net, resize, tta=bool(record.get("tta"))).eval()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation notice
        torch.onnx.export(model, torch.zeros(1, 1, 28, 28), str(path), dynamo=False, opset_version=OPSET,
                          input_names=["pixels"], output_names=["probabilities", "features"],
                          dynamic_axes={"pixels": {0: "batch"}, "probabilities": {0: "batch"},
                                        "features": {0: "batch"}})
    conv = model.first_conv
    return {"key": chapter, "architecture": record.get("architecture", chapter),
            "test_acc": record.get("test_acc"), "parameters": record.get("parameters"),
            "first_conv": {"channels": conv.out_channels, "kernel": list(conv.kernel_size)},
            "sha256": weights.manifest()[chapter]["sha256"], "bytes": path.stat().st_size}


def sample_images(per_class: int = SAMPLES_PER_CLASS) -> tuple[torch.Tensor, list[int], list[int]]:
    """The first ``per_class`` test images of each class, in test-set order: (images uint8 N x 28 x 28,
    labels, indices in the test set)."""
    from .data import load_fashion_mnist

    data = load_fashion_mnist(device="cpu")
    labels = data.test_labels
    indices = sorted(int(i) for c in range(len(CLASSES))
                     for i in torch.nonzero(labels == c).flatten()[:per_class])
    return data.test_images[indices], [int(labels[i]) for i in indices], indices


def ort_dist(root: str | Path) -> Path:
    """onnxruntime-web's dist folder as ``npm ci`` installs it under ``root``."""
    return Path(root) / "node_modules" / "onnxruntime-web" / "dist"


def write_site_files(out: str | Path, root: str | Path | None = None) -> dict:
    """Write the page's files into ``out``: ``models/<chapter>.onnx``, ``ort/`` (the runtime, copied from
    ``<root>/node_modules``) and ``try-data.json`` (networks, classes, sample images).

    Returns:
        ``{"networks": [...], "skipped": {chapter: reason}, "missing_runtime": bool}``.
    """
    from .book import NETWORKS

    out = Path(out)
    root = Path(root) if root else Path(__file__).resolve().parents[1]
    (out / "models").mkdir(parents=True, exist_ok=True)
    for old in (out / "models").glob("*.onnx"):  # a network no longer shipped must not linger in the site
        old.unlink()
    networks, skipped = [], {}
    shipped = weights.available()
    for chapter, (notebook, _) in NETWORKS.items():
        if chapter not in shipped:
            continue
        try:
            info = export_network(chapter, out / "models" / f"{chapter}.onnx")
        except weights.ShippedWeightsError as err:
            skipped[chapter] = str(err)
            continue
        networks.append({**info, "page": f"../chapters/{Path(notebook).stem}.html"})

    dist = ort_dist(root)
    missing_runtime = not all((dist / name).is_file() for name in ORT_FILES)
    if not missing_runtime:
        (out / "ort").mkdir(exist_ok=True)
        for name in ORT_FILES:
            shutil.copy2(dist / name, out / "ort" / name)

    images, labels, indices = sample_images()
    data = {"classes": list(CLASSES), "networks": networks, "ort_version": ORT_VERSION,
            "samples": [{"pixels": base64.b64encode(image.numpy().tobytes()).decode(), "label": label,
                         "index": index} for image, label, index in zip(images, labels, indices)]}
    (out / "try-data.json").write_text(json.dumps(data, separators=(",", ":")) + "\n")
    return {"networks": networks, "skipped": skipped, "missing_runtime": missing_runtime}


# --- the Sphinx hook ------------------------------------------------------------------------------


def _on_build_finished(app, exception) -> None:
    if exception is not None or app.builder.format != "html":
        return
    from sphinx.util import logging

    logger = logging.getLogger(__name__)
    report = write_site_files(Path(app.outdir) / "_static" / "try", root=app.srcdir)
    for chapter, reason in report["skipped"].items():
        logger.warning(f"Try the networks: {chapter} left out: {reason}")
    if report["missing_runtime"]:
        logger.warning(f"Try the networks: onnxruntime-web is not installed under {ort_dist(app.srcdir)}: "
                       "run `npm ci` (make book does)")
    logger.info(f"Try the networks: {len(report['networks'])} networks exported to ONNX")


def setup(app) -> dict:
    """Sphinx extension: write the "Try the networks" files into the built site."""
    app.connect("build-finished", _on_build_finished)
    return {"parallel_read_safe": True, "parallel_write_safe": True}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cnnbook.export", description=__doc__.split("\n\n")[0])
    parser.add_argument("out", help="folder to write into, e.g. _build/html/_static/try")
    args = parser.parse_args(argv)
    report = write_site_files(args.out)
    for info in report["networks"]:
        print(f"{info['key']}: {info['bytes']:,} bytes")
    for chapter, reason in report["skipped"].items():
        print(f"{chapter} left out: {reason}", file=sys.stderr)
    if report["missing_runtime"]:
        print("onnxruntime-web is not installed: run `npm ci`", file=sys.stderr)
    return 1 if report["skipped"] or report["missing_runtime"] else 0


if __name__ == "__main__":
    sys.exit(main())
