"""Components by name: one registry per kind, from a built-in name to its implementation, and a
user's own component named ``module:attribute`` (``mypkg.opt:MyOpt``), imported and checked here.
Per kind, its config key, its built-ins, and what a user's own must be:

- activation (`activation`): ACTIVATION_MODULES; a function of a tensor, or a torch.nn.Module class
  built with no arguments.
- init (`init`): INITS, some with an argument (`normal:<std>`, `sparse:<k>`); a function that fills a
  weight tensor in place, as torch.nn.init's do (biases are zeroed, as under every built-in but default).
- normaliser (`norm`): NORMS, placed before each hidden activation; a torch.nn.Module class built with
  the number of features (a conv layer's channels).
- optimizer (`optimizer`): OPTIMIZERS; a torch.optim.Optimizer subclass built with the parameter
  groups and `lr` (its other settings are its own defaults).
- regulariser (`penalty`): the notes' are config keys of their own (REGULARISERS); a function of the
  weight matrices and kernels whose value is added to the loss.

A built-in name wins over a module of the same name (``normal:0.1`` is the init). A name that does
not resolve is a one-line ConfigError naming the key, the name and why. A user's component is
recorded with the sha256 of the named module's file (a package's ``__init__.py``), which also
enters the trial's key (repro.config.TrialConfig.key), so that --resume never reuses the trials of
an edited component.
"""
from __future__ import annotations

import hashlib
import importlib
import inspect
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, NamedTuple

import torch
from torch import nn

from .errors import ConfigError
from .lion import Lion

# ---- activations (GELU exact, not tanh-approximated; ELU alpha 1; LeakyReLU slope 0.01: torch's defaults)

ACTIVATION_MODULES = {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "softsign": nn.Softsign, "relu": nn.ReLU,
                      "gelu": nn.GELU, "silu": nn.SiLU, "elu": nn.ELU, "leaky_relu": nn.LeakyReLU}


class FunctionActivation(nn.Module):
    """A user's activation function as a module, so that probes hook it as they hook nn.ReLU."""

    def __init__(self, fn: Callable):
        super().__init__()
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)

    def extra_repr(self) -> str:
        return getattr(self.fn, "__qualname__", type(self.fn).__qualname__)


# ---- inits: fill(weight, arg, generator) in place, the variance of one weight, the argument taken

class Init(NamedTuple):
    fill: Callable | None     # None: keep torch's own init, done when the layer was built
    variance: Callable        # variance(arg, fan_in, fan_out): what variance-propagation theory needs
    arg: str = ""             # the value after the colon ("std" in normal:<std>); "" takes none


def _sparse(weight: torch.Tensor, k: int, generator) -> None:
    # torch zeroes a share of each column: of weight.T, so of each unit's inputs; a conv filter's
    # inputs count its kernel positions too
    fan_in = weight[0].numel()
    incoming = weight.view(weight.shape[0], -1).t()
    nn.init.sparse_(incoming, 1.0 - min(k, fan_in) / fan_in, std=1.0, generator=generator)


def _standard(weight: torch.Tensor, _, generator) -> None:
    bound = 1.0 / math.sqrt(weight[0].numel())  # 1/sqrt(fan_in)
    nn.init.uniform_(weight, -bound, bound, generator=generator)


INITS = {
    "zeros": Init(lambda w, _, g: nn.init.zeros_(w), lambda _, fan_in, fan_out: 0.0),
    "constant": Init(lambda w, value, g: nn.init.constant_(w, value), lambda _, fan_in, fan_out: 0.0, "value"),
    "normal": Init(lambda w, std, g: nn.init.normal_(w, 0.0, std, generator=g),
                   lambda std, fan_in, fan_out: std ** 2, "std"),
    # N(0, 1/fan_in): kaiming's rule with the linear gain
    "xavier": Init(lambda w, _, g: nn.init.kaiming_normal_(w, nonlinearity="linear", generator=g),
                   lambda _, fan_in, fan_out: 1.0 / fan_in),
    "he": Init(lambda w, _, g: nn.init.kaiming_normal_(w, nonlinearity="relu", generator=g),
               lambda _, fan_in, fan_out: 2.0 / fan_in),
    "glorot": Init(lambda w, _, g: nn.init.xavier_normal_(w, generator=g),
                   lambda _, fan_in, fan_out: 2.0 / (fan_in + fan_out)),
    # Glorot & Bengio's uniform inits; U[-a, a] has variance a^2/3
    "standard": Init(_standard, lambda _, fan_in, fan_out: 1.0 / (3.0 * fan_in)),
    "normalized": Init(lambda w, _, g: nn.init.xavier_uniform_(w, generator=g),
                       lambda _, fan_in, fan_out: 2.0 / (fan_in + fan_out)),
    "sparse": Init(_sparse, lambda k, fan_in, fan_out: min(k, fan_in) / fan_in, "k"),
    # orthonormal rows (fan_out <= fan_in) or columns: the squares of the fan_out x fan_in entries sum
    # to min(fan_in, fan_out), so one weight's variance is 1/max(fan_in, fan_out): 1/fan_in when square
    "orthogonal": Init(lambda w, _, g: nn.init.orthogonal_(w, generator=g),
                       lambda _, fan_in, fan_out: 1.0 / max(fan_in, fan_out)),
    # torch's nn.Linear and nn.Conv2d: kaiming_uniform_(a=sqrt(5)), i.e. U[-1/sqrt(fan_in), 1/sqrt(fan_in)]
    # (and biases from the same range, where every other init zeroes them)
    "default": Init(None, lambda _, fan_in, fan_out: 1.0 / (3.0 * fan_in)),
}
_INIT_ARGS = {"value": float, "std": float, "k": int}


