"""Chapter 9 (ResNet): the chapter's model against torchvision, its blocks, every profile's form, the exercises."""
from __future__ import annotations

import ast
from pathlib import Path

import nbformat
import pytest
import torch

from cnnbook import count_params, settings
from cnnbook.book import chapter_code
from conftest import assert_same_layers, assert_trains
from cnnbook.exercises import EXERCISES, check
from cnnbook.profiles import PROFILE_NAMES

CHAPTER = Path(__file__).resolve().parents[1] / "chapters" / "09_resnet.ipynb"


@pytest.fixture(scope="module")
def code():
    return chapter_code(CHAPTER)


@pytest.mark.parametrize("depth, expected", [(18, 11_689_512), (34, 21_797_672), (50, 25_557_032)])
def test_paper_configuration_matches_torchvision(code, depth, expected):
    torchvision = pytest.importorskip("torchvision")
    block, layers = code.RESNET_CONFIGS[depth]
    net = code.resnet(block=block, layers=layers)
    assert count_params(net) == expected
    assert_same_layers(net, getattr(torchvision.models, f"resnet{depth}")(weights=None))


def test_default_is_resnet18_and_maps_an_imagenet_image_to_1000_scores(code):
    net = code.resnet().eval()
    assert count_params(net) == 11_689_512
    with torch.no_grad():
        assert net.stem(torch.zeros(1, 3, 224, 224)).shape == (1, 64, 56, 56)
        assert net(torch.zeros(1, 3, 224, 224)).shape == (1, 1000)


def test_shortcuts_identity_projection_and_none(code):
    same = code.basic_block(16, 16)
    assert isinstance(same.shortcut, torch.nn.Identity)
    down = code.basic_block(16, 32, stride=2)
    assert isinstance(down.shortcut[0], torch.nn.Conv2d) and down.shortcut[0].stride == (2, 2)
    assert down(torch.randn(2, 16, 8, 8)).shape == (2, 32, 4, 4)
    assert code.basic_block(16, 16, shortcut=False).shortcut is None
    bottleneck = code.bottleneck_block(256, 64)
    assert isinstance(bottleneck.shortcut, torch.nn.Identity)
    assert bottleneck(torch.randn(2, 256, 8, 8)).shape == (2, 256, 8, 8)


def test_a_residual_block_with_zero_last_bn_scale_is_the_identity_on_relu_outputs(code):
    block = code.basic_block(8, 8)
    torch.nn.init.zeros_(block.residual[-1].weight)
    X = torch.rand(4, 8, 6, 6)
    assert torch.allclose(block(X), X)


def test_plain_network_has_the_same_layers_without_the_shortcuts(code):
    residual = code.resnet(1, 10, layers=(3, 3, 3), widths=(8, 16, 32), stem="3x3")
    plain = code.resnet(1, 10, layers=(3, 3, 3), widths=(8, 16, 32), stem="3x3", shortcut=False)
    convs = lambda net: sum(isinstance(m, torch.nn.Conv2d) for m in net.modules())  # noqa: E731
    assert convs(residual) == 1 + 18 + 2  # stem, 6n convolutions (n = 3), two projections
    assert convs(plain) == 1 + 18
    assert plain(torch.randn(2, 1, 28, 28)).shape == (2, 10)


def test_unknown_stem_is_explained(code):
    with pytest.raises(ValueError, match="stem must be"):
        code.resnet(stem="5x5")


@pytest.mark.parametrize("profile", PROFILE_NAMES)
def test_fashion_mnist_form_of_each_profile_trains(code, profile):
    S = settings("resnet", profile)
    side = S.resize or 28
    assert_trains(code.resnet(1, 10, **S.model), side)


def test_exercise_answers_match_the_chapters_modules(code):
    assert EXERCISES["resnet/basic-block-params"].expected == count_params(code.basic_block(64, 64))
    assert EXERCISES["resnet/bottleneck-params"].expected == count_params(code.bottleneck_block(256, 64))
    projection = code.basic_block(128, 256, stride=2).shortcut
    assert EXERCISES["resnet/projection-params"].expected == count_params(projection)
    stem_conv = code.resnet(in_channels=1).stem[0]
    with torch.no_grad():
        side = stem_conv(torch.zeros(1, 1, 28, 28)).shape[-1]
    assert EXERCISES["resnet/imagenet-stem-on-28"].expected == side


@pytest.mark.parametrize("name", [n for n, e in EXERCISES.items()  # the numeric ones
                                  if n.startswith("resnet/") and hasattr(e, "expected")])
def test_exercise_checks_accept_the_right_answer_and_reject_a_wrong_one(name):
    expected = EXERCISES[name].expected
    assert check(name, expected)
    assert not check(name, expected + 1)
    assert not check(name, None)


