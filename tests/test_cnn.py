"""Section 4: the ConvNet builder, convolution arithmetic and im2col (exact), SimpleConvNet (quick preset)."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from experiments import cnn
from repro import data
from repro.config import ConfigError, TrialConfig, apply_overrides
from repro.nets import activation_layers, build_model, conv_output_size, weighted_layers
from repro.setups import DEEP_CONVNET
from repro.engine import train
from tests.conftest import per_seed


# ---- the builder ----

def test_simple_convnet_has_the_books_shapes_and_names():
    model = build_model(cnn.SIMPLE_CONVNET)
    shapes = {name: tuple(m.weight.shape) for name, m in weighted_layers(model)}
    assert shapes == {"conv1": (30, 1, 5, 5), "fc1": (100, 4320), "fc2": (10, 100)}
    assert [name for name, _ in activation_layers(model)] == ["act1", "act2"]
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


def test_deep_convnet_follows_the_book():
    model = build_model(DEEP_CONVNET)
    names = [name for name, _ in model.named_children()]
    assert [n for n, _ in weighted_layers(model)] == [f"conv{k}" for k in range(1, 7)] + ["fc1", "fc2"]
    assert model.fc1.in_features == 64 * 4 * 4  # conv4's padding 2 turns 14x14 into 16x16, so 4x4 at the end
    assert names[-5:] == ["fc1", "act7", "drop7", "fc2", "drop8"]  # dropout after the hidden and the output affine


def test_init_is_the_mlp_builders():
    model = build_model(DEEP_CONVNET.replace(init="normal:0.01"), torch.Generator().manual_seed(0))
    for _, m in weighted_layers(model):
        assert float(m.bias.detach().abs().max()) == 0.0
    assert abs(float(model.conv3.weight.detach().std()) - 0.01) < 0.001
    he = build_model(DEEP_CONVNET, torch.Generator().manual_seed(0))
    assert abs(float(he.conv3.weight.detach().std()) - (2 / (16 * 9)) ** 0.5) < 0.01


def test_residual_block_starts_as_the_identity():
    cfg = TrialConfig(model="cnn", conv=("4", "r4", "gap"), widths=(), batchnorm=True)
    model = build_model(cfg, torch.Generator().manual_seed(0), input_shape=(1, 8, 8)).eval()
    outputs = {}
    for name in ("act1", "act3"):
        getattr(model, name).register_forward_hook(lambda m, i, o, name=name: outputs.__setitem__(name, o))
    model(torch.rand(3, 1, 8, 8))
    assert model.shortcuts == {"act3": "conv2"}
    assert float(model.bn3.weight.detach().abs().max()) == 0.0 and float(model.bn2.weight.detach().min()) == 1.0
    assert torch.equal(outputs["act1"], outputs["act3"])  # relu(x + 0) = x for a ReLU output x


def test_residual_block_without_bn_adds_its_input():
    cfg = TrialConfig(model="cnn", conv=("3", "r3"), widths=())
    model = build_model(cfg, torch.Generator().manual_seed(0), input_shape=(1, 6, 6))
    x = torch.rand(2, 1, 6, 6)
    h = torch.relu(model.conv1(x))
    expected = torch.relu(h + model.conv3(torch.relu(model.conv2(h))))
    assert torch.allclose(model.fc1(expected.flatten(1)), model(x))


@pytest.mark.parametrize("conv, message", [
    (("16", "r32"), "residual block keeps its width"),
    (("8x5p0", "pool", "8x5p0", "pool", "8x5p0"), "shrinks to nothing"),
])
def test_impossible_stacks_are_one_line_errors(conv, message):
    with pytest.raises(ConfigError, match=message):
        build_model(TrialConfig(model="cnn", conv=conv, widths=()))


def test_conv_tokens_and_widths_are_validated():
    with pytest.raises(ConfigError, match="'3y3' is not"):
        apply_overrides(TrialConfig(model="cnn"), {"conv": "16,3y3"})
    assert apply_overrides(TrialConfig(), {"model": "cnn", "widths": "", "conv": "8,r8,gap"}).widths == ()
    assert apply_overrides(TrialConfig(), {"widths": ""}).widths == ()  # an MLP without hidden layers: logistic regression
    with pytest.raises(ConfigError, match="widths"):
        apply_overrides(TrialConfig(), {"widths": "100,0"})


def test_mlp_output_dropout_and_default_mlp_unchanged():
    mlp = build_model(TrialConfig(widths=(8,)))
    assert [n for n, _ in mlp.named_children()] == ["fc1", "act1", "fc2"]
    with_drop = build_model(TrialConfig(widths=(8,), output_dropout=0.5))
    assert [n for n, _ in with_drop.named_children()] == ["fc1", "act1", "fc2", "drop2"]


def test_training_a_convnet_logs_per_layer_telemetry():
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(120, 1, 28, 28, generator=g), torch.randint(0, 10, (120,), generator=g)
    cfg = cnn.SIMPLE_CONVNET.replace(conv=("4x5p0", "pool"), widths=(8,), iters=4, batch_size=10, eval_every=2)
    result = train(cfg, 0, data.Dataset(x[:100], y[:100], x[100:], y[100:]))
    assert result["layers"] == ["conv1", "fc1", "fc2"]
    assert set(result["history"][-1]["grad_norm"]) == {"conv1", "fc1", "fc2", "total"}
    assert set(result["history"][-1]["activations"]) == {"act1", "act2"}


def test_cifar10_without_a_source_is_one_clear_error(monkeypatch, tmp_path):
    import torchvision.datasets

    def no_network(*args, **kwargs):
        raise RuntimeError("<urlopen error [Errno -2] Name or service not known>\nmore")
    monkeypatch.setattr(torchvision.datasets, "CIFAR10", no_network)
    with pytest.raises(data.DataError, match=r"cifar10: not in .*CIFAR10 and torchvision could not download it"):
        data.load("cifar10", root=tmp_path)


def test_cifar10_loads_as_nchw_in_0_1_and_a_convnet_trains_on_it(monkeypatch, tmp_path):
    """The loader's path past torchvision (which checks the archive's MD5), on a stand-in split of
    torchvision's layout: N x 32 x 32 x 3 uint8 images, a list of labels."""
    import numpy as np
    import torchvision.datasets

    class FakeCIFAR10:
        def __init__(self, root, train, download):
            n = 50 if train else 20
            rng = np.random.default_rng(0 if train else 1)
            self.data = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
            self.targets = rng.integers(0, 10, n).tolist()
    monkeypatch.setattr(torchvision.datasets, "CIFAR10", FakeCIFAR10)
    cifar = data.load("cifar10", root=tmp_path, flatten=False, test_size=10)
    assert cifar.x_train.shape == (50, 3, 32, 32) and cifar.x_test.shape == (10, 3, 32, 32)
    assert 0.0 <= float(cifar.x_train.min()) and float(cifar.x_train.max()) <= 1.0
    first = torch.from_numpy(FakeCIFAR10(None, True, False).data[0]).permute(2, 0, 1).float() / 255
    assert torch.equal(cifar.x_train[0], first) and cifar.y_train.dtype == torch.long
    cfg = TrialConfig(dataset="cifar10", model="cnn", conv=("4", "pool"), widths=(8,), iters=4, batch_size=10,
                      eval_every=2, train_eval_size=50)
    result = train(cfg, 0, cifar)
    assert result["status"] == "ok" and [p["step"] for p in result["history"]] == [2, 4]


