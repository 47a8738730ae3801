"""Does a reader's block compute what the reference block computes? And if not, where do they part?

The reference gets random weights from a fixed seed (convolutions and linear layers He-normal,
biases and BatchNorm's γ, β and running estimates spread around their usual values), and these are
loaded into the reader's module. Both then run on the same random input, three times: in
evaluation mode, in training mode (BatchNorm uses the batch's statistics; both runs start from the
same random seed, so a dropout placed alike draws the same mask) and in evaluation mode again
(the running estimates that training step left). The verdict compares the final outputs only, so
a block written differently (``F.relu`` in forward, an in-place ReLU, attributes instead of a
Sequential) passes when it computes the same function.

Loading the weights: parameters are paired with parameters and floating-point buffers with buffers
(integer buffers such as ``num_batches_tracked`` are ignored), by shape, ignoring dimensions of
size 1 (a γ of shape (1, C, 1, 1) takes a (C,) one). Tensors are paired module by module first (a
reader who registers the branches of a block in another order is still paired right), then tensor
by tensor; either way the k-th tensor of a given shape in the reference goes to the k-th of that
shape in the reader's order of registration, so layers of the same size must be registered in the
order they are used. When the shapes do not pair up, the message names the first one that does not.

Where the outputs differ, forward hooks on the leaf modules of both record each layer's input and
output in execution order; the first reference layer whose output the reader's module never
computes (as any layer's input or output) is where they part, and the message names it with what
the reader's module does with that layer's input instead. A layer done as a function (``F.relu``)
leaves no record but its result still turns up as the next layer's input, so the naming is robust
to that; when nothing fits, the message falls back to a general one.
"""
from __future__ import annotations

import copy
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import torch
from torch import nn

from .core import (Check, ReturnsNone, _cap, _first_line, as_factory, parameter_count, returns_none, right,
                   what_it_is, wrong)

SEED = 0
TOLERANCE = 1e-4  # relative to the largest value: float32 sums over a few thousand terms
ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth")


# --- the reference's random state, loaded into the reader's module ----------------------------


def randomise(module: nn.Module, generator: torch.Generator) -> None:
    """Give ``module`` random weights and BatchNorm statistics (in place), from ``generator``."""
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                fan_in = m.weight[0].numel()
                m.weight.copy_(torch.randn(m.weight.shape, generator=generator) * (2 / fan_in) ** 0.5)
                if m.bias is not None:
                    m.bias.copy_(torch.rand(m.bias.shape, generator=generator) - 0.5)
            elif isinstance(m, nn.modules.batchnorm._BatchNorm):
                for tensor, low in ((m.weight, 0.5), (m.bias, -0.5), (m.running_mean, -0.5),
                                    (m.running_var, 0.5)):
                    if tensor is not None:
                        tensor.copy_(torch.rand(tensor.shape, generator=generator) * 1.5 + low)


@dataclass(frozen=True)
class _Tensor:
    tensor: torch.Tensor
    owner: nn.Module
    name: str
    kind: str  # "parameter" or "buffer"

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(s for s in self.tensor.shape if s != 1)

    def __str__(self) -> str:
        shape = tuple(self.tensor.shape)
        return f"{type(self.owner).__name__} {self.name} of shape {shape}"


def _tensors(module: nn.Module) -> dict[str, list[_Tensor]]:
    """The parameters and floating-point buffers of ``module``, in order of registration."""
    seen: set[int] = set()
    found: dict[str, list[_Tensor]] = {"parameter": [], "buffer": []}
    for owner in module.modules():
        for kind, items in (("parameter", owner.named_parameters(recurse=False)),
                            ("buffer", owner.named_buffers(recurse=False))):
            for name, tensor in items:
                if id(tensor) not in seen and tensor.is_floating_point():
                    seen.add(id(tensor))
                    found[kind].append(_Tensor(tensor, owner, name, kind))
    return found


