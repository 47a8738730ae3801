"""A stand-in for a GPU on a CPU-only machine: catch device mixing in a chapter without CUDA.

On a GPU, tensors on the device and plain (CPU) tensors cannot meet in one operation, and ``.numpy()``
refuses a device tensor. On a CPU both are the same memory, so a chapter that mixes them runs here and
crashes in Colab (chapter 6 once fed ``torch.zeros(...)`` to a trained network; chapter 8 fed a batch on
the device to a network built in the cell and never moved).

``install()`` makes cnnbook's device ``cpu:0`` (``default_device()`` returns it) and pushes a
``TorchFunctionMode`` that tracks which tensors live "on the device": those moved there (``.to(device)``,
``net.to(device)``), made there (``torch.zeros(..., device=device)``) or computed from them. Such a tensor
reports ``device`` ``cpu:0``, and the mode raises CUDA's own errors where CUDA would:

- an operation that mixes device tensors with plain tensors that have dimensions (0-dimensional plain
  tensors are allowed, as CUDA allows CPU scalars): "Expected all tensors to be on the same device";
- ``.numpy()`` or ``numpy.asarray`` of a device tensor: "can't convert cuda:0 device type tensor to numpy".

Copies between the two (``copy_``, ``load_state_dict``) and indexing with plain indices are allowed, as on
CUDA. The test suite installs it in every chapter's smoke execution through an IPython startup file
(:func:`startup_dir`), so no notebook is changed.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
from torch.overrides import TorchFunctionMode

DEVICE = torch.device("cpu", 0)  # "the GPU": a CPU tensor moved with .to(DEVICE) is marked as living there
TAG = "_on_fake_device"
MARKER_ENV = "CNNBOOK_DEVICE_GUARD_LOG"  # a file the guard writes once it has seen device tensors at work

# Operations that may take tensors from both sides on CUDA: copies across devices, and indexing a device
# tensor with CPU indices (or assigning into it).
CROSSING = {"copy_", "__getitem__", "__setitem__", "to", "cpu", "cuda", "type", "_to_copy",
            "__deepcopy__", "__reduce_ex__", "load_state_dict", "_has_compatible_shallow_copy_type",
            "is_set_to", "is_same_size"}


def on_device(value) -> bool:
    return isinstance(value, torch.Tensor) and bool(getattr(value, TAG, False))


def _mark(value, flag: bool) -> None:
    if isinstance(value, torch.Tensor):
        try:
            setattr(value, TAG, flag)
        except (AttributeError, TypeError):  # pragma: no cover - a tensor type without a __dict__
            pass
    elif isinstance(value, (list, tuple)):
        for item in value:
            _mark(item, flag)


def _tensors(values, depth: int = 0):
    for value in values:
        if isinstance(value, torch.Tensor):
            yield value
        elif isinstance(value, (list, tuple)) and depth < 2:
            yield from _tensors(value, depth + 1)
        elif isinstance(value, dict) and depth < 2:
            yield from _tensors(value.values(), depth + 1)


def _as_device(value) -> torch.device | None:
    if isinstance(value, torch.device):
        return value
    if isinstance(value, str):
        try:
            return torch.device(value)
        except RuntimeError:
            return None
    if isinstance(value, int) and not isinstance(value, bool):
        return torch.device("cuda", value)
    return None


def _target(name: str, args, kwargs) -> bool | None:
    """Where .to(...) / .cpu() / a factory's device= puts the result: True on the device, False on the host,
    None when it does not say (a dtype-only conversion keeps the input's place)."""
    if name == "cpu":
        return False
    if name == "cuda":
        return True
    candidates = [kwargs.get("device")] + (list(args[1:]) if name == "to" else [])
    for value in candidates:
        if isinstance(value, torch.Tensor):  # .to(other): other's place
            return on_device(value)
        device = _as_device(value)
        if device is not None:
            return device == DEVICE or device.type == "cuda"
    return None


def _name(func) -> str:
    owner = getattr(func, "__self__", None)
    if type(func).__name__ == "method-wrapper" and owner is not None:  # a property: Tensor.grad.__get__
        return f"{getattr(owner, '__name__', '?')}.{func.__name__}"
    return getattr(func, "__name__", str(func))


class FakeDeviceMode(TorchFunctionMode):
    """Tracks tensors on the stand-in device and raises CUDA's errors where CUDA would (module docstring)."""

    def __init__(self, marker: str | None = None):
        super().__init__()
        self.marker = marker
        self.active = False

    def _seen_device_work(self) -> None:
        if not self.active:
            self.active = True
            if self.marker:
                Path(self.marker).write_text("the device check saw tensors on the device\n")

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = _name(func)
        if name == "device.__get__":  # a tensor on the device says so; any other tells its own (cpu, meta)
            return DEVICE if on_device(args[0]) else func(*args, **kwargs)
        if name in ("data.__set__", "grad.__set__"):  # param.data = tensor keeps the tensor's place
            result = func(*args, **kwargs)
            if name == "data.__set__":
                _mark(args[0], on_device(args[1]))
            return result
        if name in ("numpy", "__array__") and on_device(args[0]):
            raise TypeError("can't convert cuda:0 device type tensor to numpy. Use Tensor.cpu() to copy the "
                            "tensor to host memory first. (cnnbook's device check: this tensor lives on the "
                            "device, as it would on a GPU)")
        inputs = list(_tensors(list(args) + list(kwargs.values())))
        on = [t for t in inputs if on_device(t)]
        base = name.split(".")[0]
        if on and base not in CROSSING:
            off = [t for t in inputs if not on_device(t) and t.dim() > 0]
            if off:
                raise RuntimeError(
                    f"Expected all tensors to be on the same device, but found at least two devices, cuda:0 and "
                    f"cpu! (in {name}; cnnbook's device check: a tensor of shape {tuple(off[0].shape)} is not on "
                    f"the device, as it would not be on a GPU: move it with .to(device), or build it there)")
        if on:
            self._seen_device_work()
        result = func(*args, **kwargs)
        target = _target(base, args, kwargs) if base in ("to", "cpu", "cuda") or "device" in kwargs else None
        if target is not None and result is args[0] and on_device(result) != target:
            # on a CPU, .to(device) and .cpu() hand back the tensor itself; on a GPU they make a copy on
            # the other side, and the original stays where it was: an alias plays the copy
            with torch._C.DisableTorchFunction():
                result = result.view_as(result)
        if target is not None:
            _mark(result, target)
        elif base == "copy_":
            pass  # the destination keeps its place
        elif on and not name.endswith("__set__"):
            _mark(result, True)
        return result


_MODE: FakeDeviceMode | None = None


def install() -> FakeDeviceMode:
    """Make cnnbook's device the stand-in and start tracking (for the rest of the process)."""
    global _MODE
    import sys

    import cnnbook  # noqa: F401 - loads the modules patched below

    def default_device() -> torch.device:
        return DEVICE

    for name in ("cnnbook", "cnnbook.profiles", "cnnbook.train"):  # (cnnbook.train: also a function)
        sys.modules[name].default_device = default_device
    deepcopy = torch.nn.Parameter.__deepcopy__

    def parameter_deepcopy(self, memo):  # a copied parameter stays where the original lives
        copy = deepcopy(self, memo)
        _mark(copy, on_device(self))
        return copy

    torch.nn.Parameter.__deepcopy__ = parameter_deepcopy
    _MODE = FakeDeviceMode(os.environ.get(MARKER_ENV))
    _MODE.__enter__()
    return _MODE


def startup_dir(folder: Path) -> Path:
    """An IPYTHONDIR whose startup file installs the check in every kernel started with it."""
    startup = folder / "profile_default" / "startup"
    startup.mkdir(parents=True, exist_ok=True)
    here = Path(__file__).resolve().parent
    (startup / "00-device-guard.py").write_text(
        f"import sys\nsys.path.insert(0, {str(here)!r})\nimport device_guard\ndevice_guard.install()\n"
        f"sys.path.remove({str(here)!r})\n")
    return folder
