"""Network builders from a TrialConfig, with layers named in network order (fc1, fc2, ...).

Inits follow the references: "xavier" is N(0, 1/n_in) and "he" N(0, 2/n_in) on every layer,
including the output; "glorot" is torch's xavier_normal_ (2/(n_in+n_out)); Glorot & Bengio's own
uniform inits are "standard", U[-1/sqrt(n_in), 1/sqrt(n_in)], and "normalized", torch's
xavier_uniform_ (U[-sqrt(6/(n_in+n_out)), +sqrt(6/(n_in+n_out))]); "sparse:k" is Martens' (2010)
sparse init that Sutskever et al. use: each unit gets k incoming weights from N(0, 1), the rest 0;
"orthogonal" is torch's orthogonal_ (Saxe et al. 2014); biases start at zero.
PyTorch's own default layer init differs, so every layer is re-initialised explicitly
(init "default" keeps torch's, for comparison). The names, and the other components a network is
built from (activations, normalisers), are repro/components.py's registries.
"""
from __future__ import annotations

import math
import re
from collections import OrderedDict

import torch
from torch import nn

# ACTIVATION_MODULES and init_variance are not used here: experiments import them from this module
from .components import ACTIVATION_MODULES, activation_module, init_variance, init_weight, norm_module  # noqa: F401
from .config import ConfigError, TrialConfig

# every builder names the k-th activation act<k>: the probes find them by it, whatever their class
ACTIVATION_NAME = re.compile(r"act\d+")


def init_model(model: nn.Module, scheme: str, generator: torch.Generator | None = None) -> None:
    if scheme == "default":
        return
    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            init_weight(module.weight, scheme, generator)
            if module.bias is not None:
                nn.init.zeros_(module.bias)


class BookDropout(nn.Dropout):
    """The book's dropout: survivors keep their value in training and every unit is scaled by 1 - p
    at test time. That is exactly (1 - p) times inverted dropout (nn.Dropout) in both modes."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x) * (1.0 - self.p)


def make_dropout(p: float, scaling: str) -> nn.Dropout:
    return BookDropout(p) if scaling == "book" else nn.Dropout(p)


def add_norm(layers: OrderedDict, cfg: TrialConfig, k: int, shape: tuple[int, ...]) -> nn.Module | None:
    """cfg's normaliser for the k-th weighted layer, whose output has ``shape``, as bn<k> (batch norm,
    the name it has always had) or norm<k>; None without one."""
    norm = norm_module(cfg.norm, shape, cfg.bn_eps, cfg.bn_affine)
    if norm is not None:
        layers[f"{'bn' if cfg.norm == 'batchnorm' else 'norm'}{k}"] = norm
    return norm


def build_mlp(cfg: TrialConfig, in_features: int = 784, classes: int = 10,
              generator: torch.Generator | None = None) -> nn.Sequential:
    """in -> [fc -> (norm) -> act -> (dropout)] per hidden width -> fc out, named fc1.. bn1.. act1.. drop1.."""
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    if cfg.input_dropout:
        layers["drop0"] = make_dropout(cfg.input_dropout, cfg.dropout_scaling)
    width_in = in_features
    for k, width in enumerate(cfg.widths, start=1):
        # With BN the linear bias is redundant (BN's shift replaces it) but kept, as the book does.
        layers[f"fc{k}"] = nn.Linear(width_in, width)
        add_norm(layers, cfg, k, (width,))
        layers[f"act{k}"] = activation_module(cfg.activation)
        if cfg.dropout:
            layers[f"drop{k}"] = make_dropout(cfg.dropout, cfg.dropout_scaling)
        width_in = width
    layers[f"fc{len(cfg.widths) + 1}"] = nn.Linear(width_in, classes)
    if cfg.output_dropout:
        layers[f"drop{len(cfg.widths) + 1}"] = make_dropout(cfg.output_dropout, cfg.dropout_scaling)
    model = nn.Sequential(layers)
    init_model(model, cfg.init, generator)
    return model


def weighted_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Layers with a weight matrix or kernel, in network order: the rows of the gradient-flow chart."""
    return [(name, m) for name, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))]


def activation_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(name, m) for name, m in model.named_children() if ACTIVATION_NAME.fullmatch(name)]


def conv_output_size(size: int, kernel: int, stride: int = 1, padding: int = 0) -> int:
    """Output height (or width) of a convolution or pooling window: floor((H + 2P - FH) / S) + 1."""
    return (size + 2 * padding - kernel) // stride + 1


class ConvNet(nn.Module):
    """Layers registered flat and in network order (conv1, bn1, act1, pool1, ..., fc1, ...), so probes
    and TensorBoard tags name them exactly as in an MLP. A residual block is a span of these layers:
    ``shortcuts`` maps the block's last activation to its first conv, whose input is added back just
    before that activation (the identity shortcut, ReLU after the addition)."""

    def __init__(self, layers: OrderedDict, shortcuts: dict[str, str]):
        super().__init__()
        for name, module in layers.items():
            self.add_module(name, module)
        self.shortcuts = shortcuts
        self.block_starts = set(shortcuts.values())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        block_inputs = {}
        for name, module in self.named_children():
            if name in self.block_starts:
                block_inputs[name] = x
            if name in self.shortcuts:
                x = x + block_inputs.pop(self.shortcuts[name])
            x = module(x)
        return x


