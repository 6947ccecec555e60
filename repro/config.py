"""One trial's configuration: the standard keys every experiment and ``repro train`` share.

Values arrive as text from ``--set KEY=VALUE`` or as Python values from the API; ``coerce`` turns either into the field's type
and ``validate`` rejects what cannot train, each with one line that says what is wrong.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
from dataclasses import dataclass

from . import components
from .errors import ConfigError

SCHEDULES = ("constant", "cosine", "step", "inv-sqrt")
PROBE_SPLITS = ("train", "test")
DATASETS = ("mnist", "fashion-mnist", "cifar10")
MODELS = ("mlp", "cnn")
L1_MODES = ("subgradient", "proximal")
DROPOUT_SCALINGS = ("inverted", "book")
# one token of a ConvNet's conv stack: <channels>[x<kernel>][p<padding>] | r<channels> | pool | gap
CONV_TOKEN = re.compile(r"^([1-9]\d*(x[1-9]\d*)?(p\d+)?|r[1-9]\d*|pool|gap)$")


@dataclass(frozen=True)
class TrialConfig:
    # data
    dataset: str = "mnist"
    train_size: int | None = None     # first N training images (None: all 60000)
    test_size: int | None = None      # first N test images (None: all 10000)
    # network
    model: str = "mlp"                # mlp | cnn (the builders in repro/nets.py)
    conv: tuple[str, ...] = ("30x5p0", "pool")   # cnn: conv stack before `widths` (see repro/nets.py)
    widths: tuple[int, ...] = (100, 100, 100, 100)   # hidden widths; input 784 and output 10 implied
    # activation, init, norm, optimizer and penalty name a component: a built-in (repro/components.py's
    # registries) or your own as module:attribute
    activation: str = "relu"          # sigmoid | tanh | softsign | relu | gelu | silu | elu | leaky_relu
    init: str = "he"                  # zeros | normal:<std> | constant:<v> | xavier | glorot | he | orthogonal
                                      # | default (torch's own) | standard | normalized (Glorot & Bengio's
                                      # uniform inits) | sparse:<k> (k incoming N(0, 1) weights per unit, the rest 0)
    norm: str = "none"                # before each hidden activation: none | batchnorm | layernorm | rmsnorm
    batchnorm: bool = False           # the older key, kept in step with norm: true is norm=batchnorm, false
                                      # turns batch norm off; stored configs carry norm alone
    bn_affine: bool = True            # train the normaliser's scale and shift (the course's BN did not)
    bn_eps: float = 1e-5              # added to the normaliser's variance: torch's default; the book's is 1e-6
    dropout: float = 0.0              # after each hidden activation (inverted dropout, nn.Dropout)
    input_dropout: float = 0.0        # on the input pixels (the dropout paper's 0.2)
    output_dropout: float = 0.0       # on the logits (the book's DeepConvNet: 0.5)
    dropout_scaling: str = "inverted"  # inverted: nn.Dropout (x / (1-p) in training); book: x in
                                       # training, x * (1-p) at test (repro/nets.py BookDropout)
    # optimisation
    optimizer: str = "sgd"            # sgd | momentum | nesterov | adagrad | rmsprop | adadelta | adam
                                      # | adamw | nadam | radam | lion (Chen et al. 2023, the paper's betas)
    lr: float = 0.01
    momentum: float = 0.9             # for momentum and nesterov
    alpha: float = 0.99               # RMSProp's decay
    beta1: float = 0.9                # Adam's decay of the first moment
    beta2: float = 0.999              # Adam's decay of the second moment
    bias_correction: bool = True      # Adam's m/(1-beta1^t), v/(1-beta2^t); false: Kingma & Ba Sec. 6.4's ablation
    eps: float | None = None          # optimiser eps; None keeps torch.optim's default
    schedule: str = "constant"        # lr schedule over `iters` (torch.optim.lr_scheduler); inv-sqrt: lr/sqrt(t)
    weight_decay: float = 0.0         # L2 lambda: adds lambda*W to weight gradients (biases excluded);
                                      # adamw and lion decouple it: W <- W - lr*lambda*W
    l1: float = 0.0                   # L1 lambda on weight matrices
    l1_mode: str = "subgradient"      # subgradient: lambda*sign(W) in the gradient; proximal: soft-threshold
    max_norm: float = 0.0             # > 0: after each step, every unit's incoming weight vector is
                                      # rescaled to norm <= max_norm (Srivastava et al.'s constraint)
    penalty: str = "none"             # module:attribute of your own regulariser: a function of the weight
                                      # matrices and kernels whose value is added to the loss
    iters: int = 2000
    batch_size: int = 100
    # measurement
    eval_every: int = 100             # evaluate train/test accuracy and loss every N steps
    train_eval_size: int = 10000      # train accuracy on the first N training images (all if fewer)
    probe_every: int = 0              # activation statistics every N steps (0: at every evaluation)
    probe_split: str = "train"        # the images activation statistics are taken on: train or test
    probe_size: int = 1000            # how many of them (the first N)
    probe_outputs: bool = False       # also each weighted layer's raw output (before BN) at those points
    grad_window: int = 100            # first/last gradient ratio is taken over the first N steps
    post_loss_every: int = 0          # every N steps, the loss on that step's batch after its update
                                      # (the statistic the book prints; 0: off; one forward pass each)
    telemetry: bool = True            # per-layer gradient norms and activation statistics (off: bench only)

    def __post_init__(self):
        if self.batchnorm and self.norm not in ("none", "batchnorm"):
            raise ConfigError(f"batchnorm=true and norm={self.norm}: choose one (batchnorm=true is norm=batchnorm)")
        norm = "batchnorm" if self.batchnorm else self.norm
        object.__setattr__(self, "norm", norm)
        object.__setattr__(self, "batchnorm", norm == "batchnorm")

    def key(self, seed: int, device: str) -> str:
        """A short stable id for (config, seed, kind of device): the name a finished trial is saved
        under. The kind ("cpu", "cuda"), because CPU and CUDA round float32 differently and --resume
        must not mix their trials; not the index, which another GPU of the same model can take. A user's
        component adds its source's sha256, so that an edited component's trials are never reused."""
        payload = {"config": self.to_dict(), "seed": seed, "device": device.split(":")[0]}
        sources = {key: c.sha256 for key, c in components.users(self).items()}
        if sources:
            payload["sources"] = sources
        blob = json.dumps(payload, sort_keys=True)
        return hashlib.sha1(blob.encode()).hexdigest()[:12]

    def to_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(self).items()
                if k != "batchnorm"}  # norm says it

    @classmethod
    def from_dict(cls, config: dict) -> "TrialConfig":
        """The inverse of to_dict (JSON has lists where the config has tuples); not validated."""
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in config.items()})

    def replace(self, **changes) -> "TrialConfig":
        # the key changed decides: batchnorm=false turns batch norm off and leaves another norm be
        if "batchnorm" in changes and "norm" not in changes:
            changes["norm"] = "batchnorm" if changes["batchnorm"] else "none" if self.norm == "batchnorm" else self.norm
        elif "norm" in changes and "batchnorm" not in changes:
            changes["batchnorm"] = changes["norm"] == "batchnorm"
        cfg = dataclasses.replace(self, **changes)
        validate(cfg)
        return cfg


FIELDS = {f.name: f for f in dataclasses.fields(TrialConfig)}
FLOAT_FIELDS = [name for name, f in FIELDS.items() if "float" in str(f.type)]


def _parse_bool(text: str) -> bool:
    low = text.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true or false, got '{text}'")


def coerce(key: str, value, default=None):
    """``value`` as the type of ``default`` (or of TrialConfig's field ``key``): text from the command line
    is parsed ("0.05", "100,100", "true", "none"); a Python value is checked and normalised (a list to a
    tuple, an int to a float) without a round trip through text. One-line ConfigError on a mismatch."""
    if default is None and key in FIELDS:
        default, kind = FIELDS[key].default, str(FIELDS[key].type)
    else:
        kind = type(default).__name__
    try:
        if isinstance(value, str):
            return _parse_text(value, default, kind)
        return _check_value(value, default, kind)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"--set {key}={value_text(value)}: {err}") from None


def _parse_text(text: str, default, kind: str):
    if text.lower() in ("none", "all") and "None" in kind:
        return None
    if isinstance(default, bool) or kind == "bool":
        return _parse_bool(text)
    if isinstance(default, tuple) or "tuple" in kind:
        items = [t for t in text.replace(";", ",").split(",") if t.strip()]
        sample = default[0] if default else 0
        return tuple(type(sample)(t.strip()) for t in items)
    if isinstance(default, int) or "int" in kind:
        as_float = float(text)
        if as_float != int(as_float):
            raise ValueError(f"expected a whole number, got '{text}'")
        return int(as_float)
    if isinstance(default, float) or "float" in kind:
        return float(text)
    return text


def _check_value(value, default, kind: str):
    if value is None:
        if "None" in kind:
            return None
        raise ValueError("None is not allowed here")
    if isinstance(default, bool) or kind == "bool":
        if not isinstance(value, bool):
            raise ValueError(f"expected true or false, got {value!r}")
        return value
    if isinstance(default, tuple) or "tuple" in kind:
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"expected a list, got {value!r}")
        sample = default[0] if default else 0
        return tuple(_check_value(v, sample, type(sample).__name__) for v in value)
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got {value!r}")
    if isinstance(default, int) or "int" in kind:
        if not isinstance(value, (int, float)) or value != int(value):
            raise ValueError(f"expected a whole number, got {value!r}")
        return int(value)
    if isinstance(default, float) or "float" in kind:
        if not isinstance(value, (int, float)):
            raise ValueError(f"expected a number, got {value!r}")
        return float(value)
    if not isinstance(value, str):
        raise ValueError(f"expected text, got {value!r}")
    return value


def value_text(value) -> str:
    """A config value as --set spells it and as tables show it: 0.05, 100,100, true, none."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(map(value_text, value))
    if value is None:
        return "none"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def validate(cfg: TrialConfig) -> TrialConfig:
    def need(ok: bool, message: str):
        if not ok:
            raise ConfigError(message)

    need(cfg.dataset in DATASETS, f"dataset={cfg.dataset}: choose from {', '.join(DATASETS)}")
    need(cfg.model in MODELS, f"model={cfg.model}: choose from {', '.join(MODELS)}")
    components.check(cfg)
    need(cfg.schedule in SCHEDULES, f"schedule={cfg.schedule}: choose from {', '.join(SCHEDULES)}")
    need(cfg.l1_mode in L1_MODES, f"l1_mode={cfg.l1_mode}: choose from {', '.join(L1_MODES)}")
    need(cfg.dropout_scaling in DROPOUT_SCALINGS,
         f"dropout_scaling={cfg.dropout_scaling}: choose from {', '.join(DROPOUT_SCALINGS)}")
    kind, _, arg = cfg.init.partition(":")
    if kind in ("normal", "constant"):
        what = "the standard deviation must be a number >= 0" if kind == "normal" else "the value must be a number"
        need(_is_number(arg) and (kind == "constant" or float(arg) >= 0), f"init={cfg.init}: {what}")
    for f in FLOAT_FIELDS:  # inf passes every bound below and trains nothing
        value = getattr(cfg, f)
        need(value is None or math.isfinite(value), f"{f}={value}: must be a finite number")
    need(cfg.probe_split in PROBE_SPLITS, f"probe_split={cfg.probe_split}: choose from {', '.join(PROBE_SPLITS)}")
    need(cfg.probe_size > 0, f"probe_size={cfg.probe_size}: must be at least 1")
    need(cfg.bias_correction or cfg.schedule in ("constant", "inv-sqrt"),
         f"bias_correction=false works with schedule constant or inv-sqrt, not {cfg.schedule}")
    for name in ("beta1", "beta2"):
        need(0.0 <= getattr(cfg, name) < 1.0, f"{name}={getattr(cfg, name)}: must be in [0, 1)")
    # no hidden widths: a linear softmax classifier (multinomial logistic regression)
    need(all(w > 0 for w in cfg.widths), f"widths={cfg.widths}: need positive widths")
    bad = [t for t in cfg.conv if not CONV_TOKEN.match(t)]
    need(not bad, f"conv={','.join(cfg.conv)}: '{bad[0] if bad else ''}' is not <channels>[x<kernel>][p<pad>], "
                  "r<channels>, pool or gap")
    need(cfg.lr > 0, f"lr={cfg.lr}: the learning rate must be positive")
    need(cfg.iters > 0, f"iters={cfg.iters}: must be at least 1")
    need(cfg.batch_size > 0, f"batch_size={cfg.batch_size}: must be at least 1")
    need(cfg.eval_every > 0, f"eval_every={cfg.eval_every}: must be at least 1")
    need(cfg.train_size is None or cfg.train_size > 0, f"train_size={cfg.train_size}: must be positive")
    need(cfg.test_size is None or cfg.test_size > 0, f"test_size={cfg.test_size}: must be positive")
    for name in ("dropout", "input_dropout", "output_dropout"):
        need(0.0 <= getattr(cfg, name) < 1.0, f"{name}={getattr(cfg, name)}: must be in [0, 1)")
    for name in ("weight_decay", "l1", "momentum", "probe_every", "post_loss_every", "max_norm"):
        need(getattr(cfg, name) >= 0, f"{name}={getattr(cfg, name)}: must not be negative")
    need(cfg.eps is None or cfg.eps > 0, f"eps={cfg.eps}: must be positive")
    need(cfg.bn_eps > 0, f"bn_eps={cfg.bn_eps}: must be positive")
    return cfg


def _is_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def check_keys(keys) -> None:
    """Every key names a TrialConfig field, or one line that lists them."""
    unknown = [k for k in keys if k not in FIELDS]
    if unknown:
        raise ConfigError(f"unknown config key '{unknown[0]}'; known keys: {', '.join(FIELDS)}")


def apply_overrides(cfg: TrialConfig, overrides: dict) -> TrialConfig:
    """``cfg`` with ``overrides`` ({key: text or value}), each coerced to its field's type, then validated."""
    check_keys(overrides)
    return cfg.replace(**{k: coerce(k, v) for k, v in overrides.items()})


def parse_sets(pairs: list[str]) -> dict[str, str]:
    """``["lr=0.1", "widths=40,20"]`` -> ``{"lr": "0.1", "widths": "40,20"}`` (values still text: the
    experiment's own parameters take the type of their preset value, repro.runner.resolve)."""
    out = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {pair}: expected KEY=VALUE")
        out[key.strip()] = value.strip()
    return out
