"""Fashion-MNIST: finding, verifying, loading and batching; and the errors for bad files."""
from __future__ import annotations

import functools
import gzip
import http.server
import threading

import pytest
import torch

from cnnbook import data as fmnist
from cnnbook.data import DataError, load_fashion_mnist

REAL = all(fmnist._find(name, [fmnist.SYSTEM_DIR]) for name in fmnist.FILES)


@pytest.mark.skipif(not REAL, reason="the real files are not installed (apt-get install dataset-fashion-mnist)")
def test_real_files_load_and_are_balanced():
    data = load_fashion_mnist(root=fmnist.SYSTEM_DIR, device="cpu", val_size=0)
    assert data.train_images.shape == (60_000, 28, 28) and data.train_images.dtype == torch.uint8
    assert data.test_images.shape == (10_000, 28, 28) and data.val_labels is None
    assert torch.bincount(data.train_labels).tolist() == [6000] * 10
    assert torch.bincount(data.test_labels).tolist() == [1000] * 10
    pixels = data.train_images.float() / 255
    assert abs(pixels.mean().item() - fmnist.MEAN) < 5e-4 and abs(pixels.std().item() - fmnist.STD) < 5e-4


def test_fixture_loads_from_root(idx_dir):
    data = load_fashion_mnist(root=idx_dir, device="cpu")
    assert data.train_images.shape == (100, 28, 28) and data.test_labels.shape == (50,)
    assert data.train_labels.dtype == torch.int64


def test_search_order_root_then_env_then_cache(idx_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("CNNBOOK_DATA", str(idx_dir))
    assert fmnist.locate()["t10k-labels-idx1-ubyte"].parent == idx_dir  # found through CNNBOOK_DATA
    other = tmp_path / "other"
    other.mkdir()
    raw = gzip.decompress((idx_dir / "t10k-labels-idx1-ubyte.gz").read_bytes())
    (other / "t10k-labels-idx1-ubyte").write_bytes(raw)  # uncompressed copies count too
    found = fmnist.locate(root=other)
    assert found["t10k-labels-idx1-ubyte"] == other / "t10k-labels-idx1-ubyte"
    assert found["train-images-idx3-ubyte"].parent == idx_dir


def test_truncated_file_names_file_and_fix(idx_dir):
    path = idx_dir / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-200])
    with pytest.raises(DataError) as err:
        load_fashion_mnist(root=idx_dir)
    message = str(err.value)
    assert str(path) in message and "truncated" in message
    assert "Delete it" in message and "dataset-fashion-mnist" in message


def test_uncompressed_short_file_is_reported_as_truncated(idx_dir):
    raw = gzip.decompress((idx_dir / "t10k-labels-idx1-ubyte.gz").read_bytes())
    (idx_dir / "t10k-labels-idx1-ubyte.gz").unlink()
    (idx_dir / "t10k-labels-idx1-ubyte").write_bytes(raw[:20])
    with pytest.raises(DataError, match=r"truncated: 20 bytes uncompressed, expected 58"):
        load_fashion_mnist(root=idx_dir)


def test_corrupt_file_is_rejected(idx_dir):
    path = idx_dir / "t10k-images-idx3-ubyte.gz"
    raw = bytearray(gzip.decompress(path.read_bytes()))
    raw[500] ^= 0xFF  # one flipped byte, same length
    path.write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(DataError, match="corrupt: its SHA-256 checksum does not match"):
        load_fashion_mnist(root=idx_dir)


