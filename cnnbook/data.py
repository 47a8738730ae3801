"""Fashion-MNIST: find the four official files, verify them, hold them as tensors on the device.

Where the files are looked for, in order (each may hold the ``.gz`` or the uncompressed file):

1. the ``root`` argument,
2. the directory in ``$CNNBOOK_DATA``,
3. the user's cache, ``$XDG_CACHE_HOME/cnnbook/fashion-mnist`` (``~/.cache/...``),
4. ``/usr/share/datasets/fashion-mnist`` (Debian/Ubuntu package ``dataset-fashion-mnist``).

Files found nowhere are downloaded from the official mirror into the cache (or ``root``).
Every file is checked -- length and SHA-256 of its uncompressed bytes -- before use, so a
truncated download or a corrupt copy is reported instead of being trained on.

The 60,000 training images are split once, the same way on every machine: the **validation**
split is the last 500 images of each class in the official training file (5,000 images; the file's
order is already random), the **training** split the other 55,000. Settings are chosen on the
validation split; the 10,000 **test** images are evaluated once, at the end of a chapter's run.

Batches are cut, normalised, resized and augmented on the training device: the whole data
set is a few dozen megabytes of uint8, so there is no DataLoader and no per-image Python.
"""
from __future__ import annotations

import contextlib
import gzip
import hashlib
import math
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor

from .errors import CnnbookError, SettingsError

CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
# Mean and standard deviation of the 60,000 training images' pixels, scaled to [0, 1].
MEAN, STD = 0.2860, 0.3530

MIRROR = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")

# name -> (length in bytes, SHA-256) of the uncompressed official file.
FILES = {
    "train-images-idx3-ubyte": (47_040_016, "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"),
    "train-labels-idx1-ubyte": (60_008, "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"),
    "t10k-images-idx3-ubyte": (7_840_016, "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"),
    "t10k-labels-idx1-ubyte": (10_008, "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"),
}

OFFLINE_HELP = (
    "To use the data without a network, do one of:\n"
    "  * Debian/Ubuntu: sudo apt-get install dataset-fashion-mnist  (files land in /usr/share/datasets/fashion-mnist)\n"
    "  * copy the four official files (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz,\n"
    "    t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz) into a folder and set CNNBOOK_DATA=/that/folder,\n"
    "    or pass root='/that/folder'."
)


VAL_PER_CLASS = 500  # the validation split: the last 500 images of each class in the training file


class DataError(CnnbookError, RuntimeError):
    """A Fashion-MNIST file is missing, truncated or corrupt, or could not be downloaded."""