def _stable(ref: Sequence, mine: Sequence, key: Callable) -> list[tuple] | None:
    """Pair the k-th reference item of each key with the reader's k-th item of that key."""
    if Counter(map(key, ref)) != Counter(map(key, mine)):
        return None
    queues: dict[Any, list] = defaultdict(list)
    for item in mine:
        queues[key(item)].append(item)
    return [(r, queues[key(r)].pop(0)) for r in ref]


def _by_module(ref: list[_Tensor], mine: list[_Tensor]) -> list[tuple] | None:
    def groups(tensors: list[_Tensor]) -> list[list[_Tensor]]:
        owners: dict[int, list[_Tensor]] = {}
        for t in tensors:
            owners.setdefault(id(t.owner), []).append(t)
        return list(owners.values())

    pairs = _stable(groups(ref), groups(mine), lambda g: tuple(t.shape for t in g))
    return None if pairs is None else [p for r, m in pairs for p in zip(r, m)]


def _ordinal(index: int) -> str:
    return ORDINALS[index] if index < len(ORDINALS) else f"{index + 1}th"


def _first_unpaired(ref: list[_Tensor], mine: list[_Tensor], kind: str) -> str:
    left = Counter(t.shape for t in mine)
    for index, t in enumerate(ref):
        if not left[t.shape]:
            advice = " (register it with self.register_buffer)" if kind == "buffer" else ""
            return f"yours has no {t} (the reference's {_ordinal(index)} {kind}){advice}"
        left[t.shape] -= 1
    spare = Counter(t.shape for t in ref)
    for t in mine:
        if not spare[t.shape]:
            return f"yours has a {t} that the reference does not have"
        spare[t.shape] -= 1
    return "they do not pair up"


def pairings(mine: nn.Module, ref: nn.Module) -> list[list[tuple[_Tensor, _Tensor]]] | str:
    """The ways to pair the reference's tensors with the reader's (module by module, then tensor by
    tensor), or a one-line reason naming the first tensor that has no partner."""
    ref_tensors, my_tensors = _tensors(ref), _tensors(mine)
    ways: list[list] = [[], []]
    for kind in ("parameter", "buffer"):
        tensor_pairs = _stable(ref_tensors[kind], my_tensors[kind], lambda t: t.shape)
        if tensor_pairs is None:
            return _first_unpaired(ref_tensors[kind], my_tensors[kind], kind)
        ways[0] += _by_module(ref_tensors[kind], my_tensors[kind]) or tensor_pairs
        ways[1] += tensor_pairs
    return ways if [id(m.tensor) for _, m in ways[0]] != [id(m.tensor) for _, m in ways[1]] else ways[:1]


def load(pairs: list[tuple[_Tensor, _Tensor]]) -> None:
    with torch.no_grad():
        for ref, mine in pairs:
            mine.tensor.copy_(ref.tensor.reshape(mine.tensor.shape))


# --- running both, layer by layer --------------------------------------------------------------


@dataclass
class _Call:
    module: nn.Module
    input: torch.Tensor | None = None
    output: torch.Tensor | None = None

    @property
    def kind(self) -> str:
        return type(self.module).__name__


def _leaves(module: nn.Module) -> list[nn.Module]:
    return [m for m in module.modules() if next(m.children(), None) is None]


def trace(module: nn.Module, X: torch.Tensor, training: bool) -> tuple[torch.Tensor, list[_Call]]:
    """``module``'s output for ``X`` and each leaf layer's input and output, in execution order."""
    calls: list[_Call] = []

    def before(layer, inputs):
        first = inputs[0] if inputs and isinstance(inputs[0], torch.Tensor) else None
        calls.append(_Call(layer, None if first is None else first.detach().clone()))

    def after(layer, inputs, output):
        call = next((c for c in reversed(calls) if c.module is layer), None)
        if call is not None and isinstance(output, torch.Tensor):
            call.output = output.detach().clone()  # before an in-place layer changes it

    handles = [h for m in _leaves(module)
               for h in (m.register_forward_pre_hook(before), m.register_forward_hook(after))]
    try:
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            torch.manual_seed(SEED)  # both runs draw the same dropout masks
            out = module.train(training)(X.clone())
    finally:
        for h in handles:
            h.remove()
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"it returns {what_it_is(out)}, not a tensor")
    return out, calls


