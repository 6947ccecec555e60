"""Toy loss surfaces for the audit of Section 2's statements (experiments/claims_audit.py), on torch.optim.

Every run is torch.optim (repro.optim.build_optimizer) on float64 coordinates; a grid of
hyperparameters runs as one optimiser with one parameter group per cell, so all cells start from
the same point and step together.

- double_well(x) = x^4/4 - x^3/3 - x^2, f'(x) = x (x + 1) (x - 2): a shallow local minimum at
  x = -1 (f = -5/12), a barrier at x = 0 (f = 0) and the global minimum at x = 2 (f = -8/3). From
  x = -2 a descent meets the local minimum first: which basin does each optimiser end in?
- the valley x^2/20 + y^2 (experiments.optimizers.valley) from the book's (-7, 2): iterations until
  f < 1e-3 at each optimiser's best learning rate (and momentum) on the grid.
- saddle(x, y) = x^2 - y^2 from (3, 1e-3): x is pulled in, y pushed out; escaped once f < -1. The
  rotated saddle 2uv is the same surface turned 45 degrees, so that each coordinate carries both
  directions: the squared gradients AdaGrad accumulates on the approach also damp the escape.
"""
from __future__ import annotations

import math

import torch

from experiments.optimizers import valley
from repro.config import TrialConfig
from repro.optim import build_optimizer

LOCAL_MIN, BARRIER, GLOBAL_MIN, WELL_START = -1.0, 0.0, 2.0, -2.0
VALLEY_START, VALLEY_TARGET = (-7.0, 2.0), 1e-3
SADDLE_START, ESCAPED = (3.0, 1e-3), -1.0
LR_GRID = tuple(round(10 ** (k / 4), 4) for k in range(-8, 3))   # 0.01 ... 3.16, four per decade
MOMENTA = (0.3, 0.5, 0.7, 0.9, 0.95)
OPTIMIZERS = ("sgd", "momentum", "adagrad", "rmsprop", "adam")
LABELS = {"sgd": "SGD", "momentum": "Momentum", "adagrad": "AdaGrad", "rmsprop": "RMSProp", "adam": "Adam"}


def double_well(x: torch.Tensor) -> torch.Tensor:
    return x ** 4 / 4 - x ** 3 / 3 - x ** 2


def saddle(xy: torch.Tensor) -> torch.Tensor:
    return xy[..., 0] ** 2 - xy[..., 1] ** 2


def rotated_saddle(uv: torch.Tensor) -> torch.Tensor:
    """x'^2 - y'^2 with x' = (u + v)/sqrt(2), y' = (u - v)/sqrt(2): the saddle turned by 45 degrees."""
    return 2 * uv[..., 0] * uv[..., 1]


def rotate(point) -> tuple[float, float]:
    """A point given in the saddle's own axes (x', y'), in the rotated saddle's coordinates (u, v)."""
    a, b = point
    return ((a + b) / math.sqrt(2), (a - b) / math.sqrt(2))


def cells(optimizer: str, lrs=LR_GRID, momenta=MOMENTA) -> list[dict]:
    """Hyperparameter cells of a grid: (lr, momentum) for Momentum, lr alone for the others."""
    if optimizer == "momentum":
        return [{"lr": lr, "momentum": m} for lr in lrs for m in momenta]
    return [{"lr": lr} for lr in lrs]


def descend(f, optimizer: str, hyper: list[dict], start, steps: int) -> torch.Tensor:
    """Positions (steps + 1, len(hyper), *start's shape) that torch.optim visits minimising f from
    ``start``, one independent copy per cell of ``hyper`` (its own parameter group)."""
    start = torch.as_tensor(start, dtype=torch.float64)
    params = [start.clone().requires_grad_(True) for _ in hyper]
    opt = build_optimizer([{"params": [p], **h} for p, h in zip(params, hyper)],
                          TrialConfig(optimizer=optimizer, lr=hyper[0]["lr"]))
    path = torch.empty(steps + 1, len(hyper), *start.shape, dtype=torch.float64)
    path[0] = start
    for t in range(steps):
        opt.zero_grad()
        f(torch.stack(params)).sum().backward()
        opt.step()
        with torch.no_grad():
            path[t + 1] = torch.stack(params)
    return path


def first_below(values: torch.Tensor, level: float) -> list[int | None]:
    """Per column of ``values`` (steps + 1, n): the first step whose value is below ``level``."""
    hit = values < level
    return [int(col.nonzero()[0]) if col.any() else None for col in hit.T]


def settled_below(values: torch.Tensor, level: float) -> list[int | None]:
    """Per column of ``values`` (steps + 1, n): the step from which every later value stays below
    ``level`` (a swing back above it does not count as arrived); None if the last one is not below."""
    above = torch.cat([torch.ones_like(values[:1], dtype=torch.bool), ~(values < level)])
    last = len(above) - 1 - above.flip(0).int().argmax(0)     # last index still above, in the padded rows
    return [int(k) if k < len(values) else None for k in last.tolist()]


