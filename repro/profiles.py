"""`python -m repro profile`: components put through the phenomena of the notes that concern their kind,
beside the notes' own components on the same setup and seeds, with a verdict per probe in the notes' terms.

Each kind's probes are one experiment-like module, experiments/profile/<kind>.py: what it trains, what
each probe measures, and the bands of a probe's value that its verdicts name. The runner runs it as an
ordinary run named ``profile/<kind>``: results/profile/<kind>/<preset>.json, its trials in the store
(``--resume``), its TensorBoard dashboards under runs/profile/<kind>/<preset>/. The components
profiled are a preset parameter of that module (``PARAM``: activations, inits, norms, optimizers,
regularisers), the notes' own first.

A probe's value is one number per component: a mean over seeds, or a function of such means (a
difference to, or a ratio over, the notes' component it compares with: its ``anchor``). Each
(component, probe) is a claim, id ``<component id>-<verdict>``:
- a notes' component whose verdict the notes state (sigmoid vanishes, ReLU + He keeps its gradient,
  batch norm widens the stable band, SGD is the slowest of the book's four) claims that verdict, and
  the claim fails where the profile does not reproduce the notes;
- every other one claims the verdict its value has on all the seeds, decided once in ``extras`` so that
  the bootstrap's resamples (repro/uncertainty.py) judge that same claim: it holds on all the seeds by
  construction, and its interval over seeds, with the share of resamples in which it holds, say how
  firmly.
The scorecard (printed by the CLI, and the report's "Profiles") shows each claim's value with its 95%
interval (the runner's bootstrap over seeds; for a probe without training, the t-interval over its
random nets) and the verdict's words.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Callable

from .claims import ANALYTIC, PHENOMENON, Claim, at_least, at_most, between, count_text, failing
from .config import ConfigError, TrialConfig
from .experiment import mean_of
from .layout import PROFILE, Layout
from .results import Run, stats
from .runner import load_experiment, resolve, run_experiment
from .tables import md_table, md_text, plural, text_table


def kind_module(kind: str):
    """experiments/profile/<kind>.py: activation, init, norm, optimizer or regulariser."""
    return load_experiment(run_name(kind))


def run_name(kind: str) -> str:
    """The run's name, which is also where its files go (repro/layout.py): profile/<kind>."""
    return f"{PROFILE}/{kind}"


def component_id(name: str) -> str:
    """A component's name as the start of variant and claim ids: lower case, every other character '-'
    (``normal:0.01`` -> ``normal-0.01``, ``mypkg.opt:MyOpt`` -> ``mypkg.opt-myopt``)."""
    return re.sub(r"[^a-z0-9.]+", "-", name.lower()).strip("-.") or "component"


# ---- probes and verdicts: what a kind module declares ----

@dataclass(frozen=True)
class Verdict:
    slug: str                 # the claim id's ending: <component id>-<slug>
    words: str                # in the notes' terms: "vanishes like sigmoid"
    low: float = -math.inf    # the band [low, high] of the probe's value it names; the first band that
    high: float = math.inf    # holds a value is its verdict

    def holds(self, value: float) -> bool:
        return self.low <= value <= self.high


@dataclass(frozen=True)
class Measured:
    """What a probe's value is computed from: the run's trials by variant id (a bootstrap resample's, in
    ``claims``), its parameters and its extras (outputs without training, which no resample changes)."""
    params: dict
    trials: dict
    extras: dict

    def mean(self, variant: str, metric: str) -> float:
        return mean_of(self.trials[variant], metric)

    @classmethod
    def of(cls, run: Run) -> "Measured":
        return cls(run.params, {vid: v.trials for vid, v in run.variants.items()}, run.extras)


@dataclass(frozen=True)
class Probe:
    id: str
    title: str                         # the value in words: column heads and claim statements
    verdicts: tuple                    # Verdict bands, checked in order
    value: Callable                    # (Measured, component name) -> float: the value judged
    kind: str = PHENOMENON             # ANALYTIC: measured without training, on random nets (extras)
    anchor: str | None = None          # the notes' component the value compares with: not judged itself
    samples: Callable | None = None    # (Measured, name) -> per-seed or per-net values of what a cell shows
                                       # without a bootstrap: the anchor's own statistic, an ANALYTIC value
    anchor_shows: str = ""             # what the anchor's samples are ("its test accuracy")
    note: Callable | None = None       # (Measured, name) -> a few words beside the value (the rate chosen)
    digits: int = 3

    def verdict(self, value: float) -> Verdict | None:
        """The first band that holds ``value``; None where there is no value (every seed diverged)."""
        if value is None or math.isnan(value):
            return None
        return next((v for v in self.verdicts if v.holds(value)), None)

    def by_slug(self, slug: str) -> Verdict:
        found = [v for v in self.verdicts if v.slug == slug]
        if not found:
            raise KeyError(f"probe {self.id} has no verdict '{slug}' ({', '.join(v.slug for v in self.verdicts)})")
        return found[0]