def test_no_files_and_no_network_explains_offline_route(tmp_path, monkeypatch):
    from conftest import isolate_search

    isolate_search(tmp_path, monkeypatch)
    with pytest.raises(DataError) as err:
        load_fashion_mnist()
    message = str(err.value)
    assert "could not be downloaded" in message
    assert "apt-get install dataset-fashion-mnist" in message and "CNNBOOK_DATA" in message
    assert not list((tmp_path / "cache").rglob("*.gz*"))  # no partial download left behind


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def mirror(idx_dir, tmp_path, monkeypatch):
    """A local HTTP server serving the fixture's files, as the download mirror."""
    served = tmp_path / "served"
    idx_dir.rename(served)
    handler = functools.partial(QuietHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setattr(fmnist, "MIRROR", f"http://127.0.0.1:{server.server_address[1]}/")
    yield served
    server.shutdown()


def test_download_verifies_then_caches(mirror, tmp_path):
    data = load_fashion_mnist(device="cpu")
    assert data.train_images.shape == (100, 28, 28)
    cached = sorted(p.name for p in (tmp_path / "cache" / "cnnbook" / "fashion-mnist").iterdir())
    assert cached == sorted(f"{name}.gz" for name in fmnist.FILES)


def test_corrupt_download_is_not_kept(mirror, tmp_path):
    path = mirror / "train-labels-idx1-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(DataError, match="truncated"):
        load_fashion_mnist()
    assert not (tmp_path / "cache" / "cnnbook" / "fashion-mnist" / "train-labels-idx1-ubyte.gz").exists()


def test_subset_is_balanced_and_deterministic(idx_dir):
    a = load_fashion_mnist(root=idx_dir, device="cpu", train_subset=40, test_subset=20, seed=3)
    b = load_fashion_mnist(root=idx_dir, device="cpu", train_subset=40, test_subset=20, seed=3)
    assert torch.bincount(a.train_labels).tolist() == [4] * 10
    assert torch.equal(a.train_images, b.train_images)


def test_batches_are_normalised_resized_and_cover_the_split(tiny_data):
    g = torch.Generator().manual_seed(0)
    seen = torch.cat([y for _, y in tiny_data.batches("train", 64, generator=g)])
    assert sorted(seen.tolist()) == sorted(tiny_data.train_labels.tolist())  # a permutation
    X, y = next(tiny_data.batches("test", 32, resize=64))
    assert X.shape == (32, 1, 64, 64) and X.dtype == torch.float32
    X, _ = next(tiny_data.batches("test", 200))
    expected = (tiny_data.test_images[:200].float() / 255 - fmnist.MEAN) / fmnist.STD
    assert torch.allclose(X[:, 0], expected)


def test_augmentation_shifts_and_flips_but_keeps_content():
    X = torch.zeros(64, 1, 28, 28)
    X[:, :, 10:14, 3:7] = 1.0
    out = fmnist.random_crop_flip(X, padding=2, generator=torch.Generator().manual_seed(0))
    assert out.shape == X.shape
    assert torch.all(out.sum(dim=(1, 2, 3)) == 16)  # the block never leaves the frame
    columns = out[:, 0].amax(dim=1).argmax(dim=1)  # left edge of the block
    assert columns.min() < 3 + 2 and columns.max() > 28 - 7  # some shifted, some mirrored


# --- the validation split -------------------------------------------------------------------------------
@pytest.mark.skipif(not REAL, reason="the real files are not installed (apt-get install dataset-fashion-mnist)")
def test_validation_split_is_fixed_balanced_and_apart_from_training():
    data = load_fashion_mnist(root=fmnist.SYSTEM_DIR, device="cpu")
    assert len(data.train_labels) == 55_000 and len(data.val_labels) == 5_000
    assert torch.bincount(data.val_labels).tolist() == [500] * 10
    arrays = fmnist.load_arrays(fmnist.SYSTEM_DIR)
    labels = arrays["train-labels-idx1-ubyte"].long()
    expected = torch.cat([torch.nonzero(labels == c).flatten()[-500:] for c in range(10)]).sort().values
    assert torch.equal(data.val_images, arrays["train-images-idx3-ubyte"][expected])  # the documented rule
    mask = fmnist.validation_mask(labels)
    assert torch.equal(data.train_images, arrays["train-images-idx3-ubyte"][~mask])
    small = load_fashion_mnist(root=fmnist.SYSTEM_DIR, device="cpu", train_subset=1000, val_subset=200)
    assert torch.bincount(small.val_labels).tolist() == [20] * 10
    val_rows = {bytes(x.numpy()) for x in data.val_images}
    assert not any(bytes(x.numpy()) in val_rows for x in small.train_images)  # subsets keep the split


@pytest.mark.parametrize("subset", [-5, 0, 10**6, 2.5, "100", True])
def test_bad_subsets_are_refused(idx_dir, subset):
    with pytest.raises(fmnist.SettingsError, match="train_subset"):
        load_fashion_mnist(root=idx_dir, train_subset=subset)


def test_a_root_that_does_not_exist_is_an_error(idx_dir, tmp_path):
    with pytest.raises(DataError, match="is not a folder"):
        load_fashion_mnist(root=tmp_path / "typo")


def test_cnnbook_data_that_does_not_exist_is_an_error(idx_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("CNNBOOK_DATA", str(tmp_path / "typo"))
    with pytest.raises(DataError, match="CNNBOOK_DATA"):
        load_fashion_mnist()


def test_files_found_outside_cnnbook_data_are_reported(idx_dir, tmp_path, monkeypatch, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("CNNBOOK_DATA", str(empty))
    monkeypatch.setattr(fmnist, "SYSTEM_DIR", idx_dir)
    load_fashion_mnist(device="cpu")
    out = capsys.readouterr().out
    assert f"CNNBOOK_DATA={empty}" in out and str(idx_dir) in out and len(out.splitlines()) == 1


def test_failed_download_leaves_no_empty_folders(tmp_path, monkeypatch):
    from conftest import isolate_search

    isolate_search(tmp_path, monkeypatch)
    with pytest.raises(DataError):
        load_fashion_mnist()
    assert not (tmp_path / "cache").exists()