# ---- normalisers, before each hidden activation; bn_eps and bn_affine apply to every built-in

def _batch_norm(shape: tuple[int, ...], eps: float, affine: bool) -> nn.Module:
    return (nn.BatchNorm1d if len(shape) == 1 else nn.BatchNorm2d)(shape[0], eps=eps, affine=affine)


def _layer_norm(shape: tuple[int, ...], eps: float, affine: bool) -> nn.Module:
    # over every unit of the layer, per example: a conv layer's (C, H, W), as Ba et al. (2016) define it
    return nn.LayerNorm(shape, eps=eps, elementwise_affine=affine)


def _rms_norm(shape: tuple[int, ...], eps: float, affine: bool) -> nn.Module:
    return nn.RMSNorm(shape, eps=eps, elementwise_affine=affine)


NORMS = {"none": None, "batchnorm": _batch_norm, "layernorm": _layer_norm, "rmsnorm": _rms_norm}


# ---- optimisers: the class, its keyword arguments besides lr, and the kernel to ask for

class Optim(NamedTuple):
    cls: type
    options: Callable           # cfg -> keyword arguments besides lr
    kernel: str | None = None   # "fused": one kernel for every parameter where the device has it
                                # (repro.optim._fused_if_available); "foreach"; None: Lion's own loop


def _eps(cfg) -> dict:
    return {} if cfg.eps is None else {"eps": cfg.eps}


def _adam_family(cfg) -> dict:
    return {"betas": (cfg.beta1, cfg.beta2), **_eps(cfg)}


OPTIMIZERS = {
    "sgd": Optim(torch.optim.SGD, lambda cfg: {}, "fused"),
    "momentum": Optim(torch.optim.SGD, lambda cfg: {"momentum": cfg.momentum}, "fused"),
    "nesterov": Optim(torch.optim.SGD, lambda cfg: {"momentum": cfg.momentum, "nesterov": True}, "fused"),
    "adagrad": Optim(torch.optim.Adagrad, _eps, "fused"),
    # torch.optim has no fused RMSprop, NAdam or RAdam; foreach is their fastest form on every device
    "rmsprop": Optim(torch.optim.RMSprop, lambda cfg: {"alpha": cfg.alpha, **_eps(cfg)}, "foreach"),
    "adadelta": Optim(torch.optim.Adadelta, _eps, "foreach"),  # lr scales its update: 1.0 is Zeiler's rule
    "adam": Optim(torch.optim.Adam, _adam_family, "fused"),
    # weight_decay is decoupled here (Loshchilov & Hutter): W <- W - lr*lambda*W, not lambda*W in the gradient
    "adamw": Optim(torch.optim.AdamW, _adam_family, "fused"),
    "nadam": Optim(torch.optim.NAdam, _adam_family, "foreach"),
    "radam": Optim(torch.optim.RAdam, _adam_family, "foreach"),
    # the paper's betas (0.9, 0.99), not Adam's beta1/beta2 keys; weight_decay decoupled, as AdamW's
    "lion": Optim(Lion, lambda cfg: {}),
}

# ---- regularisers: the notes' are config keys of their own, each set to its strength; a user's own
# is a penalty function (the `penalty` key), added to the loss as l1's subgradient penalty is

REGULARISERS = {"l2": "weight_decay", "l1": "l1", "dropout": "dropout", "max_norm": "max_norm"}
PENALTIES = {"none": None}


