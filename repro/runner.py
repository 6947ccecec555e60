"""Experiment x variant x seed -> trials; run them, aggregate across seeds, judge claims, save once.

What an experiment module provides is described in repro/experiment.py, with everything it may
use; this module finds experiments, resolves presets and --set, runs trials (for experiments and
sweeps alike: run_trials), and prints an experiment's table.
"""
from __future__ import annotations

import importlib
import os
import pkgutil
import platform
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import torch

from . import tb
from .claims import NOT_JUDGED, count_text, verdict
from .config import FIELDS, ConfigError, apply_overrides, parse_value
from .device import choose_device
from .numerics import policy_record
from .executor import TrialSpec, check_executor, default_workers, execute
from .experiment import Context, Variant, reference_status, stats
from .store import TrialStore, write_json
from .tables import format_measured, plural, text_table


def experiment_names() -> list[str]:
    import experiments
    return sorted(m.name for m in pkgutil.iter_modules(experiments.__path__) if not m.name.startswith("_"))


def load_experiment(name: str):
    names = experiment_names()
    if name not in names:
        raise ConfigError(f"unknown experiment '{name}'; choose from {', '.join(names)}")
    return importlib.import_module(f"experiments.{name}")


def paper_of(name: str):
    """The repro.experiment.Paper a paper experiment reproduces (its ``PAPER``), or None."""
    from .experiment import Paper
    paper = getattr(load_experiment(name), "PAPER", None)
    return paper if isinstance(paper, Paper) else None


def resolve(module, preset: str, sets: dict[str, str]) -> tuple[dict, dict]:
    """The preset's parameters with --set applied, and the config keys forced on every variant.

    The one rule for a --set key: a key the preset names is the experiment's parameter (``iters``
    in most experiments: the experiment applies it to the variants it shapes, as its preset does);
    any other config key is forced on every variant. A key that is neither is an error."""
    if preset not in module.PRESETS:
        raise ConfigError(f"unknown preset '{preset}' for {module.__name__.split('.')[-1]}; "
                          f"choose from {', '.join(module.PRESETS)}")
    params = dict(module.PRESETS[preset])
    forced = {}
    for key, text in sets.items():
        if key in params:
            params[key] = parse_value(key, text, params[key])
        elif key in FIELDS:
            forced[key] = parse_value(key, text)
        else:
            raise ConfigError(f"unknown key '{key}'; experiment parameters: {', '.join(sorted(params))}; "
                              f"config keys: {', '.join(FIELDS)}")
    return params, forced


def build_variants(module, params: dict, forced: dict, preset: str | None = None, change=None) -> list[Variant]:
    """The preset's variants with --set applied, then ``change`` (a function of one TrialConfig: a
    condition of ``python -m repro generalise``); each notes which config keys these moved off the
    preset as written (what its reference no longer describes)."""
    variants = module.variants(params)
    for v in variants:
        v.config = apply_overrides(v.config, forced)
        if change is not None:
            v.config = change(v.config)
    names = [v.name for v in variants]
    assert len(set(names)) == len(names), f"duplicate variant names in {module.__name__}"
    if preset is not None:
        as_written = {v.name: v.config for v in module.variants(dict(module.PRESETS[preset]))}
        for v in variants:
            base = as_written.get(v.name)
            v.changed = ([k for k in FIELDS if getattr(v.config, k) != getattr(base, k)] if base is not None
                         else ["the variant itself (added by --set)"])
    return variants


def aggregate(trials: list[dict]) -> dict:
    keys = [k for k, v in trials[0]["summary"].items() if not isinstance(v, bool)]
    out = {k: stats([t["summary"][k] for t in trials]) for k in keys}
    out["diverged"] = sum(t["status"] == "diverged" for t in trials)
    return out


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


def run_experiment(name: str, preset: str = "full", seeds: int | None = None, device: str = "auto",
                   sets: dict[str, str] | None = None, logdir: Path = Path("runs"),
                   results_dir: Path = Path("results"), workers: int | None = None,
                   progress: bool = True, resume: bool = False, executor: str = "local",
                   address: str | None = None, condition=None) -> dict:
    """Run (or, with ``resume``, finish) an experiment; returns the results dict it saved.

    ``executor``/``address``: where the trials run (repro.executor.execute). ``condition``: a
    repro.generalise.Condition, whose change applies to every variant and whose seeds are used."""
    check_executor(executor, address)
    module = load_experiment(name)
    params, forced = resolve(module, preset, sets or {})
    variants = build_variants(module, params, forced, preset, condition.change if condition else None)
    n_seeds = seeds if seeds is not None else params.get("seeds", 3)
    if n_seeds < 1:
        raise ConfigError(f"--seeds {n_seeds}: need at least one seed")
    device, device_choice = choose_device(device, [v.config for v in variants], len(variants) * n_seeds, workers)
    workers = workers or default_workers(device)
    exp_logdir = Path(logdir) / name / preset
    # Each (experiment, preset) owns its files: results/<exp>/<preset>.json, results/<exp>/<preset>/
    # (figures, finished trials) and runs/<exp>/<preset>/, so different runs never share a file.
    out_dir = Path(results_dir) / name / preset
    make_output_dirs(exp_logdir, out_dir)
    with TrialStore(out_dir / "trials", f"{name}/{preset}", resume) as store:
        return _run_locked(module, name, preset, params, forced, variants, device, n_seeds, workers,
                           exp_logdir, out_dir, store, progress, executor, address,
                           condition.first_seed if condition else 0, condition.name if condition else None,
                           device_choice)


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


