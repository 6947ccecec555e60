"""Experiment x variant x seed -> trials; run them, aggregate across seeds, judge claims, save once.

What an experiment module provides is described in repro/experiment.py, with everything it may
use; this module finds experiments, resolves presets and --set, runs trials (for experiments and
sweeps alike: run_trials), builds the run's repro.results.Run (the one writer of results files),
and prints an experiment's table.

A --set value's path: the CLI splits KEY=VALUE (config.parse_sets) -> ``resolve`` coerces it once to
the type of the preset's parameter or the config field (config.coerce; the Python API passes values,
not text) -> ``build_variants`` applies the forced keys to every variant (TrialConfig.replace
validates, once) -> each TrialSpec carries its TrialConfig to the executor -> engine.train.
"""
from __future__ import annotations

import importlib
import os
import pkgutil
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from . import tb
from .claims import ANALYTIC, NOT_JUDGED, count_text, verdict
from .config import FIELDS, ConfigError, apply_overrides, coerce
from .device import choose_device
from .executor import TrialSpec, check_executor, default_workers, execute, seed_groups
from .numerics import policy_record
from .experiment import Context, Variant
from .layout import PROFILE, Layout
from .results import Run, Trial, VariantResult, aggregate
from .store import TrialStore
from .tables import format_measured, plural, text_table
from .uncertainty import claim_text, claim_uncertainties


def experiment_names() -> list[str]:
    import experiments
    # a package (experiments/profile/: the probes of `repro profile`) holds modules that are not experiments
    return sorted(m.name for m in pkgutil.iter_modules(experiments.__path__)
                  if not m.name.startswith("_") and not m.ispkg)


def profile_kinds() -> list[str]:
    """The kinds of component `repro profile` has probes for: experiments/profile/<kind>.py."""
    import experiments
    return sorted(m.name for m in pkgutil.iter_modules([str(Path(experiments.__path__[0]) / PROFILE)]))


def load_experiment(name: str):
    """experiments/<name>.py; ``profile/<kind>``: experiments/profile/<kind>.py, a profile's probes
    (repro/profiles.py), run as an experiment whose files go under profile/<kind>."""
    if name.startswith(f"{PROFILE}/"):
        kind = name.partition("/")[2]
        if kind not in profile_kinds():
            raise ConfigError(f"no profile for components of kind '{kind}'; choose from {', '.join(profile_kinds())}")
        return importlib.import_module(f"experiments.{PROFILE}.{kind}")
    names = experiment_names()
    if name not in names:
        raise ConfigError(f"unknown experiment '{name}'; choose from {', '.join(names)}")
    return importlib.import_module(f"experiments.{name}")


def paper_of(name: str):
    """The repro.experiment.Paper a paper experiment reproduces (its ``PAPER``), or None."""
    from .experiment import Paper
    paper = getattr(load_experiment(name), "PAPER", None)
    return paper if isinstance(paper, Paper) else None


def resolve(module, preset: str, sets: dict) -> tuple[dict, dict]:
    """The preset's parameters with --set applied, and the config keys forced on every variant.

    The one rule for a --set key: a key the preset names is the experiment's parameter (``iters``
    in most experiments: the experiment applies it to the variants it shapes, as its preset does);
    any other config key is forced on every variant. A key that is neither is an error, and so are
    parameters the experiment's optional ``validate(params)`` finds it cannot judge (it returns why, in
    one line, or None): refused here, before anything trains. Values are text (the CLI) or Python
    values (the API), coerced here once (config.coerce)."""
    if preset not in module.PRESETS:
        raise ConfigError(f"unknown preset '{preset}' for {module.__name__.split('.')[-1]}; "
                          f"choose from {', '.join(module.PRESETS)}")
    params = dict(module.PRESETS[preset])
    forced = {}
    for key, value in sets.items():
        if key in params:
            params[key] = coerce(key, value, params[key])
        elif key in FIELDS:
            forced[key] = coerce(key, value)
        else:
            raise ConfigError(f"unknown key '{key}'; experiment parameters: {', '.join(sorted(params))}; "
                              f"config keys: {', '.join(FIELDS)}")
    problem = module.validate(params) if hasattr(module, "validate") else None
    if problem:
        raise ConfigError(problem)
    return params, forced