def regulariser_setting(text: str) -> dict:
    """The config keys a regulariser sets: ``l2:0.01`` -> {"weight_decay": 0.01}, ``dropout:0.5`` ->
    {"dropout": 0.5}; a user's ``mypkg.reg:penalty`` -> {"penalty": "mypkg.reg:penalty"}."""
    name, sep, strength = text.partition(":")
    if name in REGULARISERS:
        try:
            return {REGULARISERS[name]: float(strength)}
        except ValueError:
            raise ConfigError(f"regulariser {text}: use {name}:<strength>, e.g. {name}:0.01") from None
    if not sep:
        raise ConfigError(f"regulariser {text}: use {', '.join(f'{n}:<strength>' for n in REGULARISERS)}, "
                          "or module:attribute for your own penalty")
    resolve("penalty", text)
    return {"penalty": text}


# ---- resolution

@dataclass(frozen=True)
class Component:
    key: str                    # the config key: activation, init, norm, optimizer, penalty
    name: str                   # as the config spells it
    impl: object                # the registry's entry for a built-in; the user's object
    builtin: bool
    arg: float | int | None = None   # a parameterised built-in's value: 0.1 in normal:0.1
    file: str | None = None     # a user's: its module's file, and that file's sha256
    sha256: str | None = None


KINDS = {"activation": ("activation", ACTIVATION_MODULES), "init": ("init", INITS),
         "norm": ("normaliser", NORMS), "optimizer": ("optimizer", OPTIMIZERS), "penalty": ("regulariser", PENALTIES)}


def resolve(key: str, name: str) -> Component:
    """The component config key ``key`` names, built-in or ``module:attribute``; one-line ConfigError."""
    kind, registry = KINDS[key]
    base, sep, arg = name.partition(":")
    if base in registry:
        if key == "norm" and base == "rmsnorm" and not hasattr(nn, "RMSNorm"):
            raise ConfigError(f"norm=rmsnorm needs torch >= 2.4 (nn.RMSNorm); this is torch {torch.__version__}")
        return Component(key, name, registry[base], True, _builtin_arg(key, name, base, arg if sep else None))
    if not sep:
        raise ConfigError(f"{key}={name}: not a built-in {kind} ({_usage(key)}) nor module:attribute for your own")
    obj, defined_in = _import(key, name, base, arg)
    problem = CHECKS[key](obj)
    if problem:
        raise ConfigError(f"{key}={name}: {problem}")
    return Component(key, name, obj, False, file=defined_in, sha256=_sha256(defined_in))


def _usage(key: str) -> str:
    if key == "init":
        return ", ".join(f"{n}:<{i.arg}>" if i.arg else n for n, i in INITS.items())
    return ", ".join(KINDS[key][1])


def _builtin_arg(key: str, name: str, base: str, text: str | None):
    wanted = INITS[base].arg if key == "init" else ""
    if not wanted:
        if text is not None:
            raise ConfigError(f"{key}={name}: {base} takes no argument")
        return None
    try:
        value = _INIT_ARGS[wanted](text or "")
    except ValueError:
        value = None
    if value is None or not math.isfinite(value) or (wanted == "std" and value < 0) or (wanted == "k" and value < 1):
        raise ConfigError(f"{key}={name}: use {base}:<{wanted}> with a "
                          f"{'whole number of at least 1' if wanted == 'k' else 'finite number'}"
                          f"{' not below 0' if wanted == 'std' else ''}")
    return value