def close(a: torch.Tensor | None, b: torch.Tensor | None) -> bool:
    if a is None or b is None or a.shape != b.shape:
        return False
    scale = max(1.0, b.abs().max().item()) if b.numel() else 1.0
    return bool((a - b).abs().max().item() <= TOLERANCE * scale) if b.numel() else True


def _name(calls: list[_Call], index: int) -> str:
    kind = calls[index].kind
    same = [i for i, c in enumerate(calls) if c.kind == kind]
    if len(same) == 1:
        return f"the {kind}"
    return f"the {_ordinal(same.index(index))} {kind}"


def where_they_part(ref: list[_Call], mine: list[_Call], X: torch.Tensor, out: torch.Tensor) -> str:
    """Where the reader's layers (``mine``, ending in ``out``) stop computing what the reference's
    compute, in a few words."""
    computed = [X, out] + [t for c in mine for t in (c.input, c.output) if t is not None]

    def found(t: torch.Tensor | None) -> bool:
        return any(close(u, t) for u in computed)

    def source(t: torch.Tensor | None, before: int) -> str | None:
        if close(t, X):
            return "on the block's input"
        j = next((j for j in reversed(range(before)) if close(ref[j].output, t)), None)
        return None if j is None else f"after {_name(ref, j)}"

    def unexplained(t: torch.Tensor | None) -> _Call | None:  # a layer of yours the reference lacks
        return next((c for c in mine if close(c.input, t)
                     and not any(close(c.output, r.output) for r in ref)), None)

    k = next((i for i, c in enumerate(ref) if not found(c.output)), None)
    if k is None:
        for index, call in enumerate(ref):
            extra = unexplained(call.output)
            if extra is not None:
                return f"(after {_name(ref, index)}, yours has an extra {extra.kind}): remove it"
        return ("(every layer gives what the reference's gives, but not the output): check what "
                "forward does with the layers' outputs (the addition, the concatenation and its order)")
    layer, where = ref[k], source(ref[k].input, k)
    prefix = f"from layer {k + 1} ("
    if not found(layer.input):
        return (f"{prefix}{_name(ref, k)} gets another input in yours: in the reference it follows "
                f"forward's addition or concatenation): check that step")
    other = unexplained(layer.input)
    where = where or "after forward's addition or concatenation"
    if other is None:
        return f"{prefix}{layer.kind} expected {where}: not found in yours): add it there"
    if other.kind == layer.kind:
        return (f"{prefix}{_name(ref, k)} {where} computes something else in yours): check its "
                f"arguments (kernel size, stride, padding, bias...)")
    return f"{prefix}{layer.kind} expected {where}, found {other.kind}): check the layers' kind and order"


# --- the verdict -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Difference:
    """How a reader's module differs from the reference: ``mode`` is "" (in evaluation mode, or
    both), "training" or "after training" (evaluation with the running estimates a training step
    left); ``where`` says where they part. ``mode`` is None when the tensors do not pair up."""

    mode: str | None
    where: str

    def __str__(self) -> str:
        if self.mode is None:
            return f"its layers do not pair up with the reference's: {self.where}"
        lead = {"": "", "training": "in training mode, ",
                "after training": "in evaluation mode after a training step, "}[self.mode]
        return f"{lead}the output differs from the reference's {self.where}"


