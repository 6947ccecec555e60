"""Section 3: the notes' worked examples (exact), and the quick preset's regression thresholds.

Thresholds from 10 seeds of the quick preset (`python -m repro run regularization --preset quick
--seeds 10`), per seed unless stated; the measured mean and worst case beside each.
"""
import pytest
import torch
import torch.nn.functional as F

from conftest import per_seed
from experiments.regularization import (L1, L1_ID, L2, L2_ID, PAPER_DROPOUT, PAPER_NONE, PROXIMAL_ID, always_zero_pixels,
                                        weight_shares)
from repro.config import TrialConfig
from repro.nets import build_mlp
from repro.optim import l1_penalty, l1_proximal_step, make_optimizer, split_decay_groups


# ---- the notes' worked examples ----

def _tiny_model(**changes):
    cfg = TrialConfig(widths=(5,), **changes)
    model = build_mlp(cfg, in_features=4, classes=3, generator=torch.Generator().manual_seed(0)).double()
    for module in model.modules():  # non-zero biases, so a decayed bias would show
        if isinstance(module, torch.nn.Linear):
            torch.nn.init.normal_(module.bias, generator=torch.Generator().manual_seed(1))
    return cfg, model


def _data_loss(model):
    x = torch.linspace(-1, 1, 8, dtype=torch.float64).view(2, 4)
    return F.cross_entropy(model(x), torch.tensor([0, 2]))


def test_l2_term_gradient_is_lambda_w():
    w = torch.randn(6, 7, dtype=torch.float64, generator=torch.Generator().manual_seed(2), requires_grad=True)
    (0.5 * L2 * (w ** 2).sum()).backward()
    assert torch.allclose(w.grad, L2 * w.detach(), rtol=0, atol=1e-15)


def test_one_sgd_step_with_weight_decay_is_w_minus_lr_times_g_plus_lambda_w():
    cfg, model = _tiny_model(weight_decay=L2, lr=0.01)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    _data_loss(model).backward()
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters()}
    make_optimizer(model, cfg).step()
    for name, p in model.named_parameters():
        decay = L2 * before[name] if name.endswith("weight") else 0.0   # biases are not penalised
        assert torch.allclose(p.detach(), before[name] - cfg.lr * (grads[name] + decay), rtol=0, atol=1e-15), name


def test_only_weight_matrices_are_penalised():
    _, model = _tiny_model()
    decay, no_decay = split_decay_groups(model)
    assert [p.shape for p in decay] == [torch.Size([5, 4]), torch.Size([3, 5])]
    assert [p.shape for p in no_decay] == [torch.Size([5]), torch.Size([3])]


def test_l1_term_gradient_is_lambda_sign_w():
    w = torch.tensor([[0.3, -0.2, 0.0], [-1e-9, 2.0, 1e-9]], dtype=torch.float64, requires_grad=True)
    l1_penalty([w], L1).backward()
    assert torch.equal(w.grad, L1 * torch.sign(w.detach()))   # including 0 where w is exactly 0


def test_proximal_step_sets_small_weights_exactly_to_zero():
    w = torch.tensor([0.5, -0.5, 0.004, -0.005, 0.0, 0.0051], dtype=torch.float64)
    l1_proximal_step([w], 0.005)
    assert torch.equal(w[2:5], torch.zeros(3, dtype=torch.float64))
    assert torch.allclose(w[[0, 1, 5]], torch.tensor([0.495, -0.495, 0.0001], dtype=torch.float64), rtol=0, atol=1e-15)


def test_weight_shares():
    w = torch.tensor([0.0, 0.0, 5e-4, -9e-4, 1e-3, -0.2, 0.3, 0.0])
    assert weight_shares(w) == {"near_zero": 5 / 8, "exact_zero": 3 / 8}


def test_always_zero_pixels():
    x = torch.tensor([[0.0, 0.5, 0.0, 0.0], [0.0, 0.0, 0.1, 0.0], [0.0, 0.0, 0.0, 0.0]])
    assert always_zero_pixels(x).tolist() == [True, False, False, True]


# ---- regression: the quick preset ----

@pytest.fixture(scope="module")
def results(quick_run):
    return quick_run("regularization")


def test_none_memorises_the_300_images(results):
    assert min(per_seed(results, "none", "final_train_acc")) >= 0.99  # mean 1.000, worst 1.000
    assert min(per_seed(results, "none", "gap")) >= 0.2               # mean 0.244, worst 0.227


def test_l2_keeps_train_accuracy_down_and_narrows_the_gap(results):
    assert max(per_seed(results, L2_ID, "final_train_acc")) <= 0.97   # mean 0.877, worst (highest) 0.923
    narrowing = [n - l for n, l in zip(per_seed(results, "none", "gap"), per_seed(results, L2_ID, "gap"))]
    assert min(narrowing) >= 0.01                                             # mean 0.068, worst 0.035


def test_dropout_narrows_the_gap_by_slowing_the_fit(results):
    none_gap, none_test = per_seed(results, "none", "gap"), per_seed(results, "none")
    best = [max(n - g for g in seed_gaps) for n, *seed_gaps in
            zip(none_gap, *(per_seed(results, f"dropout-{d:g}", "gap") for d in (0.2, 0.3)))]
    assert min(best) >= 0.04                      # best p per seed: mean 0.122, worst 0.068
    # ... while test accuracy falls: dropout 0.2 minus none, mean -0.097, worst (highest) -0.068
    assert max(d - n for d, n in zip(per_seed(results, "dropout-0.2"), none_test)) <= -0.02


def test_dropout_paper_gain(results):
    gains = [d - n for d, n in zip(per_seed(results, PAPER_DROPOUT), per_seed(results, PAPER_NONE))]
    assert min(gains) >= 0.005   # per seed: mean 0.013, worst 0.009


def test_l1_sparsity_and_exact_zeros(results):
    weights = results.extras["weights"]
    assert min(s["near_zero"] for s in weights[L1_ID]["per_seed"]) >= 0.35         # mean 0.452, worst 0.449
    assert max(s["near_zero"] for s in weights[L2_ID]["per_seed"]) <= 0.06         # mean 0.028, worst 0.029
    assert min(s["exact_zero"] for s in weights[PROXIMAL_ID]["per_seed"]) >= 0.3   # mean 0.404, worst 0.383
    assert all(s["exact_zero"] == 0 for vid in ("none", L2_ID, L1_ID) for s in weights[vid]["per_seed"])
