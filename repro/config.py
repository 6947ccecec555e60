"""One trial's configuration: the standard keys every experiment and ``repro train`` share.

Values arrive as strings from ``--set KEY=VALUE``; ``parse_value`` turns them into the field's type
and ``validate`` rejects what cannot train, each with one line that says what is wrong.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from dataclasses import dataclass

from .errors import ReproError

ACTIVATIONS = ("sigmoid", "tanh", "softsign", "relu")
OPTIMIZERS = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adadelta", "adam")
SCHEDULES = ("constant", "cosine", "step", "inv-sqrt")
PROBE_SPLITS = ("train", "test")
DATASETS = ("mnist", "fashion-mnist", "cifar10")
MODELS = ("mlp", "cnn")
L1_MODES = ("subgradient", "proximal")
DROPOUT_SCALINGS = ("inverted", "book")
INIT_PATTERN = re.compile(r"^(zeros|xavier|glorot|he|standard|normalized|default|sparse:[1-9]\d*|normal:[0-9.eE+-]+|constant:[0-9.eE+-]+)$")
# one token of a ConvNet's conv stack: <channels>[x<kernel>][p<padding>] | r<channels> | pool | gap
CONV_TOKEN = re.compile(r"^([1-9]\d*(x[1-9]\d*)?(p\d+)?|r[1-9]\d*|pool|gap)$")


class ConfigError(ReproError, ValueError):
    """A configuration value that cannot be used; the message is one line for the user."""


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
    activation: str = "relu"
    init: str = "he"                  # zeros | normal:<std> | constant:<v> | xavier | glorot | he | default
                                      # | standard | normalized (Glorot & Bengio's uniform inits)
                                      # | sparse:<k> (k incoming N(0, 1) weights per unit, the rest 0)
    batchnorm: bool = False
    bn_affine: bool = True            # train BN's scale and shift (the course did not)
    bn_eps: float = 1e-5              # added to BN's batch variance: torch's default; the book's is 1e-6
    dropout: float = 0.0              # after each hidden activation (inverted dropout, nn.Dropout)
    input_dropout: float = 0.0        # on the input pixels (the dropout paper's 0.2)
    output_dropout: float = 0.0       # on the logits (the book's DeepConvNet: 0.5)
    dropout_scaling: str = "inverted"  # inverted: nn.Dropout (x / (1-p) in training); book: x in
                                       # training, x * (1-p) at test (repro/nets.py BookDropout)
    # optimisation
    optimizer: str = "sgd"
    lr: float = 0.01
    momentum: float = 0.9             # for momentum and nesterov
    alpha: float = 0.99               # RMSProp's decay
    beta1: float = 0.9                # Adam's decay of the first moment
    beta2: float = 0.999              # Adam's decay of the second moment
    bias_correction: bool = True      # Adam's m/(1-beta1^t), v/(1-beta2^t); false: Kingma & Ba Sec. 6.4's ablation
    eps: float | None = None          # optimiser eps; None keeps torch.optim's default
    schedule: str = "constant"        # lr schedule over `iters` (torch.optim.lr_scheduler); inv-sqrt: lr/sqrt(t)
    weight_decay: float = 0.0         # L2 lambda: adds lambda*W to weight gradients (biases excluded)
    l1: float = 0.0                   # L1 lambda on weight matrices
    l1_mode: str = "subgradient"      # subgradient: lambda*sign(W) in the gradient; proximal: soft-threshold
    max_norm: float = 0.0             # > 0: after each step, every unit's incoming weight vector is
                                      # rescaled to norm <= max_norm (Srivastava et al.'s constraint)
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

    def key(self, seed: int, device: str) -> str:
        """A short stable id for (config, seed, kind of device): the name a finished trial is saved
        under. The kind ("cpu", "cuda"), because CPU and CUDA round float32 differently and --resume
        must not mix their trials; not the index, which another GPU of the same model can take."""
        blob = json.dumps({"config": self.to_dict(), "seed": seed, "device": device.split(":")[0]}, sort_keys=True)
        return hashlib.sha1(blob.encode()).hexdigest()[:12]

    def to_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, config: dict) -> "TrialConfig":
        """The inverse of to_dict (JSON has lists where the config has tuples); not validated."""
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in config.items()})

    def replace(self, **changes) -> "TrialConfig":
        cfg = dataclasses.replace(self, **changes)
        validate(cfg)
        return cfg


FIELDS = {f.name: f for f in dataclasses.fields(TrialConfig)}


def _parse_bool(text: str) -> bool:
    low = text.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true or false, got '{text}'")


def parse_value(key: str, text: str, default=None):
    """Turn ``text`` into the type of ``default`` (or of TrialConfig's field ``key``)."""
    if default is None and key in FIELDS:
        default = FIELDS[key].default
        kind = FIELDS[key].type
    else:
        kind = type(default).__name__
    try:
        if text.lower() in ("none", "all") and "None" in str(kind):
            return None
        if isinstance(default, bool) or kind == "bool":
            return _parse_bool(text)
        if isinstance(default, tuple) or "tuple" in str(kind):
            items = [t for t in text.replace(";", ",").split(",") if t.strip()]
            sample = default[0] if default else 0
            return tuple(type(sample)(t.strip()) for t in items)
        if isinstance(default, int) or "int" in str(kind):
            as_float = float(text)
            if as_float != int(as_float):
                raise ValueError(f"expected a whole number, got '{text}'")
            return int(as_float)
        if isinstance(default, float) or "float" in str(kind):
            return float(text)
        return text
    except ValueError as err:
        raise ConfigError(f"--set {key}={text}: {err}") from None


def validate(cfg: TrialConfig) -> TrialConfig:
    def need(ok: bool, message: str):
        if not ok:
            raise ConfigError(message)

    need(cfg.dataset in DATASETS, f"dataset={cfg.dataset}: choose from {', '.join(DATASETS)}")
    need(cfg.model in MODELS, f"model={cfg.model}: choose from {', '.join(MODELS)}")
    need(cfg.activation in ACTIVATIONS, f"activation={cfg.activation}: choose from {', '.join(ACTIVATIONS)}")
    need(cfg.optimizer in OPTIMIZERS, f"optimizer={cfg.optimizer}: choose from {', '.join(OPTIMIZERS)}")
    need(cfg.schedule in SCHEDULES, f"schedule={cfg.schedule}: choose from {', '.join(SCHEDULES)}")
    need(cfg.l1_mode in L1_MODES, f"l1_mode={cfg.l1_mode}: choose from {', '.join(L1_MODES)}")
    need(cfg.dropout_scaling in DROPOUT_SCALINGS,
         f"dropout_scaling={cfg.dropout_scaling}: choose from {', '.join(DROPOUT_SCALINGS)}")
    need(bool(INIT_PATTERN.match(cfg.init)),
         f"init={cfg.init}: use zeros, normal:<std>, constant:<value>, xavier, glorot, he, standard, normalized, sparse:<k> or default")
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


def apply_overrides(cfg: TrialConfig, overrides: dict) -> TrialConfig:
    """``overrides`` maps keys to already-parsed values; unknown keys are errors."""
    unknown = [k for k in overrides if k not in FIELDS]
    if unknown:
        raise ConfigError(f"unknown config key '{unknown[0]}'; known keys: {', '.join(FIELDS)}")
    return cfg.replace(**overrides)


def parse_sets(pairs: list[str]) -> dict[str, str]:
    """``["lr=0.1", "widths=40,20"]`` -> ``{"lr": "0.1", "widths": "40,20"}`` (values still text)."""
    out = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {pair}: expected KEY=VALUE")
        out[key.strip()] = value.strip()
    return out


def config_from_text(base: TrialConfig, texts: dict[str, str]) -> TrialConfig:
    unknown = [k for k in texts if k not in FIELDS]
    if unknown:
        raise ConfigError(f"unknown config key '{unknown[0]}'; known keys: {', '.join(FIELDS)}")
    return apply_overrides(base, {k: parse_value(k, v) for k, v in texts.items()})