def build_variants(module, params: dict, forced: dict, preset: str | None = None, change=None) -> list[Variant]:
    """The preset's variants with --set applied, then ``change`` (a function of one TrialConfig: a
    condition of ``python -m repro generalise``); each notes which config keys these moved off the
    preset as written (what its reference no longer describes)."""
    written = dict(module.PRESETS[preset]) if preset is not None else None
    as_written = module.variants(written) if written is not None else None
    # the preset's own parameters build the same variants: no second call to learn what changed
    variants = module.variants(params) if as_written is None or params != written else \
        [replace(v) for v in as_written]
    for v in variants:
        v.config = apply_overrides(v.config, forced)
        if change is not None:
            v.config = change(v.config)
    ids = [v.id for v in variants]
    assert len(set(ids)) == len(ids), f"duplicate variant ids in {module.__name__}"
    if as_written is not None:
        base_of = {v.id: v.config for v in as_written}
        for v in variants:
            base = base_of.get(v.id)
            v.changed = ([k for k in FIELDS if getattr(v.config, k) != getattr(base, k)] if base is not None
                         else ["the variant itself (added by --set)"])
    return variants


def environment(device: str, workers: int, executor: str = "local", device_choice: dict | None = None) -> dict:
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                cwd=Path(__file__).parent, timeout=5).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        commit = None
    return {"torch": torch.__version__, "python": platform.python_version(), "platform": platform.platform(),
            "device": device, "device_name": torch.cuda.get_device_name() if device.startswith("cuda") else
            platform.processor() or platform.machine(), "cpus": os.cpu_count(), "executor": executor,
            "workers": workers,
            "threads_per_worker": 1, "git_commit": commit,
            "numerics": policy_record(), "device_choice": device_choice}


def make_output_dirs(*folders: Path) -> None:
    for folder in folders:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise ConfigError(f"cannot write to {folder} ({err.strerror or err}); "
                              f"choose another with --logdir/--results")


@dataclass
class Plan:
    """One experiment's run, resolved: what trains, with which seeds, on what, and where it goes."""
    module: object
    name: str
    preset: str
    params: dict
    forced: dict
    variants: list
    device: str
    seeds: list
    workers: int
    layout: Layout
    executor: str = "local"
    address: str | None = None
    condition: str | None = None
    device_choice: dict | None = None   # how --device was resolved (repro.device.choose_device)

    def specs(self) -> list[TrialSpec]:
        return [TrialSpec(config=v.config, seed=s, device=self.device,
                          logdir=str(self.layout.trial_logdir(self.name, self.preset, v.id, s)),
                          hparams={"variant": v.label, "group": v.group}, tag=v.id, keep_state=v.keep_state)
                for v in self.variants for s in self.seeds]


def run_experiment(name: str, preset: str = "full", *, seeds: int | None = None, device: str = "auto",
                   sets: dict | None = None, layout: Layout = Layout(), workers: int | None = None,
                   progress: bool = True, resume: bool = False, executor: str = "local",
                   address: str | None = None, condition=None) -> Run:
    """Run (or, with ``resume``, finish) an experiment; returns the Run it saved.

    ``sets``: {key: text or value} as --set. ``executor``/``address``: where the trials run
    (repro.executor.execute). ``condition``: a repro.generalise.Condition, whose change applies to
    every variant and whose seeds are used."""
    check_executor(executor, address)
    module = load_experiment(name)
    params, forced = resolve(module, preset, sets or {})
    variants = build_variants(module, params, forced, preset, condition.change if condition else None)
    n_seeds = seeds if seeds is not None else params.get("seeds", 3)
    if n_seeds < 1:
        raise ConfigError(f"--seeds {n_seeds}: need at least one seed")
    device, device_choice = choose_device(device, [v.config for v in variants], len(variants) * n_seeds, workers)
    first = condition.first_seed if condition else 0
    plan = Plan(module, name, preset, params, forced, variants, device, list(range(first, first + n_seeds)),
                workers or default_workers(device), layout, executor, address,
                condition.name if condition else None, device_choice)
    # Each (experiment, preset) owns its files (repro/layout.py), so different runs never share a file;
    # the lock covers the run's results and its TensorBoard logs alike.
    make_output_dirs(layout.logdir(name, preset), layout.outputs(name, preset))
    with TrialStore(layout.trials(name, preset), f"{name}/{preset}", resume,
                    logdir=layout.logdir(name, preset)) as store:
        return _run(plan, store, progress)


def run_trials(specs: list[TrialSpec], store: TrialStore, workers: int, progress: bool, label: str,
               executor: str = "local", address: str | None = None) -> tuple[list[dict], int]:
    """Every spec's result in order, and how many came from the store: those it holds from an
    earlier run (``--resume``); the rest are trained now and saved to it the moment each finishes.
    Experiments and sweeps both run through here."""
    finished = [store.load(spec) for spec in specs]
    todo = [spec for spec, done in zip(specs, finished) if done is None]
    fresh = iter(execute_with_progress(todo, workers, progress, label, on_done=store.save,
                                       executor=executor, address=address))
    return [done if done is not None else next(fresh) for done in finished], len(specs) - len(todo)


