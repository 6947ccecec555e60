"""Everything an experiment author uses, in one module.

An experiment is one file, experiments/<name>.py, that provides:

- ``TITLE`` and a docstring headed by what it shows, the setup, the reference and the runtime;
- ``PRESETS``: {"quick": {...}, "full": {...}}, each a dict of parameters with a ``seeds`` entry.
  ``--set KEY=VALUE`` with a key the preset names sets that parameter (the experiment decides
  which variants it shapes); any other config key is set on every variant (runner.resolve);
- ``variants(p) -> list[Variant]`` for a preset's parameters ``p``;
- ``claims(results) -> list[Claim]``, each with a stable ``id`` (the audit of the notes cites it),
  its kind (PHENOMENON, FIGURE or ANALYTIC: repro/claims.py), and ``needs="..."`` where the run's
  setup cannot judge it (results["params"] says the length). A phenomenon is written so that it can
  hold on another dataset or setup: chance as ``chance_accuracy``/``chance_loss``, margins and ratios
  rather than absolute accuracies (those are figures);
- a paper experiment also sets ``PAPER`` (a Paper: the citation, its headline result, the claims
  that measure it, and the paper's figure beside each of ours);
- optionally ``extras(p, ctx) -> dict`` for outputs that are not training curves: numbers, its own
  "tables" ({title: markdown}) and "figures" ({title: PNG path}), which the run and the report show.

The runner trains every variant over the seeds, aggregates, calls ``extras`` and then ``claims``
with the results dict it saves as results/<name>/<preset>.json.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .claims import ANALYTIC, FIGURE, PHENOMENON, Claim, at_least, at_most, between, is_true
from .config import TrialConfig
from .setups import BOOK_NET, DEEP_CONVNET, OVERFIT_300
from .tables import format_stats, md_table
from .engine import diverged

__all__ = [  # what an experiment imports from here
    "TrialConfig", "BOOK_NET", "OVERFIT_300", "DEEP_CONVNET",
    "Variant", "Reference", "Paper", "MEASURED_HERE", "book_loss_reference", "reference_status", "Context",
    "Claim", "PHENOMENON", "FIGURE", "ANALYTIC", "at_least", "at_most", "between", "is_true",
    "chance_accuracy", "chance_loss",
    "stats", "mean_of", "agg", "trials_of", "seed_curve", "diverged", "blows_up_at", "ends_above_start",
    "format_stats", "md_table", "per_seed_table"]

MEASURED_HERE = "measured here"  # a Reference's source for our own calibration figures: not a reference


@dataclass(frozen=True)
class Reference:
    metric: str          # a trial summary key, e.g. final_test_acc or post_update_loss
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


def book_loss_reference(figure: float | None, iters: int = 2000) -> Reference | None:
    """The book's MNIST training figures (optimiser and init comparisons): one run's printed loss,
    i.e. the loss on each step's batch after its update, averaged over iterations 1000, 1100, ...,
    1900 of 2000. Trials record it with config post_loss_every=100 (summary key post_update_loss)."""
    if figure is None:
        return None
    return Reference("post_update_loss", figure, figure, "book", describes=(("iters", iters), ("post_loss_every", 100)))


def reference_status(variant: dict) -> tuple[Reference | None, str, bool]:
    """A saved variant's Reference, the text that stands for it in tables, and whether the variant
    can be judged against it (a verdict); where not, the text says why (Reference.why_not_comparable)."""
    if not variant.get("reference"):
        return None, "no published figure", False
    ref = Reference(**{k: tuple(map(tuple, v)) if k == "describes" else v for k, v in variant["reference"].items()})
    why_not = ref.why_not_comparable(variant["config"], variant.get("changed", []))
    if why_not is None:
        return ref, ref.text(), True
    if ref.source == MEASURED_HERE:
        return ref, f"{why_not} (ours, measured here: {ref.value_text()})", False
    return ref, f"{ref.text()}, but the {why_not}", False


@dataclass(frozen=True)
class Paper:
    """What a paper experiment (experiments/<author><year>.py sets ``PAPER``) reproduces: the report's
    "Papers" section puts each of our figures beside the paper's description of its own. No number
    of the paper's is ever used as a result; ``says`` only describes."""
    citation: str          # authors, year, title
    says: str              # the paper's headline result, in its own terms
    headline: tuple        # ids of our claims that measure it
    figures: dict          # our figure's title (extras["figures"]) -> what the paper's figure shows


@dataclass
class Variant:
    name: str
    config: TrialConfig
    group: str = ""
    reference: Reference | None = None
    metric: str = "final_test_acc"   # what the printed table shows for this variant
    keep_state: bool = False         # extras need its trained weights (ctx.states[variant][seed])
    changed: list = field(default_factory=list)   # config keys --set moved off the preset (runner.build_variants)


