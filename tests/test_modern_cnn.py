"""Section 5: DeepConvNet, BN and residual variants, the depth study (quick preset) and its pure functions."""
from __future__ import annotations

import pytest
import torch

from experiments import modern_cnn as mc
from repro.nets import build_model, weighted_layers
from tests.conftest import per_seed


def test_depth_stacks_count_conv_layers():
    for depth in (4, 10, 34):
        for residual in (False, True):
            model = build_model(mc.DEPTH_NET.replace(conv=mc.depth_stack(depth, residual)))
            convs = [n for n, _ in weighted_layers(model) if n.startswith("conv")]
            assert len(convs) == depth
            assert len(model.shortcuts) == ((depth - 2) // 2 if residual else 0)
    residual = build_model(mc.BOOK_VARIANTS["residual-deepconvnet-bn"][1])
    assert len([n for n, _ in weighted_layers(residual)]) == 9 + 2 and len(residual.shortcuts) == 3


def test_activation_grad_norms_match_autograd():
    model = torch.nn.Sequential()
    model.add_module("fc1", torch.nn.Linear(3, 2))
    model.add_module("act1", torch.nn.ReLU())
    with torch.no_grad():
        model.fc1.weight.copy_(torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]))
        model.fc1.bias.zero_()
    x, y = torch.tensor([[2.0, -1.0, 5.0]]), torch.tensor([0])
    norms = mc.activation_grad_norms(model, x, y)
    # logits (2, 0): dLoss/dlogits = softmax - onehot = (p0 - 1, p1)
    p1 = torch.softmax(torch.tensor([2.0, 0.0]), 0)[1]
    assert list(norms) == ["act1"] and norms["act1"] == pytest.approx(float(p1 * 2 ** 0.5), rel=1e-6)


def test_body_ratio_skips_the_stem_and_zeros():
    norms = {"act1": 100.0, "act2": 50.0, "act3": 0.0, "act4": 8.0, "act5": 0.0, "act6": 2.0}
    assert mc.body_ratio(norms) == 4.0
    assert mc.geometric_mean([1.0, 100.0]) == pytest.approx(10.0)


def test_residual_gradient_is_zero_mid_block_at_init():
    cfg = mc.DEPTH_NET.replace(conv=mc.depth_stack(6, True), batchnorm=True)
    model = build_model(cfg, torch.Generator().manual_seed(0)).train()
    g = torch.Generator().manual_seed(1)
    norms = mc.activation_grad_norms(model, torch.rand(8, 1, 28, 28, generator=g), torch.randint(0, 10, (8,), generator=g))
    assert norms["act3"] == 0.0 and norms["act5"] == 0.0  # the branch ends in a zero BN scale
    assert norms["act4"] > 0 and norms["act6"] > 0


# ---- the quick preset ----

@pytest.fixture(scope="module")
def results(quick_run):
    return quick_run("modern_cnn")


def test_quick_deep_convnets_learn_every_seed(results):
    # 10 seeds of the quick preset (150 iterations): DeepConvNet mean 0.875, worst 0.825; + BN 0.944, 0.934;
    # residual 0.935, 0.923
    assert min(per_seed(results, "deepconvnet")) >= 0.78
    assert min(per_seed(results, "deepconvnet-bn")) >= 0.92
    assert min(per_seed(results, "residual-deepconvnet-bn")) >= 0.91


def test_quick_depth_study_every_seed(results):
    # 10 seeds, 18 layers, 100 iterations: plain mean 0.123, worst (highest) 0.177; plain + BN mean 0.720,
    # worst 0.527; residual + BN mean 0.674, worst 0.464
    assert max(per_seed(results, mc.depth_id("plain", 18))) <= 0.25
    assert min(per_seed(results, mc.depth_id("plain + BN", 18))) >= 0.45
    assert min(per_seed(results, mc.depth_id("residual + BN", 18))) >= 0.4


def test_quick_init_gradient_flow_per_seed(results):
    # 10 seeds: residual + BN body ratio 0.776 .. 0.886 at 10 and 18 layers; plain + BN 9.89 .. 14.7 at 18;
    # plain 0.309 .. 0.719 at 18
    flow = results.extras["init_gradient_flow"]
    assert all(0.6 <= r <= 1.2 for d in ("10", "18") for r in flow["residual + BN"][d]["ratios"])
    assert min(flow["plain + BN"]["18"]["ratios"]) >= 7.0
    assert max(flow["plain"]["18"]["ratios"]) <= 0.85
