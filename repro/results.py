"""What a run produces, as typed objects: the one model that the runner writes and every reader
(the printed table, the report, the Python API, blocks, generalise, TensorBoard, the audit) reads.

    Run                       one experiment at one preset: params, environment, extras, claims
      .variants[id]           VariantResult: label, group, config, reference, aggregate over seeds
        .trials               Trial per seed: config, status, history, batch losses, summary
          .history            evaluation points: {"step", "lr", <POINT metrics>, "grad_norm": {layer: v},
                              "activations": {layer: {stat: v}}, ...}: names from repro/metrics.py

Variants and claims are joined by stable ids (``Variant.id``, ``Claim.id``), never by display text.
On disk (results/<experiment>/<preset>.json) a run carries ``schema``; ``load`` reads this schema,
refuses an older one with the command that rewrites it, and refuses anything malformed with one
line naming the file and the field: results files are shared between people, so they are
untrusted input.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import numpy as np

from . import metrics
from .claims import CLAIM_KINDS, Claim
from .errors import ReproError

SCHEMA = 2  # 1: variants keyed by display names (before ids); no "schema" key
ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9.+-]*$")
STATUSES = ("ok", "diverged")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class ResultsError(ReproError):
    """A results file that cannot be used; the message is one line that names the file."""


# ---- statistics over seeds ----

def stats(values: list[float]) -> dict:
    """mean, std (n-1), min, max and the 95% t-interval of the mean, over finite values only."""
    from scipy.stats import t
    finite = np.array([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    n = len(finite)
    if n == 0:
        return {"n": 0, "mean": None, "std": None, "min": None, "max": None, "ci95": None}
    std = float(finite.std(ddof=1)) if n > 1 else 0.0
    half = float(t.ppf(0.975, n - 1) * std / math.sqrt(n)) if n > 1 else None
    mean = float(finite.mean())
    return {"n": n, "mean": mean, "std": std, "min": float(finite.min()), "max": float(finite.max()),
            "ci95": [mean - half, mean + half] if half is not None else None}


def summarise(metric: metrics.Metric, trials: list["Trial"]):
    """One TRIAL metric over seeds: stats, or for a yes/no outcome the count of seeds."""
    values = [t.summary.get(metric.name) for t in trials]
    return sum(bool(v) for v in values) if metric.counted else stats(values)


def aggregate(trials: list["Trial"]) -> dict:
    """Every TRIAL metric over seeds (repro/metrics.py)."""
    return {m.name: summarise(m, trials) for m in metrics.of_scope(metrics.TRIAL)}


class LazyAggregate(dict):
    """An aggregate computed metric by metric when first read: a claim re-judged on a thousand bootstrap
    resamples reads a handful of the hundreds of (variant, metric) cells."""

    def __init__(self, trials: list["Trial"]):
        super().__init__()
        self.trials = trials

    def __missing__(self, name: str):
        self[name] = value = summarise(metrics.BY_NAME[name], self.trials)
        return value

    def get(self, name, default=None):
        return self[name] if name in metrics.BY_NAME else default


# ---- references: published figures beside a variant ----

MEASURED_HERE = "measured here"  # a Reference's source for our own calibration figures: not a reference


@dataclass(frozen=True)
class Reference:
    metric: str          # a TRIAL metric, e.g. final_test_acc or post_update_loss
    low: float
    high: float
    source: str          # "book", "course", a paper, or MEASURED_HERE for calibration figures
    note: str = ""
    dataset: str = "mnist"                 # what the figure was measured on
    describes: tuple = ()                  # ((config key, value), ...) the figure depends on beyond the preset

    def value_text(self) -> str:
        return f"{self.low:g}" if self.low == self.high else f"{self.low:g}-{self.high:g}"

    def text(self) -> str:
        return f"{self.value_text()} ({self.source})"

    def why_not_comparable(self, config: dict, changed: list[str]) -> str | None:
        """Why a variant's measurement cannot be judged against this figure, or None if it can.

        ``changed``: the config keys that --set moved away from the preset's own setup."""
        if self.source == MEASURED_HERE:
            return "no published figure"
        if config.get("dataset", "mnist") != self.dataset:
            return f"reference is for {self.dataset.upper()}, this run is on {config.get('dataset')}"
        if changed:
            return f"reference is for the preset's setup; this run changed {', '.join(changed)}"
        differs = [f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                   for k, v in self.describes if config.get(k) != v]
        return f"reference is for {', '.join(differs)}" if differs else None

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "Reference":
        return cls(**{k: tuple(map(tuple, v)) if k == "describes" else v for k, v in data.items()})