def test_why_exercises_accept_their_answer_and_explain_each_wrong_one():
    for name in ("resnet/why-degradation", "resnet/why-identity-easy"):
        exercise = EXERCISES[name]
        assert check(name, exercise.answer)
        for letter in exercise.options:
            if letter != exercise.answer:
                result = check(name, letter)
                assert not result and exercise.wrong[letter][:20] in str(result)
        assert not check(name, 3)


def test_residual_block_exercise_accepts_a_block_and_rejects_a_plain_one(code):
    assert check("resnet/residual-block", lambda channels: code.basic_block(channels, channels))
    assert not check("resnet/residual-block",
                     lambda channels: code.basic_block(channels, channels, shortcut=False))


def test_preactivation_block_and_network(code):
    block = code.preact_block(16, 32, stride=2)
    assert isinstance(block.relu, torch.nn.Identity)            # nothing after the addition
    assert isinstance(block.shortcut[0], torch.nn.Conv2d) and len(block.shortcut) == 1
    X = torch.randn(2, 16, 8, 8)
    assert block(X).shape == (2, 32, 4, 4)
    same = code.preact_block(16, 16)
    torch.nn.init.zeros_(same.residual[-1].weight)              # F = 0: exactly the identity
    assert torch.allclose(same(X), X)
    net = code.resnet(1, 10, block="preact", layers=(1, 1, 1), widths=(8, 16, 32), stem="3x3")
    assert isinstance(net.head[0], torch.nn.BatchNorm2d)
    assert net(torch.randn(2, 1, 28, 28)).shape == (2, 10)
    with pytest.raises(ValueError, match="block must be"):
        code.resnet(block="wide")


def experiment_functions(code, *names):
    """The functions ``names`` that the chapter's experiment cells define (those cells are not tagged
    ``model``, so chapter_code does not run them), on top of the chapter's model code."""
    namespace = dict(vars(code))
    for cell in nbformat.read(CHAPTER, as_version=4).cells:
        if cell.cell_type == "code":
            defs = [node for node in ast.parse(cell.source).body
                    if isinstance(node, ast.FunctionDef) and node.name in names]
            exec(compile(ast.Module(body=defs, type_ignores=[]), str(CHAPTER), "exec"), namespace)
    assert set(names) <= namespace.keys(), f"the chapter defines no {set(names) - namespace.keys()}"
    return [namespace[name] for name in names]


def test_relative_gradient_is_what_a_step_does_where_the_raw_gradient_depends_on_the_weights_scale(code):
    """The experiment compares ||grad W|| / ||W||: a convolution followed by BN computes the same function
    with its weights scaled by a, its raw gradient is then divided by a, and the relative gradient by a^2 --
    exactly as much as the relative change an SGD step makes to the weights."""
    relative_gradients, convolutions = experiment_functions(code, "relative_gradients", "convolutions")
    torch.manual_seed(0)
    net = code.resnet(1, 10, layers=(1, 1, 1), widths=(8, 16, 32), stem="3x3+pool")
    X, y = torch.rand(16, 1, 28, 28), torch.randint(0, 10, (16,))
    conv = convolutions(net)[2]
    net.train()
    before = net(X).detach()
    torch.nn.functional.cross_entropy(net(X), y).backward()
    raw = conv.weight.grad.norm().item()
    ratios = relative_gradients(net, X, y)
    with torch.no_grad():
        conv.weight.mul_(10)
    assert torch.allclose(net(X), before, atol=1e-4)                   # the same function
    net.zero_grad()
    torch.nn.functional.cross_entropy(net(X), y).backward()
    assert conv.weight.grad.norm().item() == pytest.approx(raw / 10, rel=1e-3)
    assert relative_gradients(net, X, y)[2] == pytest.approx(ratios[2] / 100, rel=1e-3)
    assert len(ratios) == 1 + 2 * 3                                      # stem, 2 per block, no projections


def test_at_initialisation_the_plain_56_layer_gradient_grows_towards_the_input_and_shortcuts_tame_it(code):
    """What the experiment's text says of its first panel, on random images: with BN nothing vanishes, the
    largest relative gradient is near the input, and without shortcuts the spread is far wider."""
    relative_gradients, _ = experiment_functions(code, "relative_gradients", "convolutions")
    torch.manual_seed(0)
    X, y = torch.rand(64, 1, 28, 28), torch.randint(0, 10, (64,))
    spread, top = {}, {}
    for shortcut in (False, True):
        net = code.resnet(1, 10, layers=(9, 9, 9), widths=(8, 16, 32), stem="3x3+pool", shortcut=shortcut)
        ratios = relative_gradients(net, X, y)
        assert len(ratios) == 55
        spread[shortcut], top[shortcut] = max(ratios) / min(ratios), ratios.index(max(ratios))
    assert top[False] < 55 // 3
    assert spread[False] > 1_000 and spread[False] > 20 * spread[True]