def difference(module: nn.Module, reference: nn.Module, input_size: Sequence[int]) -> Difference | None:
    """None when ``module``, given ``reference``'s random weights, computes what it computes in
    both modes; otherwise the first :class:`Difference` (tried with each way to pair the tensors)."""
    generator = torch.Generator().manual_seed(SEED)
    ref = copy.deepcopy(reference)
    randomise(ref, generator)
    X = torch.randn(*input_size, generator=generator) * 3
    ways = pairings(module, ref)
    if isinstance(ways, str):
        return Difference(None, ways)
    first: Difference | None = None
    for way in range(len(ways)):
        theirs, mine = copy.deepcopy(ref), copy.deepcopy(module)
        load(pairings(mine, theirs)[way])
        found = _first_difference(mine, theirs, X)
        if found is None:
            return None
        first = first or found
    return first


def _first_difference(mine: nn.Module, ref: nn.Module, X: torch.Tensor) -> Difference | None:
    for mode, training in (("", False), ("training", True), ("after training", False)):
        expected, ref_calls = trace(ref, X, training)
        out, my_calls = trace(mine, X, training)
        if not close(out, expected):
            return Difference(mode, where_they_part(ref_calls, my_calls, X, out))
    return None


def behaves_like(module: nn.Module, reference: nn.Module, input_size: Sequence[int],
                 name: str = "your module") -> Check:
    """Whether ``module`` computes what ``reference`` does, once given the reference's weights.

    First it must run, return the reference's output shape and have as many parameters; then the
    comparison described in this module's docstring, in both modes.
    """
    mine = copy.deepcopy(module)
    try:
        out, _ = trace(mine, torch.randn(*input_size), False)
    except Exception as err:  # noqa: BLE001
        return wrong(f"{_cap(name)} fails on an input of shape {tuple(input_size)}: {_first_line(err)}")
    expected, _ = trace(copy.deepcopy(reference), torch.randn(*input_size), False)
    if out.shape != expected.shape:
        return wrong(f"{_cap(name)} returns shape {tuple(out.shape)}, expected {tuple(expected.shape)}.")
    n_mine, n_ref = parameter_count(mine), parameter_count(reference)
    if n_mine != n_ref:
        return wrong(f"{_cap(name)} has {n_mine:,} parameters, expected {n_ref:,}: "
                     f"check the layers' sizes.")
    same = computes_like(mine, reference, input_size, name)
    if not same:
        return same
    return right(f"{_cap(name)} maps {tuple(input_size)} to {tuple(out.shape)} with {n_ref:,} parameters "
                 f"and computes what the reference computes.")


def computes_like(module: nn.Module, reference: nn.Module, input_size: Sequence[int],
                  name: str = "your block") -> Check:
    """Whether ``module`` computes what ``reference`` computes (see this module's docstring); the
    message of a wrong one names where they part."""
    found = difference(module, reference, input_size)
    if found is not None:
        return wrong(f"{_cap(name)}: {found}.")
    return right(f"{_cap(name)} computes what the reference computes.")


def check_module(build: Any, reference: Callable[[], nn.Module] | nn.Module,
                 input_size: Sequence[int], name: str = "your module", args: Sequence = (),
                 kwargs: Mapping | None = None) -> Check:
    """Check a reader's module against a reference: it runs, output shape, parameter count, function.

    Args:
        build: the reader's module, its class (built with ``args``/``kwargs``) or a function making it.
        reference: the expected module, or a function making it.
        input_size: the shape of a test input, e.g. (2, 1, 28, 28).
        name: how the messages call the reader's module.
    """
    factory = as_factory(build, args, kwargs, name)
    if isinstance(factory, Check):
        return factory
    try:
        mine = factory()
    except ReturnsNone as err:
        return returns_none(err)
    except Exception as err:  # noqa: BLE001
        return wrong(f"Building {name} fails: {_first_line(err)}")
    ref = reference if isinstance(reference, nn.Module) else reference()
    return behaves_like(mine, ref, input_size, name)