def cache_dir() -> Path:
    """Where downloaded files are kept: ``$XDG_CACHE_HOME/cnnbook/fashion-mnist``."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "cnnbook" / "fashion-mnist"


def search_dirs(root: str | os.PathLike | None = None) -> list[Path]:
    """The directories searched for the files, in order."""
    dirs = [Path(root).expanduser()] if root else []
    if os.environ.get("CNNBOOK_DATA"):
        dirs.append(Path(os.environ["CNNBOOK_DATA"]).expanduser())
    return dirs + [cache_dir(), SYSTEM_DIR]


def _check_folders(root) -> None:
    """A ``root`` or ``$CNNBOOK_DATA`` that does not exist is a mistake to report, not to skip silently."""
    for what, folder in (("root", root), ("CNNBOOK_DATA", os.environ.get("CNNBOOK_DATA"))):
        if folder and not Path(folder).expanduser().is_dir():
            raise DataError(
                f"{what}={str(folder)!r} is not a folder. Give the folder that holds the four Fashion-MNIST "
                f"files, or leave {what} unset to use the usual places."
            )


def _find(name: str, dirs: list[Path]) -> Path | None:
    for d in dirs:
        for candidate in (d / name, d / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    return None


def read_verified(path: Path, name: str) -> bytes:
    """The uncompressed bytes of ``path``, after checking their length and SHA-256.

    Raises:
        DataError: the file is truncated or corrupt; the message names the file and the fix.
    """
    size, sha256 = FILES[name]
    fix = (
        f"Delete it (rm '{path}') and run again to download a fresh copy, or replace it with the "
        f"official file.\n{OFFLINE_HELP}"
    )
    try:
        raw = path.read_bytes()
        data = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
    except EOFError:
        raise DataError(f"Fashion-MNIST file {path} is truncated (the gzip stream ends early).\n{fix}") from None
    except (OSError, gzip.BadGzipFile, ValueError) as err:
        raise DataError(f"Fashion-MNIST file {path} cannot be read ({err}).\n{fix}") from None
    if len(data) != size:
        what = "truncated" if len(data) < size else "too long"
        raise DataError(
            f"Fashion-MNIST file {path} is {what}: {len(data):,} bytes uncompressed, expected {size:,}.\n{fix}"
        )
    if hashlib.sha256(data).hexdigest() != sha256:
        raise DataError(f"Fashion-MNIST file {path} is corrupt: its SHA-256 checksum does not match.\n{fix}")
    return data


def download(name: str, target_dir: Path, mirror: str | None = None) -> Path:
    """Download ``name.gz`` into ``target_dir``, verified before it gets its final name."""
    from tqdm.auto import tqdm

    created = [d for d in (target_dir, *target_dir.parents) if not d.exists()]
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / f"{name}.gz"
    partial = target.with_suffix(".gz.part")
    url = f"{mirror or MIRROR}{name}.gz"
    try:
        with urllib.request.urlopen(url, timeout=30) as response, open(partial, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=f"downloading {name}.gz") as bar:
                while chunk := response.read(1 << 16):
                    out.write(chunk)
                    bar.update(len(chunk))
    except (urllib.error.URLError, OSError, TimeoutError) as err:
        partial.unlink(missing_ok=True)
        for folder in created:  # leave no empty folders behind (innermost first)
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise DataError(
            f"Fashion-MNIST file {name}.gz was not found locally and could not be downloaded from {url} "
            f"({err}).\nLooked in: {', '.join(str(d) for d in search_dirs())}.\n{OFFLINE_HELP}"
        ) from None
    try:
        read_verified(partial, name)  # never give a partial or corrupt download the real name
    except DataError:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(target)
    return target


def locate(root: str | os.PathLike | None = None, allow_download: bool = True) -> dict[str, Path]:
    """The path of each of the four files, downloading those found nowhere.

    Raises:
        DataError: a file is missing and downloading is off or fails.
    """
    _check_folders(root)
    dirs = search_dirs(root)
    paths: dict[str, Path] = {}
    for name in FILES:
        found = _find(name, dirs)
        if found is None:
            if not allow_download:
                raise DataError(
                    f"Fashion-MNIST file {name}(.gz) was not found in: {', '.join(map(str, dirs))}.\n{OFFLINE_HELP}"
                )
            found = download(name, dirs[0] if root else cache_dir())
        paths[name] = found
    env = os.environ.get("CNNBOOK_DATA")
    if env and not root:
        elsewhere = sorted({str(p.parent) for p in paths.values()
                            if p.parent.resolve() != Path(env).expanduser().resolve()})
        if elsewhere:
            print(f"Fashion-MNIST: not all files are in CNNBOOK_DATA={env}; read from {', '.join(elsewhere)}.")
    return paths


def _parse_idx(data: bytes, name: str) -> Tensor:
    """An IDX file's array as a uint8 tensor (images: N x 28 x 28, labels: N)."""
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    if data[:3] != b"\x00\x00\x08" or math.prod(dims) != len(data) - 4 - 4 * ndim:
        raise DataError(f"{name} is not an IDX file of unsigned bytes.")
    return torch.frombuffer(bytearray(data[4 + 4 * ndim:]), dtype=torch.uint8).reshape(dims)


_LOADED: dict[tuple[Path, ...], dict[str, Tensor]] = {}


def load_arrays(root: str | os.PathLike | None = None, allow_download: bool = True) -> dict[str, Tensor]:
    """The four arrays as CPU uint8 tensors, read and verified once per process."""
    paths = locate(root, allow_download)
    key = tuple(p.resolve() for p in paths.values())
    if key not in _LOADED:
        _LOADED[key] = {name: _parse_idx(read_verified(path, name), name) for name, path in paths.items()}
    return _LOADED[key]