# ---- the model ----

@dataclass
class Trial:
    """One variant at one seed, as the engine (repro/engine.py) left it."""
    variant: str                 # the variant's id
    seed: int
    config: dict                 # the resolved TrialConfig (TrialConfig.to_dict)
    key: str                     # the trial store's name for (config, seed)
    layers: list                 # weighted layers in network order (fc1, fc2, ... / conv1, ...)
    status: str                  # "ok" or "diverged" (repro/engine.py's one rule)
    diverged_at: int | None
    history: list                # evaluation points
    batch_loss: list             # every step's batch loss before its update
    post_update_loss: list       # [step, loss after the update] (config post_loss_every)
    summary: dict                # TRIAL metrics by name
    wall_time: float
    components: dict = field(default_factory=dict)   # what was used beyond built-in names (and their hashes)
    device: str = ""             # the kind it trained on ("cpu", "cuda"; part of its key)
    numerics: dict = field(default_factory=dict)     # what its process computed with (repro/numerics.py)

    @property
    def finished(self) -> bool:
        return self.status == "ok"

    def to_json(self) -> dict:
        out = asdict(self)
        if not self.components:
            del out["components"]
        return out

    @classmethod
    def from_engine(cls, result: dict, variant: str) -> "Trial":
        """A result dict of repro.engine.train (or the trial store), tagged with its variant's id."""
        names = {f.name for f in fields(cls)} - {"variant"}
        return cls(variant=variant, **{k: v for k, v in result.items() if k in names})


@dataclass
class VariantResult:
    id: str
    label: str                   # display text: tables, legends, TensorBoard run names
    group: str
    metric: str                  # the TRIAL metric the printed table shows for it
    config: dict
    reference: Reference | None
    changed: list                # config keys --set moved off the preset (what its reference no longer describes)
    aggregate: dict              # TRIAL metric -> stats over seeds ("diverged": a count)
    trials: list = field(default_factory=list, repr=False)   # Trial per seed, joined from the run

    def values(self, metric: str) -> list:
        """Each seed's TRIAL metric, in seed order."""
        return [t.summary.get(metric) for t in self.trials]

    def reference_status(self) -> tuple[Reference | None, str, bool]:
        """Its Reference, the text that stands for it in tables, and whether it can be judged against it
        (a verdict); where not, the text says why (Reference.why_not_comparable)."""
        ref = self.reference
        if ref is None:
            return None, "no published figure", False
        why_not = ref.why_not_comparable(self.config, self.changed)
        if why_not is None:
            return ref, ref.text(), True
        if ref.source == MEASURED_HERE:
            return ref, f"{why_not} (ours, measured here: {ref.value_text()})", False
        return ref, f"{ref.text()}, but the {why_not}", False

    def reference_verdict(self):
        """Where the reference falls against one run of ours (repro.uncertainty.reference_verdict), from
        each seed's value of the reference's metric (a diverged seed: NaN); None without a reference."""
        from .uncertainty import printed_precision, reference_verdict
        ref = self.reference
        if ref is None:
            return None
        values = [math.nan if v is None else v for v in self.values(ref.metric)]
        return reference_verdict(values, ref.low, ref.high, printed_precision(ref.low, ref.high))

    def to_json(self) -> dict:
        return {"label": self.label, "group": self.group, "metric": self.metric, "config": self.config,
                "reference": self.reference.to_json() if self.reference else None, "changed": list(self.changed),
                "aggregate": self.aggregate}


