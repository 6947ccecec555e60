"""What happens inside the network: per-layer gradient norms and activation statistics.

Everything stays on the device; the training loop reads it back only at its logging points, so
probing adds no host synchronisation to the step.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .nets import activation_layers, weighted_layers

# An output within this distance of its activation's asymptote sits in the flat tail (sigmoid
# below 0.05 or above 0.95, tanh beyond |0.95|), where the derivative is under about 0.05.
SATURATION_MARGIN = 0.05
# ELU's lower tail: its derivative there is y + 1, under 0.05 exactly where y is within the margin of -1
ASYMPTOTES = {"sigmoid": (0.0, 1.0), "tanh": (-1.0, 1.0), "softsign": (-1.0, 1.0), "elu": (-1.0, math.inf)}
# GELU and SiLU approach their asymptote 0 from below, a value they also pass through at x = 0, so
# their tail is read off the input: below these, the output is within the margin of 0 (GELU(x) = -0.05
# at x = -1.9489, SiLU(x) = -0.05 at x = -4.4853; tests/test_components.py checks both).
TAIL_BELOW = {"gelu": -1.9489, "silu": -4.4853}
# "dead" is ReLU's exact 0, where no gradient passes. The other activations have none: LeakyReLU keeps
# slope 0.01 below 0 (its point), ELU, GELU and SiLU a derivative that only tends to 0 (their tails
# count as saturated). A user's activation has neither statistic: its shape is unknown here.
# The 15th, 50th and 85th percentiles of one unit's input (Ioffe & Szegedy's Fig. 1b, c): unit 0 of each layer.
UNIT_QUANTILES = (0.15, 0.5, 0.85)


def activation_stats(y: torch.Tensor, activation: str, pre: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Mean, sd, share saturated (in a flat tail, by ASYMPTOTES or, given the inputs ``pre``, TAIL_BELOW)
    and share dead (ReLU exactly 0) of outputs ``y``."""
    y = y.detach().float()
    stats = {"mean": y.mean(), "std": y.std(), "saturated": torch.zeros((), device=y.device),
             "dead": torch.zeros((), device=y.device)}
    if activation in ASYMPTOTES:
        low, high = ASYMPTOTES[activation]
        stats["saturated"] = ((y < low + SATURATION_MARGIN) | (y > high - SATURATION_MARGIN)).float().mean()
    if activation in TAIL_BELOW and pre is not None:
        stats["saturated"] = (pre < TAIL_BELOW[activation]).float().mean()
    if activation == "relu":
        stats["dead"] = (y == 0).float().mean()
    return stats


class GradNormProbe:
    """Per-layer weight-gradient norms and the total norm for every step.

    Call ``record(step)`` after backward and before the optimiser step (and any clipping). A step
    stores only each parameter's norm (one fused kernel and one copy into a device buffer); the
    per-layer table with its total column is assembled when read, at evaluation points."""

    def __init__(self, model: nn.Module, steps: int):
        self.layers = [name for name, _ in weighted_layers(model)]
        self.params = [p for p in model.parameters() if p.requires_grad]
        ids = {id(p): i for i, p in enumerate(self.params)}
        device = self.params[0].device
        self.weight_index = torch.tensor([ids[id(m.weight)] for _, m in weighted_layers(model)], device=device)
        self.param_norms = torch.zeros(steps, len(self.params), device=device)

    def record(self, step: int) -> None:
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in self.params]
        torch.stack(torch._foreach_norm(grads), out=self.param_norms[step])

    def rows(self, start: int = 0, stop: int | None = None) -> torch.Tensor:
        """Steps [start, stop) x (weighted layers..., total): total = norm over every parameter."""
        norms = self.param_norms[start:stop]
        return torch.cat([norms[:, self.weight_index], torch.linalg.vector_norm(norms, dim=1, keepdim=True)], 1)

    @property
    def buffer(self) -> torch.Tensor:
        return self.rows()


class ActivationProbe:
    """Forward hooks on every activation module, recording statistics of its input and output."""

    def __init__(self, model: nn.Module, activation: str, layer_outputs: bool = False):
        self.activation = activation
        self.captured: dict[str, dict[str, torch.Tensor]] = {}
        self.layer_outputs: dict[str, dict[str, torch.Tensor]] = {}
        # Statistics are named after the activation module (act3 follows fc3 or conv3).
        self.handles = [m.register_forward_hook(self._hook(name)) for name, m in activation_layers(model)]
        if layer_outputs:  # a weighted layer's own output: where BN follows, the input BN normalises
            self.handles += [m.register_forward_hook(self._output_hook(name)) for name, m in weighted_layers(model)]

    def _hook(self, name):
        def hook(module, inputs, output):
            if module.training:  # only eval-mode probe passes are read; this kept ~20% off every step
                return
            pre = inputs[0].detach().float()
            stats = activation_stats(output, self.activation, pre)
            stats["preact_mean"], stats["preact_std"] = pre.mean(), pre.std()
            unit = pre[:, 0].flatten()  # one unit of an MLP layer, one channel of a conv layer
            quantiles = torch.quantile(unit, torch.tensor(UNIT_QUANTILES, device=unit.device))
            for q, value in zip(UNIT_QUANTILES, quantiles):
                stats[f"unit0_q{round(100 * q)}"] = value
            self.captured[name] = stats
        return hook

    def _output_hook(self, name):
        def hook(module, inputs, output):
            if not module.training:  # only eval-mode passes are ever read; training steps stay free of it
                out = output.detach().float()
                self.layer_outputs[name] = {"mean": out.mean(), "std": out.std()}
        return hook

    def close(self) -> None:
        for h in self.handles:
            h.remove()