@dataclass
class FashionMNIST:
    """Fashion-MNIST held on one device as uint8 images and int64 labels, in three splits.

    Use :meth:`batches` to iterate over normalised float batches of shape (B, 1, H, W).
    """

    train_images: Tensor  # (N, 28, 28) uint8
    train_labels: Tensor  # (N,) int64
    test_images: Tensor
    test_labels: Tensor
    classes: tuple[str, ...] = CLASSES
    val_images: Tensor | None = None  # the validation split, held out of the 60,000 training images
    val_labels: Tensor | None = None

    @property
    def device(self) -> torch.device:
        return self.train_images.device

    def to(self, device: torch.device | str) -> "FashionMNIST":
        """The same data on ``device``."""
        move = (lambda t: None if t is None else t.to(device))
        return FashionMNIST(move(self.train_images), move(self.train_labels), move(self.test_images),
                            move(self.test_labels), self.classes, move(self.val_images),
                            move(self.val_labels))

    def split(self, split: str) -> tuple[Tensor, Tensor]:
        """The (images, labels) of ``"train"``, ``"val"`` or ``"test"``."""
        if split == "train":
            return self.train_images, self.train_labels
        if split == "test":
            return self.test_images, self.test_labels
        if split == "val":
            if self.val_labels is None:
                raise SettingsError("This data has no validation split: load it with "
                                    "cnnbook.load_fashion_mnist() (val_size > 0).")
            return self.val_images, self.val_labels
        raise SettingsError(f"split must be 'train', 'val' or 'test', not {split!r}.")

    def num_batches(self, split: str, batch_size: int) -> int:
        return math.ceil(len(self.split(split)[1]) / batch_size)

    def batches(
        self,
        split: str = "train",
        batch_size: int = 256,
        shuffle: bool | None = None,
        augment: bool = False,
        resize: int | None = None,
        generator: torch.Generator | None = None,
    ) -> Iterator[tuple[Tensor, Tensor]]:
        """Yield ``(X, y)``: X float (B, 1, H, W) normalised, y int64 (B,), both on the device.

        Args:
            split: ``"train"`` or ``"test"``.
            shuffle: a new random order each call (default: only for ``"train"``).
            augment: random crop (2-pixel zero padding) and random horizontal flip.
            resize: resize the 28x28 images to ``resize`` x ``resize`` (bilinear).
            generator: a CPU generator for the order and the augmentation, for repeatable runs.
        """
        images, labels = self.split(split)
        n = len(labels)
        shuffle = (split == "train") if shuffle is None else shuffle
        order = torch.randperm(n, generator=generator).to(self.device) if shuffle else None
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size] if order is not None else slice(start, start + batch_size)
            X = images[idx].unsqueeze(1).float().div_(255)
            if augment:
                X = random_crop_flip(X, padding=2, generator=generator)
            if resize and resize != X.shape[-1]:
                X = F.interpolate(X, size=(resize, resize), mode="bilinear", align_corners=False)
            yield X.sub_(MEAN).div_(STD), labels[idx]


def random_crop_flip(X: Tensor, padding: int = 2, generator: torch.Generator | None = None) -> Tensor:
    """Pad a batch with zeros, crop each image at a random offset, flip half of them left-right."""
    B, C, H, W = X.shape
    offsets = torch.randint(0, 2 * padding + 1, (2, B), generator=generator).to(X.device)
    flips = (torch.rand(B, generator=generator) < 0.5).to(X.device)
    padded = F.pad(X, (padding,) * 4)
    rows = offsets[0, :, None] + torch.arange(H, device=X.device)  # (B, H)
    cols = offsets[1, :, None] + torch.arange(W, device=X.device)  # (B, W)
    cols = torch.where(flips[:, None], cols.flip(1), cols)
    b = torch.arange(B, device=X.device)[:, None, None]
    return padded[b, :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)