def _run(plan: Plan, store: TrialStore, progress: bool) -> Run:
    started = time.perf_counter()
    name, preset, layout = plan.name, plan.preset, plan.layout
    results, resumed = run_trials(plan.specs(), store, plan.workers, progress, f"{name}/{preset}", plan.executor,
                                  plan.address)
    states = {}  # trained weights go to extras, never into the JSON
    for r in results:
        if "state" in r:
            states.setdefault(r["tag"], []).append(r.pop("state"))
    trials = [Trial.from_engine(r, r["tag"]) for r in results]
    by_variant = {v.id: [t for t in trials if t.variant == v.id] for v in plan.variants}
    run = Run(name, getattr(plan.module, "TITLE", name), preset, plan.params,
              {k: list(v) if isinstance(v, tuple) else v for k, v in plan.forced.items()}, len(plan.seeds),
              plan.seeds[0], plan.condition, environment(plan.device, plan.workers, plan.executor, plan.device_choice),
              {v.id: VariantResult(v.id, v.label, v.group, v.metric, v.config.to_dict(), v.reference, v.changed,
                                   aggregate(by_variant[v.id]), by_variant[v.id]) for v in plan.variants},
              resumed_trials=resumed)
    ctx = Context(name, preset, plan.device, layout.outputs(name, preset), layout.logdir(name, preset),
                  len(plan.seeds), states, by_variant, layout)
    run.extras = plan.module.extras(plan.params, ctx) if hasattr(plan.module, "extras") else {}
    if run.extras.get("figures"):  # saved by name inside the run's outputs: that is where readers look
        outputs = layout.outputs(name, preset).resolve()
        run.extras["figures"] = {title: Path(png).resolve().relative_to(outputs).as_posix()
                                 for title, png in run.extras["figures"].items()}
    run.claims = list(plan.module.claims(run))
    for claim_id, u in claim_uncertainties(run, plan.module.claims).items():
        claim = run.claim(claim_id)
        if claim.kind != ANALYTIC:  # no seeds involved: exact
            claim.uncertainty = u
    run.wall_time = time.perf_counter() - started
    tb.write_dashboards(layout, name, preset, run)
    run.save(layout.results_file(name, preset))
    from .overview import log_overview  # matplotlib is imported only once the results are safe on disk
    log_overview(run, layout.logdir(name, preset))
    return run


def execute_with_progress(specs: list[TrialSpec], workers: int, progress: bool, label: str,
                          on_done=None, executor: str = "local", address: str | None = None) -> list[dict]:
    from tqdm.auto import tqdm  # a widget in Jupyter (with ipywidgets), text elsewhere
    on_done = on_done or (lambda result: None)
    if not progress or not specs:
        return execute(specs, workers, on_done=on_done, executor=executor, address=address)
    if workers <= 1 and executor == "local" and len(seed_groups(specs)) == len(specs):
        # in-process, one trial at a time: one bar per trial, advancing with its steps
        results = []
        for spec in specs:
            with tqdm(total=spec.config.iters, desc=f"{spec.tag} seed{spec.seed}", leave=False,
                      file=sys.stderr) as bar:
                results += execute([spec], 1, step_progress=bar.update, on_done=on_done)
        return results
    where = f"ray {address}" if address else f"{workers} workers" + (" on ray" if executor == "ray" else "")
    with tqdm(total=len(specs), desc=f"{label} trials ({where})", file=sys.stderr) as bar:
        return execute(specs, workers, on_done=lambda r: (on_done(r), bar.update(1)), executor=executor,
                       address=address)


def summary_table(run: Run) -> str:
    """The printed table: each variant's metric beside its reference, then every claim's verdict."""
    rows = [("group", "variant", "metric", "measured mean ± sd (n)", "reference", "verdict: where one run of ours falls")]
    for v in run.variants.values():
        ref, ref_text, comparable = v.reference_status()
        metric = ref.metric if ref else v.metric
        rows.append((v.group, v.label, metric, format_measured(v.aggregate, metric), ref_text,
                     v.reference_verdict().text() if comparable else "-"))
    lines = [text_table(rows), ""]
    for title, table in run.extras.get("tables", {}).items():  # extras' own markdown tables
        lines += [title, "", table, ""]
    lines.append(f"claims: {count_text(run.claims)}")
    for c in run.claims:
        needs = f"; not judged at this preset, needs {c.needs}" if verdict(c) == NOT_JUDGED else ""
        lines.append(f"  [{verdict(c).upper()}] {c.statement}: {claim_text(c)}{needs}")
    lines.append(f"\n{run.experiment}/{run.preset}: {plural(len(run.trials), 'trial')} in "
                 f"{run.wall_time:.1f} s on {run.env['device']} ({plural(run.env['workers'], 'worker')})"
                 f"; results in {run.path}")
    return "\n".join(lines)