@dataclass
class Context:
    """What ``extras`` may use: where to write figures and dashboards, the device, the preset."""
    experiment: str
    preset: str
    device: str
    out_dir: Path       # results/<experiment>/<preset>/
    logdir: Path        # runs/<experiment>/<preset>/
    seeds: int
    states: dict = field(default_factory=dict)   # variant -> [trained state_dict per seed] (keep_state)
    trials: dict = field(default_factory=dict)   # variant -> [trial result per seed]: histories for figures

    def trained_models(self, variant: str) -> list:
        """The variant's networks as trained, one per seed, rebuilt from the weights it kept
        (``keep_state=True``), on the CPU in training mode."""
        from .nets import build_model
        config = TrialConfig.from_dict(self.trials[variant][0]["config"])
        models = []
        for state in self.states[variant]:
            model = build_model(config)
            model.load_state_dict(state)
            models.append(model)
        return models


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


def mean_of(trials: list[dict], metric: str) -> float:
    """The mean over seeds of a summary value, over the seeds that have one; NaN where none has."""
    mean = stats([t["summary"][metric] for t in trials])["mean"]
    return float("nan") if mean is None else mean


def agg(results: dict, variant: str, metric: str = "final_test_acc", stat: str = "mean"):
    """An aggregate across seeds; NaN where no seed has a value (all diverged), so claims fail, not crash."""
    value = results["variants"][variant]["aggregate"][metric][stat]
    return float("nan") if value is None else value


def chance_accuracy(results: dict, variant: str) -> float:
    """The accuracy of guessing (1 / classes) on the dataset the variant trained on."""
    from .data import num_classes
    return 1.0 / num_classes(results["variants"][variant]["config"]["dataset"])


def chance_loss(results: dict, variant: str) -> float:
    """The cross-entropy of a net that predicts every class alike: ln(classes)."""
    return math.log(1.0 / chance_accuracy(results, variant))


def trials_of(results: dict, variant: str, finished: bool = False) -> list[dict]:
    """A variant's trials from a results dict, one per seed; ``finished``: only those that did not diverge."""
    return [t for t in results["trials"] if t["variant"] == variant and (not finished or t["status"] == "ok")]


def seed_curve(trials: list[dict], value):
    """A history value against the step over the seeds that finished (a diverged seed has no curve
    to average): (steps, mean, min, max), cut to the shortest history; None under two points.
    ``value``: a field of each evaluation point ("accuracy_test"), or a function of the point."""
    read = value if callable(value) else (lambda point: point[value])
    histories = [t["history"] for t in trials if t["status"] == "ok"]
    n = min((len(h) for h in histories), default=0)
    if n < 2:
        return None
    values = np.array([[read(p) for p in h[:n]] for h in histories], dtype=float)
    steps = np.array([p["step"] for p in histories[0][:n]])
    return steps, values.mean(0), values.min(0), values.max(0)


# ---- other views of a trial than the engine's "diverged" ----

def blows_up_at(trial: dict, factor: float) -> int | None:
    """The first step whose batch loss exceeds ``factor`` x the first batch's (the loss before any
    update), or None: a blow-up the engine does not stop, since the loss is still finite."""
    losses = trial["batch_loss"]
    return next((step for step, loss in enumerate(losses, 1) if loss > factor * losses[0]), None)


def ends_above_start(trial: dict, factor: float) -> bool:
    """The final training loss is above ``factor`` x the first batch's: training made things worse."""
    return trial["summary"]["final_train_loss"] > factor * trial["batch_loss"][0]


# ---- tables an experiment prints ----

def per_seed_table(trials: dict, rows: list[tuple[str, float | None]], metric: str, figure: str,
                   ours: tuple[str, str] | None = None) -> str:
    """Markdown: each variant's ``metric`` per seed and over seeds, beside a published single-run
    ``figure`` column (rows: (variant, figure or None)); ``ours``: (metric, label), a further column."""
    n = max(len(trials[name]) for name, _ in rows)
    head = ["variant", figure] + [f"seed {k}" for k in range(n)] + ["mean", "range"] + ([ours[1]] if ours else [])
    table = []
    for name, published in rows:
        values = [t["summary"][metric] for t in trials[name]]
        s = stats(values)
        cells = [name, "-" if published is None else f"{published:g}"] + [f"{v:.4f}" for v in values]
        cells += [""] * (n - len(values))
        cells += ["-", "-"] if s["n"] == 0 else [f"{s['mean']:.4f}", f"{s['min']:.4f}-{s['max']:.4f}"]
        if ours:
            o = stats([t["summary"][ours[0]] for t in trials[name]])
            cells.append("-" if o["n"] == 0 else f"{o['mean']:.4f}")
        table.append(cells)
    return md_table(head, table)