def load_fashion_mnist(
    root: str | os.PathLike | None = None,
    device: torch.device | str | None = None,
    train_subset: int | None = None,
    val_subset: int | None = None,
    test_subset: int | None = None,
    seed: int = 0,
    allow_download: bool = True,
    settings=None,
    val_size: int = 10 * VAL_PER_CLASS,
) -> FashionMNIST:
    """Find, verify and load Fashion-MNIST onto ``device`` (default: the fastest available).

    The training file's 60,000 images are split into 55,000 for training and 5,000 for validation
    (the last 500 of each class in the file; the same on every machine), see the module's docstring.

    Args:
        root: a folder to look in first (and to download into).
        train_subset, val_subset, test_subset: keep only this many images of a split, a class-balanced
            random sample chosen by ``seed`` (for quick runs); None keeps all.
        settings: a chapter's :class:`~cnnbook.Settings`; its ``train_subset``, ``val_subset`` and
            ``test_subset`` are used, e.g. ``load_fashion_mnist(settings=S)``.
        allow_download: download files found nowhere locally.
        val_size: how many training images the validation split holds (0: none; a multiple of 10).

    Raises:
        DataError: a file is missing (and cannot be downloaded), truncated or corrupt.
        SettingsError: a subset size that is not a whole number between 1 and the split's size.
    """
    from .profiles import Settings, default_device

    if settings is not None:
        if not isinstance(settings, Settings):
            raise SettingsError(f"settings must be a chapter's Settings (cnnbook.settings(...)), not "
                                f"{type(settings).__name__}.")
        train_subset, val_subset, test_subset = settings.train_subset, settings.val_subset, settings.test_subset
    if not isinstance(val_size, int) or isinstance(val_size, bool) or not 0 <= val_size <= 30_000 \
            or val_size % 10:
        raise SettingsError(f"val_size must be a multiple of 10 between 0 and 30,000, not {val_size!r}.")
    arrays = load_arrays(root, allow_download)
    device = torch.device(device) if device else default_device()
    generator = torch.Generator().manual_seed(seed)
    images, labels = arrays["train-images-idx3-ubyte"], arrays["train-labels-idx1-ubyte"].long()
    is_val = validation_mask(labels, val_size // 10)
    splits = {
        "train": (images[~is_val], labels[~is_val], train_subset),
        "val": (images[is_val], labels[is_val], val_subset),
        "test": (arrays["t10k-images-idx3-ubyte"], arrays["t10k-labels-idx1-ubyte"].long(), test_subset),
    }
    parts = {}
    for split, (X, y, subset) in splits.items():
        if subset is not None:
            _check_subset(f"{split}_subset", subset, len(y))
            if subset < len(y):
                keep = _balanced_sample(y, subset, generator)
                X, y = X[keep], y[keep]
        parts[split] = (X.to(device), y.to(device))
    val = parts["val"] if len(parts["val"][1]) else (None, None)  # (tiny test files: no validation split)
    return FashionMNIST(*parts["train"], *parts["test"], CLASSES, *val)


def validation_mask(labels: Tensor, per_class: int = VAL_PER_CLASS) -> Tensor:
    """True for the validation images: the last ``per_class`` images of each class, in file order (at most
    a twelfth of a class, which matters only for small test files: Fashion-MNIST has 6,000 per class)."""
    mask = torch.zeros(len(labels), dtype=torch.bool)
    for c in range(len(CLASSES)):
        idx = torch.nonzero(labels == c).flatten()
        take = min(per_class, len(idx) // 12)
        if take:
            mask[idx[-take:]] = True
    return mask


def _check_subset(name: str, value, size: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= size:
        raise SettingsError(f"{name}={value!r}: give a whole number of images from 1 to {size:,} (the split's "
                            f"size), or None for all of them.")


def _balanced_sample(labels: Tensor, size: int, generator: torch.Generator) -> Tensor:
    """Indices of ``size`` examples, as close to equally many per class as possible, sorted."""
    per_class = [torch.nonzero(labels == c).flatten() for c in range(len(CLASSES))]
    chosen = []
    for c, idx in enumerate(per_class):
        take = size // len(CLASSES) + (1 if c < size % len(CLASSES) else 0)
        chosen.append(idx[torch.randperm(len(idx), generator=generator)[:take]])
    return torch.cat(chosen).sort().values

