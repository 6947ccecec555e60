"""Everything an experiment author uses, in one module.

An experiment is one file, experiments/<name>.py, that provides:

- ``TITLE`` and a docstring headed by what it shows, the setup, the reference and the runtime;
- ``PRESETS``: {"quick": {...}, "full": {...}}, each a dict of parameters with a ``seeds`` entry.
  ``--set KEY=VALUE`` with a key the preset names sets that parameter (the experiment decides
  which variants it shapes); any other config key is set on every variant (runner.resolve);
- ``variants(p) -> list[Variant]`` for a preset's parameters ``p``, each with a stable ``id`` (lower
  case, digits, '.', '+', '-': what claims, the store and TensorBoard's run names use) and a display
  ``label`` (free wording; defaults to the id);
- ``claims(results) -> list[Claim]`` for a repro.results.Run: ``results.agg(variant_id, metric)``,
  ``results.trials_of(variant_id)``, ``results.params``, ``results.extras``; each claim with a stable ``id`` (the audit of the notes cites it),
  its kind (PHENOMENON, FIGURE or ANALYTIC: repro/claims.py), and ``needs="..."`` where the run's
  setup cannot judge it (results["params"] says the length). A phenomenon is written so that it can
  hold on another dataset or setup: chance as ``chance_accuracy``/``chance_loss``, margins and ratios
  rather than absolute accuracies (those are figures);
- a paper experiment also sets ``PAPER`` (a Paper: the citation, the paper's claim, our setup, what
  differs, its headline result, the claims that measure it, and the paper's figure beside each of ours);
- optionally ``extras(p, ctx) -> dict`` for outputs that are not training curves: numbers, its own
  "tables" ({title: markdown}) and "figures" ({title: PNG path}), which the run and the report show.

The runner trains every variant over the seeds, aggregates, calls ``extras`` and then ``claims``
with the Run (repro/results.py) it saves as results/<name>/<preset>.json.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .claims import ANALYTIC, FIGURE, PHENOMENON, Claim, at_least, at_most, between, is_true
from .config import TrialConfig
from .engine import diverged
from .results import ID_PATTERN, MEASURED_HERE, Reference, Run, Trial, stats
from .setups import BOOK_NET, DEEP_CONVNET, OVERFIT_300
from .tables import format_stats, md_table

__all__ = [  # what an experiment imports from here
    "TrialConfig", "BOOK_NET", "OVERFIT_300", "DEEP_CONVNET",
    "Variant", "Reference", "Paper", "MEASURED_HERE", "book_loss_reference", "Context", "Run", "Trial",
    "Claim", "PHENOMENON", "FIGURE", "ANALYTIC", "at_least", "at_most", "between", "is_true",
    "chance_accuracy", "chance_loss",
    "stats", "mean_of", "seed_curve", "diverged", "blows_up_at", "ends_above_start",
    "format_stats", "md_table", "per_seed_table"]


def book_loss_reference(figure: float | None, iters: int = 2000) -> Reference | None:
    """The book's MNIST training figures (optimiser and init comparisons): one run's printed loss,
    i.e. the loss on each step's batch after its update, averaged over iterations 1000, 1100, ...,
    1900 of 2000. Trials record it with config post_loss_every=100 (summary key post_update_loss)."""
    if figure is None:
        return None
    return Reference("post_update_loss", figure, figure, "book", describes=(("iters", iters), ("post_loss_every", 100)))


@dataclass(frozen=True)
class Paper:
    """What a paper experiment (experiments/<author><year>.py sets ``PAPER``) reproduces: the report opens
    its section with ``claim``, ``setup`` and ``differs``, and its "Papers" section puts each of our figures
    beside the paper's description of its own. No number of the paper's is ever used as a result; the
    paper's words only describe."""
    citation: str          # authors, year, title
    says: str              # the paper's headline result, in its own terms
    headline: tuple        # ids of our claims that measure it
    figures: dict          # our figure's title (extras["figures"]) -> what the paper's figure shows
    claim: str = ""        # the paper's claim, in a few sentences
    setup: str = ""        # our setup
    differs: str = ""      # what differs from the paper, and what that does


@dataclass
class Variant:
    id: str                          # stable: claims, the trial store and TensorBoard refer to it
    config: TrialConfig
    group: str = ""
    reference: Reference | None = None
    metric: str = "final_test_acc"   # what the printed table shows for this variant
    keep_state: bool = False         # extras need its trained weights (ctx.states[variant][seed])
    label: str = ""                  # display text (tables, legends); the id where empty
    changed: list = field(default_factory=list)   # config keys --set moved off the preset (runner.build_variants)

    def __post_init__(self):
        if not ID_PATTERN.match(self.id):
            raise ValueError(f"variant id '{self.id}' must be lower case letters, digits, '.', '+' or '-'")
        self.label = self.label or self.id


