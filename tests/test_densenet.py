"""Chapter 10 (DenseNet): the chapter's model against torchvision, its blocks, every profile's form, the exercises."""
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

CHAPTER = Path(__file__).resolve().parents[1] / "chapters" / "10_densenet.ipynb"


@pytest.fixture(scope="module")
def code():
    return chapter_code(CHAPTER)


@pytest.mark.parametrize("name, block_config, expected", [("densenet121", (6, 12, 24, 16), 7_978_856),
                                                          ("densenet169", (6, 12, 32, 32), 14_149_480)])
def test_paper_configuration_matches_torchvision(code, name, block_config, expected):
    torchvision = pytest.importorskip("torchvision")
    net = code.densenet(block_config=block_config)
    assert count_params(net) == expected
    assert_same_layers(net, getattr(torchvision.models, name)(weights=None))


def test_default_is_densenet121_and_maps_an_imagenet_image_to_1000_scores(code):
    net = code.densenet().eval()
    assert count_params(net) == 7_978_856
    with torch.no_grad():
        assert net.stem(torch.zeros(1, 3, 224, 224)).shape == (1, 64, 56, 56)
        assert net(torch.zeros(1, 3, 224, 224)).shape == (1, 1000)


def test_dense_block_concatenates_its_input_and_every_layers_output(code):
    block = code.DenseBlock(num_layers=3, in_channels=8, growth_rate=4).eval()
    X = torch.randn(2, 8, 5, 5)
    with torch.no_grad():
        Y = block(X)
    assert block.out_channels == 8 + 3 * 4 and Y.shape == (2, 20, 5, 5)
    assert torch.equal(Y[:, :8], X)  # the input is passed on unchanged
    assert [layer[0].num_features for layer in block.layers] == [8, 12, 16]  # each layer reads all maps so far


def test_transition_compresses_and_halves(code):
    with torch.no_grad():
        assert code.transition_block(256, 128)(torch.zeros(1, 256, 56, 56)).shape == (1, 128, 28, 28)
    net = code.densenet(block_config=(2, 2), num_init_features=16, growth_rate=4, compression=0.5)
    assert net.transition1[2].out_channels == (16 + 2 * 4) // 2


def test_unknown_stem_is_explained(code):
    with pytest.raises(ValueError, match="stem must be"):
        code.densenet(stem="5x5")


@pytest.mark.parametrize("profile", PROFILE_NAMES)
def test_fashion_mnist_form_of_each_profile_trains(code, profile):
    S = settings("densenet", profile)
    side = S.resize or 28
    assert_trains(code.densenet(1, 10, **S.model), side)


def test_exercise_answers_match_the_chapters_modules(code):
    densenet169 = code.densenet(block_config=(6, 12, 32, 32))
    assert EXERCISES["densenet/densenet169-block3-channels"].expected == densenet169.block3.out_channels
    densenet121 = code.densenet()
    assert EXERCISES["densenet/dense-layer-params"].expected == count_params(densenet121.block1.layers[-1])
    assert EXERCISES["densenet/transition-params"].expected == count_params(densenet169.transition3)
    with torch.no_grad():
        side = code.transition_block(4, 2)(torch.zeros(1, 4, 7, 7)).shape[-1]
    assert EXERCISES["densenet/transition-pool-output"].expected == side


@pytest.mark.parametrize("name", [n for n, e in EXERCISES.items()  # the numeric ones
                                  if n.startswith("densenet/") and hasattr(e, "expected")])
def test_exercise_checks_accept_the_right_answer_and_reject_a_wrong_one(name):
    expected = EXERCISES[name].expected
    assert check(name, expected)
    assert not check(name, expected + 1)
    assert not check(name, None)


def test_why_exercises_accept_their_answer_and_explain_each_wrong_one():
    for name in ("densenet/why-narrow", "densenet/why-transitions"):
        exercise = EXERCISES[name]
        assert check(name, exercise.answer)
        for letter in exercise.options:
            if letter != exercise.answer:
                result = check(name, letter)
                assert not result and exercise.wrong[letter][:20] in str(result)
        assert not check(name, 3)