# ---- the convolution, exactly ----

@pytest.mark.parametrize("size, kernel, stride, pad, expected", [
    (28, 5, 1, 0, 24), (28, 3, 1, 1, 28), (14, 3, 1, 2, 16), (7, 2, 2, 0, 3), (5, 3, 2, 1, 3), (4, 5, 1, 0, 0)])
def test_output_size_formula(size, kernel, stride, pad, expected):
    assert conv_output_size(size, kernel, stride, pad) == expected


def test_output_size_formula_matches_torch_on_random_shapes():
    assert cnn.output_size_mismatches(200, pooling=False, seed=1) == 0
    assert cnn.output_size_mismatches(200, pooling=True, seed=1) == 0


def test_im2col_convolution_and_pooling_equal_torch():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 11, 9, generator=g, dtype=torch.float64)
    w = torch.randn(5, 3, 3, 4, generator=g, dtype=torch.float64)
    b = torch.randn(5, generator=g, dtype=torch.float64)
    assert torch.allclose(cnn.im2col_conv2d(x, w, b, stride=2, padding=1), F.conv2d(x, w, b, 2, 1), atol=1e-12)
    assert torch.equal(cnn.im2col_max_pool(x, 2, 2), F.max_pool2d(x, 2, 2))
    assert torch.equal(cnn.im2col_max_pool(x, 3, 1), F.max_pool2d(x, 3, 1))
    conv_err, pool_err = cnn.im2col_errors(50, seed=2)
    assert conv_err < 1e-12 and pool_err == 0.0


def test_filter_smoothness():
    checker = (torch.arange(4).view(4, 1) + torch.arange(4).view(1, 4)) % 2 * 2.0 - 1  # balanced: mean 0
    assert cnn.filter_smoothness(checker.view(1, 1, 4, 4)) == pytest.approx(-1.0)
    stripes = torch.arange(5.0).view(1, 5).expand(5, 5)  # constant down columns, a ramp across
    assert cnn.filter_smoothness(stripes.reshape(1, 1, 5, 5)) > 0.5
    noise = torch.randn(400, 1, 5, 5, generator=torch.Generator().manual_seed(0))
    assert -0.1 < cnn.filter_smoothness(noise) < 0  # centring a 5x5 filter correlates its taps by -1/24


def test_tile_filters_layout():
    tiles = cnn.tile_filters(torch.randn(30, 1, 5, 5), cols=10)
    assert tiles.shape == (3 * 6 - 1, 10 * 6 - 1)
    assert torch.isnan(tiles[5]).all() and float(torch.nan_to_num(tiles, 0.5).max()) == 1.0


# ---- the quick preset ----

@pytest.fixture(scope="module")
def results(quick_run):
    return quick_run("cnn")


def test_quick_simple_convnet_learns_every_seed(results):
    # 10 seeds of the quick preset: mean 0.926, worst 0.909 (book); mean 0.912, worst 0.898 (course)
    assert min(per_seed(results, cnn.BOOK)) >= 0.88
    assert min(per_seed(results, cnn.COURSE)) >= 0.87


def test_quick_filters_start_as_noise_and_end_smooth(results):
    # 10 seeds: before -0.059 .. -0.002 (centred white noise: about -0.04); after mean 0.73, worst 0.67
    assert max(abs(v) for v in results.extras["filter_smoothness_before"]) <= 0.15
    assert min(results.extras["filter_smoothness_after"]) >= 0.5