@dataclass
class Run:
    experiment: str
    title: str
    preset: str
    params: dict                 # the preset's parameters after --set
    forced: dict                 # config keys --set forced on every variant
    seeds: int
    first_seed: int
    condition: str | None        # a generalise condition's name, or None
    env: dict                    # torch, device, threads, git commit, determinism
    variants: dict               # id -> VariantResult, in the experiment's order
    extras: dict = field(default_factory=dict)   # the experiment's own outputs (tables, figures, numbers)
    claims: list = field(default_factory=list)   # Claim
    wall_time: float = math.nan
    resumed_trials: int = 0
    path: Path | None = None

    # ---- reading ----
    @property
    def trials(self) -> list[Trial]:
        return [t for v in self.variants.values() for t in v.trials]

    def variant(self, variant_id: str) -> VariantResult:
        try:
            return self.variants[variant_id]
        except KeyError:
            raise KeyError(f"{self.experiment}: no variant '{variant_id}' (ids: {', '.join(self.variants)})") from None

    def agg(self, variant_id: str, metric: str = "final_test_acc", stat: str = "mean") -> float:
        """An aggregate across seeds; NaN where no seed has a value (all diverged), so claims fail, not crash."""
        value = self.variant(variant_id).aggregate[metric][stat]
        return math.nan if value is None else value

    def trials_of(self, variant_id: str, finished: bool = False) -> list[Trial]:
        """A variant's trials, one per seed; ``finished``: only those that did not diverge."""
        return [t for t in self.variant(variant_id).trials if t.finished or not finished]

    def groups(self) -> dict[str, list[str]]:
        """Chart group -> variant ids, in order (an experiment without groups has one, "all variants")."""
        return group_variants({v.id: v.group for v in self.variants.values()})

    def claim(self, claim_id: str) -> Claim | None:
        return next((c for c in self.claims if c.id == claim_id), None)

    def figure_files(self) -> list[tuple[str, Path]]:
        """(title, PNG file) for each figure the experiment listed in extras["figures"] (names relative to
        the run's outputs folder, results/<experiment>/<preset>/), found only inside that folder: a name
        that leads elsewhere, or a file that is not a PNG, is left out. Results files are shared, so a
        figure entry is untrusted."""
        listed = self.extras.get("figures") or {}
        if not isinstance(listed, dict) or self.path is None:
            return []
        from .layout import Layout
        root = Layout.outputs_of(self.path).resolve()
        found = []
        for title, name in listed.items():
            if not isinstance(title, str) or not isinstance(name, str):
                continue
            path = (root / name).resolve()
            try:
                if path.is_relative_to(root) and path.is_file() and path.open("rb").read(8) == PNG_MAGIC:
                    found.append((title, path))
            except OSError:
                continue
        return found

    def with_seeds(self, seeds: list[int]) -> "Run":
        """This run as if it had had only ``seeds`` (repeats allowed: a bootstrap resample), aggregates
        recomputed. Variants share seeds and batches, so a resample takes the same seeds for every variant."""
        variants = {}
        for vid, v in self.variants.items():
            by_seed = {t.seed: t for t in v.trials}
            trials = [by_seed[s] for s in seeds if s in by_seed]
            variants[vid] = replace(v, trials=trials, aggregate=LazyAggregate(trials))
        return replace(self, variants=variants, seeds=len(seeds))

    # ---- writing: one writer ----
    def to_json(self) -> dict:
        return {"schema": SCHEMA, "experiment": self.experiment, "title": self.title, "preset": self.preset,
                "params": self.params, "forced": self.forced, "seeds": self.seeds, "first_seed": self.first_seed,
                "condition": self.condition, "env": self.env,
                "variants": {vid: v.to_json() for vid, v in self.variants.items()},
                "trials": [t.to_json() for t in self.trials],
                "extras": self.extras, "claims": [c.to_dict() for c in self.claims],
                "wall_time": self.wall_time, "resumed_trials": self.resumed_trials,
                "path": str(self.path) if self.path else None}

    def save(self, path: Path) -> None:
        from .store import write_json
        self.path = Path(path)
        write_json(self.path, self.to_json())

    @classmethod
    def from_json(cls, data, path: Path | str | None = None) -> "Run":
        return _parse_run(data, str(path or "results"))