def judge(module, params: dict, measured: Measured) -> dict:
    """{component: {probe id: verdict slug, or None without a value}} on every seed: what the claims of a
    component the notes give no verdict for state (``extras`` saves it; the resamples read it back)."""
    return {name: {probe.id: getattr(probe.verdict(probe.value(measured, name)), "slug", None)
                   for probe in module.probes(params) if name != probe.anchor}
            for name in params[module.PARAM]}


def _claim(probe: Probe, name: str, slug: str | None, value: float, noted: bool) -> Claim:
    who = f"{name} (the notes')" if noted else name
    cid = component_id(name)
    if slug is None:  # no value on any seed: nothing to judge
        return Claim(f"{cid}-{probe.id}", probe.kind, f"{who}: {probe.title}", math.nan, "condition", False,
                     needs="a seed that does not diverge")
    v = probe.by_slug(slug)
    statement = f"{who} {v.words}: {probe.title}"
    if math.isfinite(v.low) and math.isfinite(v.high):
        return between(f"{cid}-{slug}", probe.kind, statement, value, v.low, v.high)
    if math.isfinite(v.low):
        return at_least(f"{cid}-{slug}", probe.kind, statement, value, v.low)
    return at_most(f"{cid}-{slug}", probe.kind, statement, value, v.high)


def claims(results: Run, module) -> list[Claim]:
    """One claim per component and probe (the anchor's excepted): the notes' verdict where they state one,
    else the verdict found on every seed (``results.extras["verdicts"]``), judged on ``results``' seeds."""
    measured = Measured.of(results)
    found = results.extras["verdicts"]
    out = []
    for name in results.params[module.PARAM]:
        expected = module.REFERENCES.get(name, {})
        for probe in module.probes(results.params):
            if name != probe.anchor:
                out.append(_claim(probe, name, expected.get(probe.id, found[name][probe.id]),
                                  probe.value(measured, name), name in module.REFERENCES))
    return out


def validate(module, params: dict) -> str | None:
    """Why a kind module cannot profile ``params``' components: the notes' own must be there (verdicts
    compare with them), and no two components may share an id."""
    names = params[module.PARAM]
    missing = [n for n in module.REFERENCES if n not in names]
    if missing:
        return f"{module.PARAM}: the notes' {', '.join(missing)} must be profiled too (the verdicts compare with them)"
    ids = [component_id(n) for n in names]
    twins = sorted({n for n, i in zip(names, ids) if ids.count(i) > 1})
    if twins:
        return f"{module.PARAM}: {' and '.join(twins)} would share the id {component_id(twins[0])}; rename one"
    return None


# ---- running a profile ----

def parse(kind: str, texts: list[str]) -> list[str]:
    """The components named for ``kind`` (repeated flags, each comma-separated; none: the notes' own
    alone), each checked: a name that does not resolve is one ConfigError line."""
    module = kind_module(kind)
    names = list(dict.fromkeys(t.strip() for text in texts for t in text.split(",") if t.strip()))
    for name in names:
        TrialConfig().replace(**module.setting(name))  # resolves it (repro.components), or raises
    return names


def run(components: dict[str, list[str]], preset: str = "quick", *, seeds: int | None = None,
        device: str = "auto", sets: dict | None = None, layout: Layout = Layout(), workers: int | None = None,
        progress: bool = True, resume: bool = False, executor: str = "local", address: str | None = None,
        log: Callable = lambda line: None) -> dict[str, Run]:
    """Profile ``components`` ({kind: [names]}, kinds in the order to run them): each kind's run, the
    notes' components first, then these. Every name is checked before anything trains. ``sets`` as
    --set: a config key is set on every variant of every kind, the notes' components included."""
    if not components:
        raise ConfigError("name a component to profile: --activation, --init, --norm, --optimizer or --regulariser")
    chosen = {kind: parse(kind, names) for kind, names in components.items()}
    plans = {}
    for kind, names in chosen.items():  # every kind's preset, --set and components checked before any trains
        module = kind_module(kind)
        plans[kind] = {**(sets or {}), module.PARAM: tuple(dict.fromkeys([*module.REFERENCES, *names]))}
        resolve(module, preset, plans[kind])
    runs = {}
    for kind, kind_sets in plans.items():
        log(f"profile {kind} ({preset}): {', '.join(kind_sets[kind_module(kind).PARAM])}")
        runs[kind] = run_experiment(run_name(kind), preset, seeds=seeds, device=device, sets=kind_sets, layout=layout,
                                    workers=workers, progress=progress, resume=resume, executor=executor,
                                    address=address)
    return runs


# ---- the scorecard ----

@dataclass
class Cell:
    value: float | None
    interval: tuple | None       # 95% over seeds (bootstrap) or over random nets (t-interval)
    over: str                    # what the interval is over
    words: str                   # the verdict, or what an anchor's cell is
    expected: str | None = None  # the notes' verdict, where they state one
    holds: bool | None = None    # its claim's verdict (None: an anchor, or not judged)
    note: str = ""


