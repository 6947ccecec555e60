"""Pure measurements for the audit (experiments/claims_audit.py): the notes' definitions and worked
examples as exact checks (each returns a largest error against the notes' formula, 0 up to float
rounding, or a value the notes describe), and what is measured on trained networks.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from repro.config import TrialConfig
from repro.nets import init_weight
from repro.optim import l1_penalty, make_optimizer


WINDOW_TOLERANCE = 0.10   # the learning-rate window: rates within 10% of the best final loss


def sigmoid_slope(x: float) -> float:
    """sigmoid'(x) by autograd: how little the output changes for a large input."""
    t = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    torch.sigmoid(t).backward()
    return float(t.grad)


def init_sd_ratio(scheme: str, fan_in: int = 784, fan_out: int = 1000) -> float:
    """The sd of a weight matrix initialised by ``scheme``, in units of 1/sqrt(fan_in)."""
    w = torch.empty(fan_out, fan_in)
    init_weight(w, scheme, torch.Generator().manual_seed(0))
    return float(w.std() * math.sqrt(fan_in))


def batchnorm_formula_error(batch: int = 32, features: int = 8) -> float:
    """nn.BatchNorm1d in training mode against (x - batch mean) / sqrt(batch variance + eps) * gamma + beta."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, features, generator=g, dtype=torch.float64) * 3 + 1
    bn = nn.BatchNorm1d(features).double().train()
    with torch.no_grad():
        bn.weight.uniform_(0.5, 2.0, generator=g)
        bn.bias.normal_(generator=g)
    expected = (x - x.mean(0)) / torch.sqrt(x.var(0, unbiased=False) + bn.eps) * bn.weight + bn.bias
    return float((bn(x) - expected).detach().abs().max())


def minibatch_loop(n: int = 1050, batch_size: int = 100) -> dict:
    """The notes' loop, for i in range(0, N, batch_size): slice [i, i + batch_size). How many samples are
    not visited exactly once, and the size of the last batch."""
    seen = torch.zeros(n, dtype=torch.long)
    sizes = []
    for i in range(0, n, batch_size):
        index = torch.arange(n)[i:i + batch_size]
        seen[index] += 1
        sizes.append(len(index))
    return {"not_once": int((seen != 1).sum()), "last_batch": sizes[-1], "expected_last": n % batch_size or batch_size}


def regularisation_gradients(lam: float = 0.1, lr: float = 0.01) -> dict:
    """The notes' L1/L2 worked examples on a random weight matrix with some exact zeros: largest error of
    d/dW 0.5*lam*sum W^2 against lam*W, of d/dW lam*sum|W| against lam*sign(W), of lam*sum|W| against
    lam*||W||_1, and of one SGD step with weight decay against W - lr*(g + lam*W)."""
    g = torch.Generator().manual_seed(0)
    w = torch.randn(20, 30, generator=g, dtype=torch.float64)
    w[w.abs() < 0.1] = 0.0
    w.requires_grad_(True)
    (0.5 * lam * w.square().sum()).backward()
    l2 = float((w.grad - lam * w.detach()).abs().max())
    w.grad = None
    l1_penalty([w], lam).backward()
    l1 = float((w.grad - lam * torch.sign(w.detach())).abs().max())
    norm = abs(float(l1_penalty([w.detach()], lam)) - lam * float(torch.linalg.vector_norm(w.detach(), 1)))
    layer = nn.Linear(30, 20).double()
    with torch.no_grad():
        layer.weight.copy_(w)
    start, grad = layer.weight.detach().clone(), torch.randn(20, 30, generator=g, dtype=torch.float64)
    opt = make_optimizer(layer, TrialConfig(optimizer="sgd", lr=lr, weight_decay=lam))
    layer.weight.grad, layer.bias.grad = grad.clone(), torch.zeros(20, dtype=torch.float64)
    opt.step()
    step = float((layer.weight.detach() - (start - lr * (grad + lam * start))).abs().max())
    return {"l2_gradient": l2, "l1_gradient": l1, "l1_norm": norm, "l2_step": step}


def exact_checks() -> dict:
    return {"sigmoid_slope_5": sigmoid_slope(5.0), "sigmoid_slope_0": sigmoid_slope(0.0),
            "xavier_sd": init_sd_ratio("xavier"), "he_sd": init_sd_ratio("he"),
            "batchnorm_formula": batchnorm_formula_error(), "minibatch_loop": minibatch_loop(),
            **regularisation_gradients()}


# ---- measured on trained networks ----

@torch.no_grad()
def hidden_activations(model: torch.nn.Sequential, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Each hidden activation layer's output (eval mode) for inputs x."""
    model.eval()
    out = {}
    for name, module in model.named_children():
        x = module(x)
        if name.startswith("act"):
            out[name] = x
    return out


def zero_shares(acts: dict[str, torch.Tensor], near: float = 0.01) -> dict:
    """Per layer: the share of activations exactly 0, and within ``near`` of 0."""
    return {"exact": [float((a == 0).float().mean()) for a in acts.values()],
            "near": [float((a.abs() < near).float().mean()) for a in acts.values()]}


@torch.no_grad()
def dropout_ensemble(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, samples: int, seed: int) -> dict:
    """Eval-mode (scaled) accuracy; the accuracy of averaging the softmax over 1..samples sampled masks
    (train mode: dropout on, no BN in this net); a single mask's mean accuracy; agreement of the
    averaged and the scaled net's predictions; and the share of hidden units one mask drops."""
    model.eval()
    scaled = model(x).argmax(1)
    model.train()
    torch.manual_seed(seed)
    total, curve, single = torch.zeros(len(x), 10), [], []
    for _ in range(samples):
        prob = torch.softmax(model(x), 1)
        total += prob
        single.append(float((prob.argmax(1) == y).float().mean()))
        curve.append(float((total.argmax(1) == y).float().mean()))
    drop = next(m for m in model.modules() if isinstance(m, torch.nn.Dropout))
    dropped = float((drop(torch.ones(100_000)) == 0).float().mean())
    model.eval()
    return {"eval_acc": float((scaled == y).float().mean()), "mc_acc": curve[-1], "curve": curve,
            "single_acc": float(np.mean(single)), "agreement": float((total.argmax(1) == scaled).float().mean()),
            "dropped": dropped}


def lr_window(losses: dict[float, float | None], tolerance: float = WINDOW_TOLERANCE) -> dict:
    """losses: rate -> final loss (None: diverged). The best rate, and the window around it of rates whose
    loss is within ``tolerance`` of the best, its edges interpolated linearly in log(rate) between grid
    rates (a diverged neighbour ends it at the last good rate); width = largest / smallest rate in it."""
    rates = sorted(losses)
    logs = np.log(rates)
    loss = np.array([math.inf if losses[r] is None else losses[r] for r in rates])
    best = int(np.argmin(loss))
    limit = loss[best] * (1 + tolerance)

    def edge(step: int) -> float:
        i = best
        while 0 <= i + step < len(rates) and loss[i + step] <= limit:
            i += step
        j = i + step
        if not 0 <= j < len(rates) or not math.isfinite(loss[j]):
            return logs[i]
        return logs[i] + (logs[j] - logs[i]) * (limit - loss[i]) / (loss[j] - loss[i])

    low, high = edge(-1), edge(1)
    finite = loss[np.isfinite(loss)]
    return {"best_lr": rates[best], "best_loss": float(loss[best]), "window": [math.exp(low), math.exp(high)],
            "width": math.exp(high - low), "spread": float(finite.max() / loss[best])}
