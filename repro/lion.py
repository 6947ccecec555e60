"""Lion (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms", Algorithm 2), which
torch.optim lacks. Each step, per parameter with gradient g and momentum m:

    c = beta1 * m + (1 - beta1) * g              the update's direction: only its sign is used
    theta <- theta - lr * (sign(c) + wd * theta)    every coordinate moves by exactly lr (plus decay)
    m <- beta2 * m + (1 - beta2) * g

The paper's defaults are beta1 = 0.9, beta2 = 0.99 and a learning rate 3-10x smaller than AdamW's
(the sign gives every coordinate a step of norm 1); its weight decay is decoupled, as AdamW's.
"""
from __future__ import annotations

import torch


class Lion(torch.optim.Optimizer):
    def __init__(self, params, lr: float = 1e-4, betas: tuple[float, float] = (0.9, 0.99),
                 weight_decay: float = 0.0):
        if lr <= 0:
            raise ValueError(f"Lion: lr must be positive, got {lr}")
        if not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"Lion: betas must be in [0, 1), got {betas}")
        super().__init__(params, {"lr": lr, "betas": betas, "weight_decay": weight_decay})

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, (beta1, beta2), decay = group["lr"], group["betas"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["exp_avg"] = torch.zeros_like(p)
                m = state["exp_avg"]
                direction = torch.lerp(p.grad, m, beta1).sign_()   # lerp(g, m, b1) = b1 m + (1 - b1) g
                if decay:
                    p.mul_(1.0 - lr * decay)
                p.add_(direction, alpha=-lr)
                m.lerp_(p.grad, 1.0 - beta2)                        # m + (1 - b2)(g - m)
        return loss