def _ci(values: list[float]) -> tuple | None:
    ci = stats(values)["ci95"]
    return tuple(ci) if ci else None


def scorecard(run: Run) -> list[tuple[str, bool, list[Cell]]]:
    """(component, is the notes', a Cell per probe) per row: the notes' components first."""
    kind = run.experiment.rpartition("/")[2]
    module = kind_module(kind)
    probes = module.probes(run.params)
    measured = Measured.of(run)
    claims_by_id = {c.id: c for c in run.claims}
    rows = []
    for name in run.params[module.PARAM]:
        cells = []
        for probe in probes:
            note = probe.note(measured, name) if probe.note else ""
            if name == probe.anchor:
                values = probe.samples(measured, name)
                s = stats(values)
                cells.append(Cell(s["mean"], _ci(values), plural(s["n"], "seed") if len(values) > 1 else "",
                                  f"{probe.anchor_shows}: what the others are measured against", note=note))
                continue
            expected = module.REFERENCES.get(name, {}).get(probe.id)
            found = run.extras["verdicts"][name][probe.id]
            slug = expected or found
            claim = claims_by_id.get(f"{component_id(name)}-{slug}" if slug else f"{component_id(name)}-{probe.id}")
            value = claim.measured if claim else probe.value(measured, name)
            if probe.kind == ANALYTIC:
                samples = probe.samples(measured, name) if probe.samples else []
                interval, over = _ci(samples), plural(len(samples), "net") if samples else "exact"
            else:
                u = (claim.uncertainty or {}) if claim else {}
                interval = tuple(u["interval"]) if u.get("interval") else None
                over = f"{u['n']} seeds" if u.get("n") else ""
            words = probe.by_slug(found).words if found else "no value: every seed diverged"
            cells.append(Cell(value, interval, over, words, probe.by_slug(expected).words if expected else None,
                              claim.holds if claim and not claim.needs else None, note))
        rows.append((name, name in module.REFERENCES, cells))
    return rows


def _num(x: float | None, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if math.isfinite(x) and x == int(x) and abs(x) < 1e6:  # counts of steps, decades on a grid: as they are, not 2e+03
        return f"{x:.0f}"
    return f"{x:.{digits}g}"


def cell_value(cell: Cell, digits: int = 3) -> str:
    """A cell's value as the scorecard shows it: '0.0421 (0.0398 to 0.0445, 3 seeds); lr 0.01'."""
    text = _num(cell.value, digits)
    if cell.interval:
        text += f" ({_num(cell.interval[0], digits)} to {_num(cell.interval[1], digits)}, {cell.over})"
    elif cell.over and cell.value is not None:
        text += f" ({cell.over})" if cell.over == "exact" else f" ({cell.over}: too few for an interval)"
    return text + (f"; {cell.note}" if cell.note else "")


def cell_verdict(cell: Cell) -> str:
    if cell.expected is None:
        return cell.words
    mark = "as the notes say" if cell.holds else f"NOT as the notes say: {cell.expected}"
    return f"{cell.words} ({mark})"


def scorecard_text(run: Run) -> str:
    """The scorecard as the terminal shows it: one line per component and probe, then the claims' count."""
    kind = run.experiment.rpartition("/")[2]
    probes = kind_module(kind).probes(run.params)
    lines = [f"{run.title}: {run.preset} preset, {plural(run.seeds, 'seed')}", ""]
    rows = [("component", "probe", "measured (95% interval)", "verdict")]
    for name, noted, cells in scorecard(run):
        for k, (probe, cell) in enumerate(zip(probes, cells)):
            rows.append((f"{name}{' (notes)' if noted else ''}" if k == 0 else "", probe.title,
                         cell_value(cell, probe.digits), cell_verdict(cell)))
    lines += [text_table(rows), "", f"claims: {count_text(run.claims)}"]
    lines += [f"  [FAILS] {c.statement}: measured {c.measured:.4g} ({c.bound})" for c in failing(run.claims)]
    lines.append(f"{run_name(kind)}/{run.preset}: {plural(len(run.trials), 'trial')} in {run.wall_time:.1f} s; "
                 f"results in {run.path}")
    return "\n".join(lines)


def scorecard_markdown(run: Run) -> str:
    """The scorecard as a markdown table: a row per component, a column per probe."""
    kind = run.experiment.rpartition("/")[2]
    probes = kind_module(kind).probes(run.params)
    rows = [[f"**{md_text(name)}**{' (the notes)' if noted else ''}"]
            + [f"{md_text(cell_verdict(cell))}<br>{md_text(cell_value(cell, p.digits))}" for p, cell in zip(probes, cells)]
            for name, noted, cells in scorecard(run)]
    return md_table(["component"] + [md_text(p.title) for p in probes], rows)