def basin(x: float) -> str:
    if not math.isfinite(x) or abs(x) > 100:
        return "diverged"
    return "global" if x > BARRIER else "local"


def well_study(steps: int) -> dict:
    """Each optimiser's cells from x = -2 and the basin each ends in, with the shares per basin."""
    out = {}
    for opt in OPTIMIZERS:
        hyper = cells(opt)
        final = descend(double_well, opt, hyper, WELL_START, steps)[-1].tolist()
        ends = [basin(x) for x in final]
        out[opt] = {"cells": [{**h, "basin": b} for h, b in zip(hyper, ends)],
                    **{f"share_{b}": ends.count(b) / len(ends) for b in ("global", "local", "diverged")}}
    return out


def valley_study(steps: int) -> dict:
    """Iterations to f < 1e-3 on the valley for every cell; each optimiser's best cell."""
    out = {}
    for opt in OPTIMIZERS:
        hyper = cells(opt)
        reached = settled_below(valley(descend(valley, opt, hyper, VALLEY_START, steps)), VALLEY_TARGET)
        rows = [{**h, "iterations": n} for h, n in zip(hyper, reached)]
        done = [r for r in rows if r["iterations"] is not None]
        out[opt] = {"cells": rows, "best": min(done, key=lambda r: r["iterations"]) if done else None}
    m09 = [r for r in out["momentum"]["cells"] if r["momentum"] == 0.9 and r["iterations"] is not None]
    out["momentum_0.9_best"] = min(m09, key=lambda r: r["iterations"]) if m09 else None
    return out


def saddle_study(best: dict, steps: int) -> dict:
    """Iterations to escape (f < -1) from near the saddle, plain and rotated, at each optimiser's best
    valley cell; None when it never escapes within ``steps``."""
    out = {}
    for name, f, start in (("axis", saddle, SADDLE_START), ("rotated", rotated_saddle, rotate(SADDLE_START))):
        out[name] = {}
        for opt in OPTIMIZERS:
            hyper = {k: v for k, v in best[opt].items() if k != "iterations"}
            out[name][opt] = first_below(f(descend(f, opt, [hyper], start, steps)), ESCAPED)[0]
    return out


def effective_lr(f, path: torch.Tensor) -> torch.Tensor:
    """|step| / |gradient| per coordinate at every step of one path (steps + 1, dim): the learning rate
    an optimiser actually applied, read off its moves (for SGD it is lr, exactly)."""
    x = path[:-1].clone().requires_grad_(True)
    f(x).sum().backward()
    return (path[1:] - path[:-1]).abs() / x.grad.abs()


def adagrad_shrink(lr: float, steps: int) -> dict:
    """AdaGrad's and RMSProp's effective rates along the valley's gentle x direction, at the same lr."""
    out = {}
    for opt in ("adagrad", "rmsprop"):
        rate = effective_lr(valley, descend(valley, opt, [{"lr": lr}], VALLEY_START, steps)[:, 0])[:, 0]
        out[opt] = rate.tolist()
    return out


def rule_residuals(lr: float = 0.1, steps: int = 20, momentum: float = 0.9, alpha: float = 0.99,
                   betas=(0.9, 0.999)) -> dict:
    """Largest gap between torch.optim's moves on the valley and each update rule as the notes put it:
    SGD subtracts lr x gradient; Momentum also adds inertia x (current - previous weights); AdaGrad and
    RMSProp divide lr by the root of a running sum / decaying mean of squared gradients; Adam divides a
    decaying mean of gradients (bias-corrected) by the root of a decaying mean of their squares."""
    out = {}
    for opt in OPTIMIZERS:
        hyper = {"lr": lr, **({"momentum": momentum} if opt == "momentum" else {})}
        path = descend(valley, opt, [hyper], VALLEY_START, steps)[:, 0]
        x = path[:-1].clone().requires_grad_(True)
        valley(x).sum().backward()
        g, move = x.grad, path[1:] - path[:-1]
        t = torch.arange(1, steps + 1, dtype=torch.float64)[:, None]
        lag = t - t.T   # [t, s] = t - s: the age of gradient s at step t
        if opt == "sgd":
            rule = -lr * g
        elif opt == "momentum":
            rule = -lr * g + momentum * torch.cat([torch.zeros_like(move[:1]), move[:-1]])
        elif opt == "adagrad":
            rule = -lr * g / (g.square().cumsum(0).sqrt() + 1e-10)
        else:
            decay = alpha if opt == "rmsprop" else betas[1]
            second = torch.tril((1 - decay) * decay ** lag) @ g.square()   # decaying mean of squared gradients
            if opt == "rmsprop":
                rule = -lr * g / (second.sqrt() + 1e-8)
            else:
                first = torch.tril((1 - betas[0]) * betas[0] ** lag) @ g / (1 - betas[0] ** t)
                rule = -lr * first / ((second / (1 - betas[1] ** t)).sqrt() + 1e-8)
        out[opt] = float((move - rule).abs().max())
    return out
