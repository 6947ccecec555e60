"""Optimisers over torch.optim, L2 as parameter groups, L1 as a penalty or a proximal step.

Where the reference NumPy code differs from torch.optim (AdaGrad eps 1e-7 vs 1e-10, RMSProp eps 1e-7
vs 1e-8, Adam's folded bias correction) we keep torch.optim and record the difference; set
``eps`` to match the book where it matters.
"""
from __future__ import annotations

import functools
import math

import torch
from torch import nn

from .components import resolve
from .config import TrialConfig


def split_decay_groups(model: nn.Module) -> tuple[list, list]:
    """Weight matrices and kernels (penalised) vs biases and BN parameters (never penalised)."""
    decay, no_decay = [], []
    for module in model.modules():
        for name, param in module.named_parameters(recurse=False):
            is_weight_matrix = name == "weight" and isinstance(module, (nn.Linear, nn.Conv2d))
            (decay if is_weight_matrix else no_decay).append(param)
    return decay, no_decay


def make_optimizer(model: nn.Module, cfg: TrialConfig) -> torch.optim.Optimizer:
    # L2 through torch.optim's weight_decay on the weight group only: it adds lambda*W to the
    # gradient, exactly the gradient of the book's 0.5*lambda*sum(W^2) (biases excluded).
    decay, no_decay = split_decay_groups(model)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    return build_optimizer(groups, cfg)


def build_optimizer(params, cfg: TrialConfig) -> torch.optim.Optimizer:
    """cfg's optimiser over ``params`` (tensors or parameter groups): a built-in of
    repro.components.OPTIMIZERS with cfg's settings, or the user's class with the params and lr."""
    component = resolve("optimizer", cfg.optimizer)
    if not component.builtin:
        return component.impl(params, lr=cfg.lr)
    spec = component.impl
    if spec.kernel == "fused":
        return _fused_if_available(spec.cls, params, lr=cfg.lr, **spec.options(cfg))
    if spec.kernel == "foreach":
        return spec.cls(params, lr=cfg.lr, foreach=True, **spec.options(cfg))
    return spec.cls(params, lr=cfg.lr, **spec.options(cfg))


def _fused_if_available(cls, params, **kwargs) -> torch.optim.Optimizer:
    """The fused kernel (one launch for every parameter) where the device has one, else foreach.

    torch.optim picks foreach only on CUDA and a Python loop over parameters on CPU. On the book
    network (10 parameters) one CPU step took: Adam 907 us looped, 734 foreach, 275 fused; AdaGrad
    543 / 476 / 179; Momentum 299 / 259 / 136 (python -m repro bench measures the loop)."""
    params = list(params)
    first = next(t for group in params for t in (group["params"] if isinstance(group, dict) else [group]))
    fused = has_fused_step(cls, first.device, first.dtype)
    return cls(params, fused=True, **kwargs) if fused else cls(params, foreach=True, **kwargs)


@functools.cache
def has_fused_step(cls, device: torch.device, dtype: torch.dtype) -> bool:
    """Whether ``cls(fused=True)`` can step parameters of this device and dtype, found by stepping a
    one-element probe. Asking torch's list of fused devices is not enough: the constructor accepts
    fused=True and the check comes at the first step, which is also where a kernel missing for one
    optimiser on one device (torch <= 2.11 has no fused AdaGrad on CUDA) raises."""
    probe = torch.zeros(1, device=device, dtype=dtype, requires_grad=True)
    probe.grad = torch.ones_like(probe)
    try:
        cls([probe], lr=1e-3, fused=True).step()
    except (RuntimeError, TypeError):  # NotImplementedError (no kernel) is a RuntimeError; TypeError:
        return False                     # a torch whose optimiser takes no fused argument
    return True


def lr_factor(cfg: TrialConfig, t: int) -> float:
    """The multiplier of cfg.lr at step t = 1, 2, ... under the LambdaLR schedules.

    inv-sqrt: 1/sqrt(t) (Kingma & Ba's logistic regression). bias_correction=false: torch's Adam
    always corrects, so the factor (1 - beta1^t)/sqrt(1 - beta2^t) undoes it: lr/(1-b1^t) * m /
    (sqrt(v/(1-b2^t)) + eps) times that factor is lr * m / (sqrt(v) + eps*sqrt(1-b2^t)), the
    uncorrected update with eps scaled by at most 1 (tests/test_paper_tools.py checks it)."""
    factor = 1.0 / math.sqrt(t) if cfg.schedule == "inv-sqrt" else 1.0
    if not cfg.bias_correction and cfg.optimizer == "adam":
        factor *= (1.0 - cfg.beta1 ** t) / math.sqrt(1.0 - cfg.beta2 ** t)
    return factor


def make_scheduler(optimizer: torch.optim.Optimizer, cfg: TrialConfig):
    if cfg.schedule == "inv-sqrt" or (not cfg.bias_correction and cfg.optimizer == "adam"):
        # LambdaLR's lambda gets the number of scheduler steps taken (0 first): step t = that + 1
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda done: lr_factor(cfg, done + 1))
    if cfg.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.iters)
    if cfg.schedule == "step":  # divide by 10 at half and at three quarters of training
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, [cfg.iters // 2, 3 * cfg.iters // 4], 0.1)
    return None


def l1_penalty(weights: list[torch.Tensor], l1: float) -> torch.Tensor:
    """lambda * sum |W|: autograd gives lambda*sign(W) (0 at exactly 0), the subgradient method."""
    return l1 * torch.stack([w.abs().sum() for w in weights]).sum()


@torch.no_grad()
def l1_proximal_step(weights: list[torch.Tensor], threshold: float) -> None:
    """Soft-thresholding, the proximal operator of threshold*|w|: weights within it become exactly 0."""
    for w in weights:
        w.copy_(torch.sign(w) * torch.clamp(w.abs() - threshold, min=0.0))


@torch.no_grad()
def max_norm_step(weights: list[torch.Tensor], max_norm: float) -> None:
    """Srivastava et al.'s max-norm: every unit's incoming weight vector (a row of a linear layer's
    weight, a filter of a conv) rescaled onto the ball of radius max_norm if it left it."""
    for w in weights:
        w.renorm_(2, 0, max_norm)