def _import(key: str, name: str, module_name: str, attribute: str) -> tuple[object, str | None]:
    """The object ``module:attribute`` names, and the module's file."""
    if not module_name or not attribute:
        raise ConfigError(f"{key}={name}: expected module:attribute, e.g. mypkg.module:Name")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ConfigError(f"{key}={name}: cannot import {module_name} ({_first_line(err)}); "
                          "is its folder on PYTHONPATH?") from None
    except Exception as err:  # the user's module raised while it ran: say what, in one line
        raise ConfigError(f"{key}={name}: importing {module_name} raised {type(err).__name__}: "
                          f"{_first_line(err)}") from None
    obj = module
    for part in attribute.split("."):
        if not hasattr(obj, part):
            raise ConfigError(f"{key}={name}: {module_name} has no attribute {attribute}")
        obj = getattr(obj, part)
    return obj, getattr(module, "__file__", None)


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _sha256(path: str | None) -> str | None:
    """The file's hash, read now: a --resume after an edit sees the new source."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest() if path and Path(path).is_file() else None


# ---- what a user's object must be, per kind: None, or why not

def _what(obj) -> str:
    if inspect.isclass(obj):
        return f"the class {obj.__name__}"
    if callable(obj):
        return f"the function {getattr(obj, '__name__', obj)}"
    return f"the {type(obj).__name__} {obj!r}"


def _accepts(obj, *args, **kwargs) -> bool:
    try:
        inspect.signature(obj).bind(*args, **kwargs)
    except TypeError:
        return False
    except ValueError:  # no signature to read (a builtin): let the call itself decide
        pass
    return True


def _check_activation(obj) -> str | None:
    if inspect.isclass(obj):
        if not issubclass(obj, nn.Module):
            return f"an activation is a function or a torch.nn.Module class, not {_what(obj)}"
        return None if _accepts(obj) else f"{obj.__name__}() needs arguments; an activation class is built with none"
    if not callable(obj):
        return f"an activation is a function or a torch.nn.Module class, not {_what(obj)}"
    return None if _accepts(obj, torch.zeros(1)) else f"{_what(obj)} does not take one tensor"


def _check_function_of_one(what: str, argument: str) -> Callable:
    def check(obj) -> str | None:
        if inspect.isclass(obj) or not callable(obj):
            return f"{what} is a function of {argument}, not {_what(obj)}"
        return None if _accepts(obj, torch.zeros(1)) else f"{_what(obj)} does not take one argument ({argument})"
    return check


def _check_norm(obj) -> str | None:
    if not (inspect.isclass(obj) and issubclass(obj, nn.Module)):
        return f"a normaliser is a torch.nn.Module class, not {_what(obj)}"
    return None if _accepts(obj, 1) else f"{obj.__name__}(num_features) does not take the number of features"


def _check_optimizer(obj) -> str | None:
    if not (inspect.isclass(obj) and issubclass(obj, torch.optim.Optimizer)):
        return f"an optimizer is a torch.optim.Optimizer subclass, not {_what(obj)}"
    return None if _accepts(obj, [], lr=0.1) else f"{obj.__name__}(params, lr=...) does not take those arguments"


CHECKS = {"activation": _check_activation,
          "init": _check_function_of_one("an init", "a weight tensor, filled in place"),
          "norm": _check_norm, "optimizer": _check_optimizer,
          "penalty": _check_function_of_one("a penalty", "the list of weight tensors, returning a scalar")}


def check(cfg) -> None:
    """Every component ``cfg`` names resolves, and fits the rest of the config; one-line ConfigError."""
    resolved = {key: resolve(key, getattr(cfg, key)) for key in KINDS}
    optimizer = resolved["optimizer"]
    if cfg.weight_decay and not optimizer.builtin and not _accepts(optimizer.impl, [], lr=0.1, weight_decay=0.1):
        raise ConfigError(f"weight_decay={cfg.weight_decay} with optimizer={cfg.optimizer}: L2 is the optimizer's "
                          "weight_decay per parameter group, and this one does not take weight_decay")


def users(cfg) -> dict[str, Component]:
    """The user's components among ``cfg``'s, by config key (a built-in's name is all the config needs)."""
    return {key: c for key in KINDS if not (c := resolve(key, getattr(cfg, key))).builtin}


def used(cfg) -> dict:
    """What a trial result records beyond its config: {key: {"name", "file", "sha256"}} per user's component."""
    return {key: {"name": c.name, "file": c.file, "sha256": c.sha256} for key, c in users(cfg).items()}


# ---- building them

def activation_module(name: str) -> nn.Module:
    impl = resolve("activation", name).impl
    return impl() if inspect.isclass(impl) else FunctionActivation(impl)


def norm_module(name: str, shape: tuple[int, ...], eps: float, affine: bool) -> nn.Module | None:
    """The normaliser for a layer whose output (one example's) has ``shape``: (features,) or (C, H, W)."""
    c = resolve("norm", name)
    if c.builtin:
        return c.impl(shape, eps, affine) if c.impl is not None else None
    return c.impl(shape[0])


def init_weight(weight: torch.Tensor, scheme: str, generator: torch.Generator | None = None) -> None:
    """Initialise one weight tensor in place by a named scheme (torch.nn.init) or the user's function."""
    c = _init(scheme)
    if not c.builtin:
        with torch.no_grad():  # the user's function fills a leaf that requires grad
            c.impl(weight)
    elif c.impl.fill is not None:
        c.impl.fill(weight, c.arg, generator)


def init_variance(scheme: str, fan_in: int, fan_out: int) -> float:
    """The variance of one weight under ``scheme`` (what variance-propagation theory needs)."""
    c = _init(scheme)
    if not c.builtin:
        raise ConfigError(f"init={scheme}: a user's init has no stated variance")
    return c.impl.variance(c.arg, fan_in, fan_out)


def _init(scheme: str) -> Component:
    try:
        return resolve("init", scheme)
    except ConfigError as err:
        raise ConfigError(f"unknown init scheme '{scheme}' ({err})") from None


def penalty_function(name: str) -> Callable | None:
    """The user's penalty of the weight tensors, or None for "none"."""
    return resolve("penalty", name).impl
