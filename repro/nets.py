"""Network builders from a TrialConfig, with layers named in network order (fc1, fc2, ...).

Inits follow the references: "xavier" is N(0, 1/n_in) and "he" N(0, 2/n_in) on every layer,
including the output; "glorot" is torch's xavier_normal_ (2/(n_in+n_out)); biases start at zero.
PyTorch's own default layer init differs, so every layer is re-initialised explicitly
(init "default" keeps torch's, for comparison).
"""
from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from .config import TrialConfig

ACTIVATION_MODULES = {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU}


def init_weight(weight: torch.Tensor, scheme: str, generator: torch.Generator | None = None) -> None:
    """Initialise one weight tensor in place by a named scheme, through torch.nn.init."""
    kind, _, arg = scheme.partition(":")
    if kind == "zeros":
        nn.init.zeros_(weight)
    elif kind == "constant":
        nn.init.constant_(weight, float(arg))
    elif kind == "normal":
        nn.init.normal_(weight, 0.0, float(arg), generator=generator)
    elif kind == "xavier":  # N(0, 1/fan_in): kaiming's rule with the linear gain
        nn.init.kaiming_normal_(weight, nonlinearity="linear", generator=generator)
    elif kind == "he":      # N(0, 2/fan_in)
        nn.init.kaiming_normal_(weight, nonlinearity="relu", generator=generator)
    elif kind == "glorot":
        nn.init.xavier_normal_(weight, generator=generator)
    else:
        raise ValueError(f"unknown init scheme '{scheme}'")


def init_variance(scheme: str, fan_in: int, fan_out: int) -> float:
    """The variance of one weight under ``scheme`` (what variance-propagation theory needs)."""
    kind, _, arg = scheme.partition(":")
    if kind in ("zeros", "constant"):
        return 0.0
    if kind == "normal":
        return float(arg) ** 2
    if kind == "xavier":
        return 1.0 / fan_in
    if kind == "he":
        return 2.0 / fan_in
    if kind == "glorot":
        return 2.0 / (fan_in + fan_out)
    raise ValueError(f"unknown init scheme '{scheme}'")


def init_model(model: nn.Module, scheme: str, generator: torch.Generator | None = None) -> None:
    if scheme == "default":
        return
    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            init_weight(module.weight, scheme, generator)
            if module.bias is not None:
                nn.init.zeros_(module.bias)


def build_mlp(cfg: TrialConfig, in_features: int = 784, classes: int = 10,
              generator: torch.Generator | None = None) -> nn.Sequential:
    """in -> [fc -> (bn) -> act -> (dropout)] per hidden width -> fc out, named fc1.. bn1.. act1.. drop1.."""
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    if cfg.input_dropout:
        layers["drop0"] = nn.Dropout(cfg.input_dropout)
    width_in = in_features
    for k, width in enumerate(cfg.widths, start=1):
        # With BN the linear bias is redundant (BN's shift replaces it) but kept, as the book does.
        layers[f"fc{k}"] = nn.Linear(width_in, width)
        if cfg.batchnorm:
            layers[f"bn{k}"] = nn.BatchNorm1d(width, eps=cfg.bn_eps, affine=cfg.bn_affine)
        layers[f"act{k}"] = ACTIVATION_MODULES[cfg.activation]()
        if cfg.dropout:
            layers[f"drop{k}"] = nn.Dropout(cfg.dropout)
        width_in = width
    layers[f"fc{len(cfg.widths) + 1}"] = nn.Linear(width_in, classes)
    model = nn.Sequential(layers)
    init_model(model, cfg.init, generator)
    return model


def weighted_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Layers with a weight matrix or kernel, in network order: the rows of the gradient-flow chart."""
    return [(name, m) for name, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))]


def activation_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    kinds = tuple(ACTIVATION_MODULES.values())
    return [(name, m) for name, m in model.named_modules() if isinstance(m, kinds)]


def build_model(cfg: TrialConfig, generator: torch.Generator | None = None) -> nn.Module:
    """The network a config names; MLPs take flat images."""
    if cfg.model == "mlp":
        return build_mlp(cfg, generator=generator)
    raise ValueError(f"unknown model '{cfg.model}'")


def takes_flat_input(cfg: TrialConfig) -> bool:
    return cfg.model == "mlp"