def group_variants(groups: dict[str, str]) -> dict[str, list[str]]:
    """{variant id: group} -> {group: [ids]}, groups in first-seen order; "" becomes "all variants"."""
    out: dict[str, list[str]] = {}
    for vid, group in groups.items():
        out.setdefault(group or "all variants", []).append(vid)
    return out


def gradient_flow(trials: list[Trial]) -> dict | None:
    """Each layer's weight-gradient norm over the first evaluation interval, per seed (network order):
    the start of training, where the initialisation and the activation decide how much gradient reaches
    the lower layers. {"layers", "steps" (the interval), "norms": seeds x layers}; None without data.
    The report draws its geometric mean over seeds, TensorBoard the mean of its log10: the same line."""
    trials = [t for t in trials if t.history and "grad_norm" in t.history[0]]
    if not trials:
        return None
    layers = trials[0].layers
    norms = np.array([[t.history[0]["grad_norm"][layer] for layer in layers] for t in trials], dtype=float)
    return {"layers": layers, "steps": trials[0].history[0]["step"], "norms": norms}


def load(path: Path | str) -> Run:
    """A results file, validated: one ResultsError line for anything unreadable, malformed or outdated."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise ResultsError(f"cannot read {path} ({err.strerror or err})") from None
    try:
        data = json.loads(text)
    except ValueError as err:
        raise ResultsError(f"{path} is not valid JSON ({err}); run the experiment again to rewrite it") from None
    return _parse_run(data, str(path))


# ---- validation: untrusted input ----

def _need(ok: bool, where: str, what: str) -> None:
    if not ok:
        raise ResultsError(f"{where}: {what}")


def _is_number(value, allow_none: bool = False) -> bool:
    return (value is None and allow_none) or (isinstance(value, (int, float)) and not isinstance(value, bool))


def _parse_run(data, where: str) -> Run:
    _need(isinstance(data, dict), where, "not an experiment's results (not a JSON object)")
    version = data.get("schema", 1)
    if version != SCHEMA:
        name, preset = data.get("experiment", "<experiment>"), data.get("preset", "<preset>")
        newer = isinstance(version, int) and version > SCHEMA
        raise ResultsError(f"{where} has results schema {version}, this dl-repro reads schema {SCHEMA}; "
                           + ("update dl-repro" if newer else
                              f"run it again: python -m repro run {name} --preset {preset}"))
    for key, kind in (("experiment", str), ("preset", str), ("variants", dict), ("trials", list),
                      ("claims", list), ("params", dict)):
        _need(isinstance(data.get(key), kind), where, f"'{key}' is missing or not a {kind.__name__}")
    variants = {}
    for vid, v in data["variants"].items():
        at = f"{where}: variant '{vid}'"
        _need(isinstance(vid, str) and bool(ID_PATTERN.match(vid)), at, "not a variant id")
        _need(isinstance(v, dict), at, "not an object")
        for key, kind in (("label", str), ("group", str), ("metric", str), ("config", dict), ("aggregate", dict)):
            _need(isinstance(v.get(key), kind), at, f"'{key}' is missing or not a {kind.__name__}")
        reference = v.get("reference")
        _need(reference is None or isinstance(reference, dict), at, "'reference' is not an object")
        try:
            reference = Reference.from_json(reference) if reference else None
            if reference is not None:
                _need(_is_number(reference.low) and _is_number(reference.high), at, "reference low/high not numbers")
        except TypeError as err:
            raise ResultsError(f"{at}: malformed reference ({err})") from None
        variants[vid] = VariantResult(vid, v["label"], v["group"], v["metric"], v["config"], reference,
                                      list(v.get("changed") or []), v["aggregate"])
    for i, t in enumerate(data["trials"]):
        trial = _parse_trial(t, f"{where}: trial {i}")
        _need(trial.variant in variants, f"{where}: trial {i}", f"names an unknown variant '{trial.variant}'")
        variants[trial.variant].trials.append(trial)
    claims = [_parse_claim(c, f"{where}: claim {i}") for i, c in enumerate(data["claims"])]
    extras = data.get("extras") or {}
    _need(isinstance(extras, dict), where, "'extras' is not an object")
    return Run(data["experiment"], str(data.get("title") or data["experiment"]), data["preset"], data["params"],
               dict(data.get("forced") or {}), int(data.get("seeds") or 0), int(data.get("first_seed") or 0),
               data.get("condition"), dict(data.get("env") or {}), variants, extras, claims,
               float(data["wall_time"]) if _is_number(data.get("wall_time")) else math.nan,
               int(data.get("resumed_trials") or 0), Path(where) if where != "results" else None)


TRIAL_KINDS = {"variant": str, "seed": int, "config": dict, "key": str, "layers": list, "status": str,
               "history": list, "batch_loss": list, "post_update_loss": list, "summary": dict}


def _parse_trial(t, at: str) -> Trial:
    _need(isinstance(t, dict), at, "not an object")
    for key, kind in TRIAL_KINDS.items():
        _need(isinstance(t.get(key), kind) and not isinstance(t.get(key), bool), at,
              f"'{key}' is missing or not a {kind.__name__}")
    _need(t["status"] in STATUSES, at, f"status '{t['status']}' is not one of {', '.join(STATUSES)}")
    _need(all(isinstance(p, dict) and _is_number(p.get("step")) for p in t["history"]), at,
          "an evaluation point without a step")
    _need(all(_is_number(v) for v in t["batch_loss"]), at, "a batch loss that is not a number")
    _need(all(_is_number(v, allow_none=True) or isinstance(v, bool) for v in t["summary"].values()), at,
          "a summary value that is not a number")
    for key in ("components", "numerics"):
        _need(isinstance(t.get(key) or {}, dict), at, f"'{key}' is not an object")
    _need(isinstance(t.get("device") or "", str), at, "'device' is not text")
    return Trial(t["variant"], t["seed"], t["config"], t["key"], t["layers"], t["status"], t.get("diverged_at"),
                 t["history"], t["batch_loss"], t["post_update_loss"], t["summary"],
                 float(t["wall_time"]) if _is_number(t.get("wall_time")) else math.nan,
                 dict(t.get("components") or {}), str(t.get("device", "")), dict(t.get("numerics") or {}))


def _parse_claim(c, at: str) -> Claim:
    _need(isinstance(c, dict), at, "not an object")
    for key, kind in (("id", str), ("kind", str), ("statement", str), ("bound", str)):
        _need(isinstance(c.get(key), kind), at, f"'{key}' is missing or not a {kind.__name__}")
    _need(c["kind"] in CLAIM_KINDS, at, f"kind '{c['kind']}' is not one of {', '.join(CLAIM_KINDS)}")
    _need(_is_number(c.get("measured"), allow_none=True) or isinstance(c.get("measured"), bool), at,
          "'measured' is not a number")
    _need(isinstance(c.get("holds"), bool), at, "'holds' is not true or false")
    u = c.get("uncertainty")
    _need(u is None or (isinstance(u, dict) and _is_number(u.get("n"))
                        and all(_is_number(u.get(k), allow_none=True) for k in ("support", "spread", "seeds_needed"))),
          at, "'uncertainty' is malformed")
    for key in ("detail", "needs"):
        _need(isinstance(c.get(key, ""), str), at, f"'{key}' is not text")
    known = {f.name for f in fields(Claim)}
    try:
        return Claim(**{k: v for k, v in c.items() if k in known})
    except ValueError as err:
        raise ResultsError(f"{at}: {err}") from None