def test_dense_layer_exercise_accepts_a_layer_and_rejects_one_that_forgets_its_input():
    class DenseLayer(torch.nn.Module):
        def __init__(self, in_channels, growth_rate, keep_input=True):
            super().__init__()
            self.keep_input = keep_input
            self.f = torch.nn.Sequential(torch.nn.BatchNorm2d(in_channels), torch.nn.ReLU(),
                                         torch.nn.Conv2d(in_channels, growth_rate, 3, padding=1))

        def forward(self, X):
            Y = self.f(X)
            return torch.cat((X, Y), dim=1) if self.keep_input else Y

    assert check("densenet/dense-layer", DenseLayer)
    assert not check("densenet/dense-layer", lambda c, k: DenseLayer(c, k, keep_input=False))


def test_names_follow_the_books_conventions(code):
    assert not hasattr(code, "conv_block") and not hasattr(code, "transition")
    assert len(code.bn_relu_conv(4, 8, 3)) == 3


def experiment_namespace(code, *names, **names_used):
    """The chapter's model code plus the functions ``names`` that its experiment cells define (those cells
    are not tagged ``model``, so chapter_code does not run them), and ``names_used``: what they read."""
    namespace = {**vars(code), **names_used}
    for cell in nbformat.read(CHAPTER, as_version=4).cells:
        if cell.cell_type == "code":
            defs = [node for node in ast.parse(cell.source).body
                    if isinstance(node, ast.FunctionDef) and node.name in names]
            exec(compile(ast.Module(body=defs, type_ignores=[]), str(CHAPTER), "exec"), namespace)
    assert set(names) <= namespace.keys(), f"the chapter defines no {set(names) - namespace.keys()}"
    return namespace


def test_the_untrained_baseline_is_the_trained_networks_start():
    """Experiment 2 rebuilds the network it trained, untrained, with torch.manual_seed(0) under fork_rng:
    the start the chapter's net had, since cnnbook.setup() seeds 0 and the chapter builds net next."""
    from cnnbook.profiles import seed_everything  # what cnnbook.setup() does first

    code = chapter_code(CHAPTER)
    seed_everything(0)
    S = settings("densenet", "cpu")
    net = code.densenet(1, 10, **S.model)
    state = torch.get_rng_state()
    with torch.random.fork_rng():
        torch.manual_seed(0)
        untrained = code.densenet(1, 10, **S.model)
    assert torch.equal(torch.get_rng_state(), state)  # the rest of the chapter draws as before
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), untrained.state_dict().values()))


def test_reuse_map_of_an_untrained_network_is_flat_and_a_zero_gamma_switches_a_source_off(code):
    """Why experiment 2 draws the untrained map beside the trained one, and weighs by |gamma|: at He
    initialisation every source gets about the same mean |weight| (every connection >= 0.5 of its row's
    strongest before any training), and a BN scale gamma = 0 silences a source whatever its weights."""
    S = settings("densenet", "cpu")
    ns = experiment_namespace(code, "reuse_map", "reuse_maps", S=S, blocks=S.model["block_config"],
                              k=S.model["growth_rate"])
    torch.manual_seed(0)
    net = code.densenet(1, 10, **S.model)
    heats = ns["reuse_maps"](net)
    assert [h.shape[0] for h in heats] == [n + 1 for n in S.model["block_config"]]
    values = torch.cat([h[~h.isnan()] for h in heats])
    assert values.min() >= 0.5 and values.max() == 1
    layer = net.block1.layers[1]                       # reads the block input, then layer 1's k maps
    with torch.no_grad():
        layer[0].weight[:S.model["num_init_features"]] = 0  # gamma = 0 on the block input's channels
    heat = ns["reuse_maps"](net)[0]
    assert heat[1, 0] == 0 and heat[1, 1] == 1