@dataclass
class Context:
    """What ``extras`` may use: where to write figures and dashboards, the device, the preset."""
    experiment: str
    preset: str
    device: str
    out_dir: Path       # results/<experiment>/<preset>/: the experiment's figures go here
    logdir: Path        # runs/<experiment>/<preset>/
    seeds: int
    states: dict = field(default_factory=dict)   # variant id -> [trained state_dict per seed] (keep_state)
    trials: dict = field(default_factory=dict)   # variant id -> [Trial per seed]: histories for figures
    layout: object = None                        # the run's repro.layout.Layout (where other results are)

    def trained_models(self, variant: str) -> list:
        """The variant's networks as trained, one per seed, rebuilt from the weights it kept
        (``keep_state=True``), on the CPU in training mode."""
        from .nets import build_model
        config = TrialConfig.from_dict(self.trials[variant][0].config)
        models = []
        for state in self.states[variant]:
            model = build_model(config)
            model.load_state_dict(state)
            models.append(model)
        return models


# ---- statistics over seeds ----

def mean_of(trials: list[Trial], metric: str) -> float:
    """The mean over seeds of a summary value, over the seeds that have one; NaN where none has."""
    mean = stats([t.summary[metric] for t in trials])["mean"]
    return float("nan") if mean is None else mean


def chance_accuracy(results: Run, variant: str) -> float:
    """The accuracy of guessing (1 / classes) on the dataset the variant trained on."""
    from .data import num_classes
    return 1.0 / num_classes(results.variant(variant).config["dataset"])


def chance_loss(results: Run, variant: str) -> float:
    """The cross-entropy of a net that predicts every class alike: ln(classes)."""
    return math.log(1.0 / chance_accuracy(results, variant))


def seed_curve(trials: list[Trial], value):
    """A history value against the step over the seeds that finished (a diverged seed has no curve
    to average): (steps, mean, min, max), cut to the shortest history; None under two points.
    ``value``: a field of each evaluation point ("accuracy_test"), or a function of the point."""
    read = value if callable(value) else (lambda point: point[value])
    histories = [t.history for t in trials if t.finished]
    n = min((len(h) for h in histories), default=0)
    if n < 2:
        return None
    values = np.array([[read(p) for p in h[:n]] for h in histories], dtype=float)
    steps = np.array([p["step"] for p in histories[0][:n]])
    return steps, values.mean(0), values.min(0), values.max(0)


# ---- other views of a trial than the engine's "diverged" ----

def blows_up_at(trial: Trial, factor: float) -> int | None:
    """The first step whose batch loss exceeds ``factor`` x the first batch's (the loss before any
    update), or None: a blow-up the engine does not stop, since the loss is still finite."""
    losses = trial.batch_loss
    return next((step for step, loss in enumerate(losses, 1) if loss > factor * losses[0]), None)


def ends_above_start(trial: Trial, factor: float) -> bool:
    """The final training loss is above ``factor`` x the first batch's: training made things worse."""
    return trial.summary["final_train_loss"] > factor * trial.batch_loss[0]


# ---- tables an experiment prints ----

def per_seed_table(trials: dict, rows: list[tuple[str, float | None]], metric: str, figure: str,
                   ours: tuple[str, str] | None = None, labels: dict | None = None) -> str:
    """Markdown: each variant's ``metric`` per seed and over seeds, beside a published single-run
    ``figure`` column (rows: (variant id, figure or None)); ``ours``: (metric, label), a further column;
    ``labels``: variant id -> the text its row shows (default: the id)."""
    n = max(len(trials[vid]) for vid, _ in rows)
    head = ["variant", figure] + [f"seed {k}" for k in range(n)] + ["mean", "range"] + ([ours[1]] if ours else [])
    table = []
    for vid, published in rows:
        values = [t.summary[metric] for t in trials[vid]]
        s = stats(values)
        cells = [(labels or {}).get(vid, vid), "-" if published is None else f"{published:g}"]
        cells += [f"{v:.4f}" for v in values] + [""] * (n - len(values))
        cells += ["-", "-"] if s["n"] == 0 else [f"{s['mean']:.4f}", f"{s['min']:.4f}-{s['max']:.4f}"]
        if ours:
            o = stats([t.summary[ours[0]] for t in trials[vid]])
            cells.append("-" if o["n"] == 0 else f"{o['mean']:.4f}")
        table.append(cells)
    return md_table(head, table)