def build_convnet(cfg: TrialConfig, input_shape: tuple[int, ...] = (1, 28, 28), classes: int = 10,
                  generator: torch.Generator | None = None) -> ConvNet:
    """cfg.conv's stack -> flatten -> [fc -> (norm) -> act -> (dropout)] per cfg.widths -> fc out.

    Tokens of cfg.conv: "<c>[x<k>][p<p>]" is a k x k convolution (k 3 unless given) with c filters,
    stride 1, padding p (k // 2, "same", unless given), then cfg.norm (BN per channel; LayerNorm and
    RMSNorm over the layer's C x H x W) and the activation; "r<c>" a basic residual block (He et al.
    2016): two 3x3 convs of c filters, each followed by the norm, the identity added before the
    second activation, and the block's last norm scale initialised to zero so that the block starts
    as the identity; "pool" max-pooling 2x2 stride 2;
    "gap" global average pooling. bn<k> (norm<k>), act<k> and drop<k> belong to the k-th weighted layer."""
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    shortcuts, zero_scales, norms = {}, [], {}
    channels, height, width = input_shape
    k = 0

    def check_size(token: str) -> None:
        if height < 1 or width < 1:
            raise ConfigError(f"conv={','.join(cfg.conv)}: the {input_shape[1]}x{input_shape[2]} input "
                              f"shrinks to nothing at '{token}'")

    def conv_unit(token: str, filters: int, kernel: int, padding: int) -> None:
        nonlocal k, channels, height, width
        k += 1
        layers[f"conv{k}"] = nn.Conv2d(channels, filters, kernel, padding=padding)
        channels, height, width = filters, conv_output_size(height, kernel, 1, padding), \
            conv_output_size(width, kernel, 1, padding)
        check_size(token)  # before the norm, which LayerNorm and RMSNorm size by H x W
        norms[k] = add_norm(layers, cfg, k, (channels, height, width))
        layers[f"act{k}"] = activation_module(cfg.activation)

    if cfg.input_dropout:
        layers["drop0"] = make_dropout(cfg.input_dropout, cfg.dropout_scaling)
    for token in cfg.conv:
        if token in ("pool", "gap"):
            layers[f"{token}{sum(name.startswith(token) for name in layers) + 1}"] = nn.MaxPool2d(2, 2) if token == "pool" else nn.AdaptiveAvgPool2d(1)
            height, width = (conv_output_size(height, 2, 2), conv_output_size(width, 2, 2)) \
                if token == "pool" else (1, 1)
        elif token.startswith("r"):
            filters = int(token[1:])
            if filters != channels:
                raise ConfigError(f"conv token {token}: a residual block keeps its width, but its input has "
                                  f"{channels} channels; put a conv of {filters} filters before it")
            conv_unit(token, filters, 3, 1)
            conv_unit(token, filters, 3, 1)
            shortcuts[f"act{k}"] = f"conv{k - 1}"
            if getattr(norms[k], "weight", None) is not None:  # a trained scale: not with bn_affine=false
                zero_scales.append(norms[k])
        else:
            filters, kernel, padding = re.fullmatch(r"(\d+)(?:x(\d+))?(?:p(\d+))?", token).groups()
            kernel = int(kernel or 3)
            conv_unit(token, int(filters), kernel, kernel // 2 if padding is None else int(padding))
        check_size(token)
    layers["flatten"] = nn.Flatten()
    width_in, n_conv = channels * height * width, k
    for width_out in cfg.widths:
        k += 1
        layers[f"fc{k - n_conv}"] = nn.Linear(width_in, width_out)
        add_norm(layers, cfg, k, (width_out,))
        layers[f"act{k}"] = activation_module(cfg.activation)
        if cfg.dropout:
            layers[f"drop{k}"] = make_dropout(cfg.dropout, cfg.dropout_scaling)
        width_in = width_out
    k += 1
    layers[f"fc{k - n_conv}"] = nn.Linear(width_in, classes)
    if cfg.output_dropout:
        layers[f"drop{k}"] = make_dropout(cfg.output_dropout, cfg.dropout_scaling)
    model = ConvNet(layers, shortcuts)
    init_model(model, cfg.init, generator)
    for norm in zero_scales:
        nn.init.zeros_(norm.weight)
    return model


def build_model(cfg: TrialConfig, generator: torch.Generator | None = None,
                input_shape: tuple[int, ...] = (1, 28, 28)) -> nn.Module:
    """The network a config names for inputs of ``input_shape`` (C, H, W; MLPs take them flat)."""
    if cfg.model == "mlp":
        return build_mlp(cfg, in_features=math.prod(input_shape), generator=generator)
    if cfg.model == "cnn":
        return build_convnet(cfg, input_shape, generator=generator)
    raise ValueError(f"unknown model '{cfg.model}'")


def takes_flat_input(cfg: TrialConfig) -> bool:
    return cfg.model == "mlp"


def size_of(cfg: TrialConfig, input_shape: tuple[int, ...] = (1, 28, 28)) -> tuple[list[int], list[int]]:
    """The sizes of the network a config names: values in each parameter tensor, and values each layer
    outputs per example, counted on torch's meta device (nothing is allocated, so a network far beyond
    memory is sized before it is built)."""
    with torch.device("meta"):
        model = build_model(cfg, input_shape=input_shape).eval()  # eval: BN takes a batch of one
        outputs: list[int] = []
        for module in model.modules():
            if not list(module.children()):
                module.register_forward_hook(lambda m, inputs, out: outputs.append(out[0].numel()))
        model(torch.zeros(1, *input_shape) if cfg.model == "cnn" else torch.zeros(1, math.prod(input_shape)))
    return [p.numel() for p in model.parameters()], outputs