def _run_locked(module, name, preset, params, forced, variants, device, n_seeds, workers,
                exp_logdir, out_dir, store, progress, executor="local", address=None, first_seed=0,
                condition=None, device_choice=None) -> dict:
    started = time.perf_counter()
    specs = [TrialSpec(config=v.config.to_dict(), seed=s, device=device,
                       logdir=str(tb.trial_dir(exp_logdir.parent.parent, name, preset, v.name, s)),
                       hparams={"variant": v.name, "group": v.group}, tag=v.name, keep_state=v.keep_state)
             for v in variants for s in range(first_seed, first_seed + n_seeds)]
    trial_results, resumed = run_trials(specs, store, workers, progress, f"{name}/{preset}", executor, address)
    by_variant = {v.name: [r for r in trial_results if r["tag"] == v.name] for v in variants}
    states = {}  # trained weights go to extras, never into the JSON
    for r in trial_results:
        if "state" in r:
            states.setdefault(r["tag"], []).append(r.pop("state"))
    results = {
        "experiment": name, "title": getattr(module, "TITLE", name), "preset": preset, "params": params,
        "forced": {k: list(v) if isinstance(v, tuple) else v for k, v in forced.items()},
        "seeds": n_seeds, "first_seed": first_seed, "condition": condition,
        "env": environment(device, workers, executor, device_choice),
        "variants": {v.name: {"group": v.group, "metric": v.metric, "config": v.config.to_dict(),
                              "reference": asdict(v.reference) if v.reference else None, "changed": v.changed,
                              "aggregate": aggregate(by_variant[v.name])} for v in variants},
        "trials": [{"variant": r.pop("tag"), **r} for r in trial_results],
    }
    ctx = Context(name, preset, device, out_dir, exp_logdir, n_seeds, states, by_variant)
    results["extras"] = module.extras(params, ctx) if hasattr(module, "extras") else {}
    results["claims"] = [c.to_dict() for c in module.claims(results)]
    results["wall_time"] = time.perf_counter() - started
    tb.write_dashboards(exp_logdir, name, preset, {v.name: v.group for v in variants}, by_variant)
    results["path"] = str(out_dir.parent / f"{preset}.json")
    results["resumed_trials"] = resumed
    write_json(out_dir.parent / f"{preset}.json", results)
    from .overview import log_overview  # matplotlib is imported only once the results are safe on disk
    log_overview(results, exp_logdir)
    return results


def execute_with_progress(specs: list[TrialSpec], workers: int, progress: bool, label: str,
                          on_done=None, executor: str = "local", address: str | None = None) -> list[dict]:
    from tqdm.auto import tqdm  # a widget in Jupyter (with ipywidgets), text elsewhere
    on_done = on_done or (lambda result: None)
    if not progress or not specs:
        return execute(specs, workers, on_done=on_done, executor=executor, address=address)
    if workers <= 1 and executor == "local":  # in-process: one bar per trial, advancing with its steps
        results = []
        for spec in specs:
            with tqdm(total=spec.config["iters"], desc=f"{spec.tag} seed{spec.seed}", leave=False,
                      file=sys.stderr) as bar:
                results += execute([spec], 1, step_progress=bar.update, on_done=on_done)
        return results
    where = f"ray {address}" if address else f"{workers} workers" + (" on ray" if executor == "ray" else "")
    with tqdm(total=len(specs), desc=f"{label} trials ({where})", file=sys.stderr) as bar:
        return execute(specs, workers, on_done=lambda r: (on_done(r), bar.update(1)), executor=executor,
                       address=address)


def summary_table(results: dict) -> str:
    """The printed table: each variant's metric beside its reference, then every claim's verdict."""
    rows = [("group", "variant", "metric", "measured mean ± sd (n)", "reference")]
    for name, v in results["variants"].items():
        ref, ref_text, _ = reference_status(v)
        metric = ref.metric if ref else v["metric"]
        rows.append((v["group"], name, metric, format_measured(v["aggregate"], metric), ref_text))
    lines = [text_table(rows), ""]
    for title, table in results.get("extras", {}).get("tables", {}).items():  # extras' own markdown tables
        lines += [title, "", table, ""]
    lines.append(f"claims: {count_text(results['claims'])}")
    for c in results["claims"]:
        needs = f"; not judged at this preset, needs {c['needs']}" if verdict(c) == NOT_JUDGED else ""
        lines.append(f"  [{verdict(c).upper()}] {c['statement']}: measured {c['measured']:.4g} ({c['bound']}){needs}")
    lines.append(f"\n{results['experiment']}/{results['preset']}: {plural(len(results['trials']), 'trial')} in "
                 f"{results['wall_time']:.1f} s on {results['env']['device']} ({plural(results['env']['workers'], 'worker')})"
                 f"; results in {results['path']}")
    return "\n".join(lines)
