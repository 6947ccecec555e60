"""Experiment x variant x seed -> trials; run them, aggregate across seeds, judge claims, save once.

An experiment module (experiments/<name>.py) provides:
- ``TITLE`` and a docstring (the phenomenon, setup, references, runtime);
- ``PRESETS``: {"quick": {...}, "full": {...}}, each a dict of parameters with a ``seeds`` entry;
- ``variants(p) -> list[Variant]`` for a preset's parameters ``p``;
- ``claims(results) -> list[Claim]``;
- optionally ``extras(p, ctx) -> dict`` for outputs that are not training curves.
"""
from __future__ import annotations

import importlib
import json
import math
import os
import pkgutil
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from . import tb
from .config import FIELDS, ConfigError, TrialConfig, apply_overrides, parse_value
from .executor import TrialSpec, check_executor, default_workers, execute


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
            return f"reference is for the preset's setup; --set changed {', '.join(changed)}"
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


@dataclass
class Variant:
    name: str
    config: TrialConfig
    group: str = ""
    reference: Reference | None = None
    metric: str = "final_test_acc"   # what the printed table shows for this variant
    keep_state: bool = False         # extras need its trained weights (ctx.states[variant][seed])
    changed: list = field(default_factory=list)   # config keys --set moved off the preset (build_variants)


@dataclass
class Context:
    """What ``extras`` may use: where to write figures and dashboards, the device, the preset."""
    experiment: str
    preset: str
    device: str
    out_dir: Path       # results/<experiment>/
    logdir: Path        # runs/<experiment>/<preset>/
    seeds: int
    states: dict = field(default_factory=dict)   # variant -> [trained state_dict per seed] (keep_state)
    trials: dict = field(default_factory=dict)   # variant -> [trial result per seed]: histories for figures


def experiment_names() -> list[str]:
    import experiments
    return sorted(m.name for m in pkgutil.iter_modules(experiments.__path__) if not m.name.startswith("_"))


def load_experiment(name: str):
    names = experiment_names()
    if name not in names:
        raise ConfigError(f"unknown experiment '{name}'; choose from {', '.join(names)}")
    return importlib.import_module(f"experiments.{name}")


def resolve(module, preset: str, sets: dict[str, str]) -> tuple[dict, dict]:
    """The preset's parameters with --set applied, and the config keys forced on every variant."""
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


def build_variants(module, params: dict, forced: dict, preset: str | None = None) -> list[Variant]:
    """The preset's variants with --set applied; each notes which config keys --set changed (what its
    reference no longer describes), against the same variant built from the preset as written."""
    variants = module.variants(params)
    for v in variants:
        v.config = apply_overrides(v.config, forced)
    names = [v.name for v in variants]
    assert len(set(names)) == len(names), f"duplicate variant names in {module.__name__}"
    if preset is not None:
        as_written = {v.name: v.config for v in module.variants(dict(module.PRESETS[preset]))}
        for v in variants:
            base = as_written.get(v.name)
            v.changed = ([k for k in FIELDS if getattr(v.config, k) != getattr(base, k)] if base is not None
                         else ["the variant itself (added by --set)"])
    return variants


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


def aggregate(trials: list[dict]) -> dict:
    keys = [k for k, v in trials[0]["summary"].items() if not isinstance(v, bool)]
    out = {k: stats([t["summary"][k] for t in trials]) for k in keys}
    out["diverged"] = sum(t["status"] == "diverged" for t in trials)
    return out


def environment(device: str, workers: int, executor: str = "local") -> dict:
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                cwd=Path(__file__).parent, timeout=5).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        commit = None
    return {"torch": torch.__version__, "python": platform.python_version(), "platform": platform.platform(),
            "device": device, "device_name": torch.cuda.get_device_name() if device.startswith("cuda") else
            platform.processor() or platform.machine(), "cpus": os.cpu_count(), "executor": executor,
            "workers": workers,
            "threads_per_worker": 1, "git_commit": commit}


def write_json(path: Path, payload: dict) -> None:
    """Atomic: a reader sees the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "w") as fh:
        json.dump(payload, fh, indent=1, default=_json_default)
    os.replace(tmp, path)


def _json_default(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def make_output_dirs(*folders: Path) -> None:
    for folder in folders:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise ConfigError(f"cannot write to {folder} ({err.strerror or err}); "
                              f"choose another with --logdir/--results")


def resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("--device cuda: no CUDA GPU is visible to torch here; use --device cpu or auto")
    if device != "cpu" and not device.startswith("cuda"):
        raise ConfigError(f"--device {device}: choose auto, cpu or cuda")
    return device


def run_experiment(name: str, preset: str = "full", seeds: int | None = None, device: str = "auto",
                   sets: dict[str, str] | None = None, logdir: Path = Path("runs"),
                   results_dir: Path = Path("results"), workers: int | None = None,
                   progress: bool = True, resume: bool = False, executor: str = "local",
                   address: str | None = None) -> dict:
    """Run (or, with ``resume``, finish) an experiment; returns the results dict it saved.

    ``executor``/``address``: where the trials run (repro.executor.execute)."""
    check_executor(executor, address)
    module = load_experiment(name)
    params, forced = resolve(module, preset, sets or {})
    variants = build_variants(module, params, forced, preset)
    device = resolve_device(device)
    n_seeds = seeds if seeds is not None else params.get("seeds", 3)
    if n_seeds < 1:
        raise ConfigError(f"--seeds {n_seeds}: need at least one seed")
    workers = workers or default_workers(device)
    exp_logdir = Path(logdir) / name / preset
    # Each (experiment, preset) owns its files: results/<exp>/<preset>.json, results/<exp>/<preset>/
    # (figures, finished trials) and runs/<exp>/<preset>/, so different runs never share a file.
    out_dir = Path(results_dir) / name / preset
    make_output_dirs(exp_logdir, out_dir)
    with TrialStore(out_dir / "trials", f"{name}/{preset}", resume) as store:
        return _run_locked(module, name, preset, params, forced, variants, device, n_seeds, workers,
                           exp_logdir, out_dir, store, progress, executor, address)


def _run_locked(module, name, preset, params, forced, variants, device, n_seeds, workers,
                exp_logdir, out_dir, store, progress, executor="local", address=None) -> dict:
    started = time.perf_counter()
    specs = [TrialSpec(config=v.config.to_dict(), seed=s, device=device,
                       logdir=str(tb.trial_dir(exp_logdir.parent.parent, name, preset, v.name, s)),
                       hparams={"variant": v.name, "group": v.group}, tag=v.name, keep_state=v.keep_state)
             for v in variants for s in range(n_seeds)]
    finished = {i: store.load(spec) for i, spec in enumerate(specs)}
    todo = [spec for i, spec in enumerate(specs) if finished[i] is None]
    fresh = iter(_execute_with_progress(todo, workers, progress, f"{name}/{preset}", on_done=store.save,
                                        executor=executor, address=address))
    trial_results = [finished[i] if finished[i] is not None else next(fresh) for i in range(len(specs))]

    by_variant = {v.name: [r for r in trial_results if r["tag"] == v.name] for v in variants}
    states = {}  # trained weights go to extras, never into the JSON
    for r in trial_results:
        if "state" in r:
            states.setdefault(r["tag"], []).append(r.pop("state"))
    results = {
        "experiment": name, "title": getattr(module, "TITLE", name), "preset": preset, "params": params,
        "forced": {k: list(v) if isinstance(v, tuple) else v for k, v in forced.items()},
        "seeds": n_seeds, "env": environment(device, workers, executor),
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
    results["resumed_trials"] = len(specs) - len(todo)
    write_json(out_dir.parent / f"{preset}.json", results)
    from .report import log_overview  # matplotlib is imported only once the results are safe on disk
    log_overview(results, exp_logdir)
    return results


def _execute_with_progress(specs: list[TrialSpec], workers: int, progress: bool, label: str,
                           on_done=None, executor: str = "local", address: str | None = None) -> list[dict]:
    from tqdm import tqdm
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


class TrialStore:
    """Finished trials saved one file each, the moment they finish, under a key of (config, seed).

    Also the run's lock: one run per (experiment, preset) at a time; a second one is refused."""

    def __init__(self, folder: Path, label: str, resume: bool):
        self.folder, self.label, self.resume = Path(folder), label, resume
        self.lock = self.folder.parent / "run.lock"

    def __enter__(self):
        try:
            fd = os.open(self.lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            holder = self.lock.read_text().strip() or "?"
            if _process_alive(holder):
                raise ConfigError(f"another run of {self.label} is in progress (pid {holder}); wait for it to "
                                  f"finish, or run another preset") from None
            self.lock.unlink(missing_ok=True)  # left by a run that was killed: stale
            fd = os.open(self.lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        if not self.resume and self.folder.exists():
            shutil.rmtree(self.folder)  # a fresh run starts from nothing; --resume keeps these
        self.folder.mkdir(parents=True, exist_ok=True)
        return self

    def __exit__(self, *exc):
        self.lock.unlink(missing_ok=True)

    def _path(self, spec: TrialSpec, suffix: str) -> Path:
        return self.folder / f"{TrialConfig.from_dict(spec.config).key(spec.seed)}{suffix}"

    def load(self, spec: TrialSpec) -> dict | None:
        path = self._path(spec, ".json")
        if not self.resume or not path.exists():
            return None
        try:
            result = json.loads(path.read_text())
            if spec.keep_state:
                result["state"] = torch.load(self._path(spec, ".pt"), weights_only=True)
        except (OSError, ValueError, RuntimeError):
            return None  # unreadable: train it again
        result["tag"] = spec.tag
        return result

    def save(self, result: dict) -> None:
        key = result["key"]
        if "state" in result:
            tmp = self.folder / f"{key}.pt.tmp"
            torch.save(result["state"], tmp)
            os.replace(tmp, self.folder / f"{key}.pt")
        write_json(self.folder / f"{key}.json", {k: v for k, v in result.items() if k != "state"})


def _process_alive(pid_text: str) -> bool:
    try:
        os.kill(int(pid_text), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


# ---- reading results: helpers for claims, tables and reports ----

def agg(results: dict, variant: str, metric: str = "final_test_acc", stat: str = "mean"):
    """An aggregate across seeds; NaN where no seed has a value (all diverged), so claims fail, not crash."""
    value = results["variants"][variant]["aggregate"][metric][stat]
    return float("nan") if value is None else value


def format_stats(s: dict, digits: int = 3) -> str:
    if not s or s["n"] == 0:
        return "diverged" if s is not None else "-"
    if 0 < abs(s["mean"]) < 10 ** (1 - digits):  # under two significant digits (gradient ratios): exponents
        return f"{s['mean']:.2e} ± {s['std']:.1e} (n={s['n']})"
    return f"{s['mean']:.{digits}f} ± {s['std']:.{digits}f} (n={s['n']})"


def per_seed_table(trials: dict, rows: list[tuple[str, float | None]], metric: str, figure: str,
                   ours: tuple[str, str] | None = None) -> str:
    """Markdown: each variant's ``metric`` per seed and over seeds, beside a published single-run
    ``figure`` column (rows: (variant, figure or None)); ``ours``: (metric, label), a further column."""
    n = max(len(trials[name]) for name, _ in rows)
    head = ["variant", figure] + [f"seed {k}" for k in range(n)] + ["mean", "range"] + ([ours[1]] if ours else [])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, published in rows:
        values = [t["summary"][metric] for t in trials[name]]
        s = stats(values)
        cells = [name, "-" if published is None else f"{published:g}"] + [f"{v:.4f}" for v in values]
        cells += [""] * (n - len(values))
        cells += ["-", "-"] if s["n"] == 0 else [f"{s['mean']:.4f}", f"{s['min']:.4f}-{s['max']:.4f}"]
        if ours:
            o = stats([t["summary"][ours[0]] for t in trials[name]])
            cells.append("-" if o["n"] == 0 else f"{o['mean']:.4f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def format_measured(aggregate: dict, metric: str) -> str:
    """A variant's metric as printed in tables: mean ± sd (n), with the count of diverged seeds."""
    measured = format_stats(aggregate[metric], 4 if "loss" in metric else 3)
    if aggregate.get("diverged"):
        measured += f", {aggregate['diverged']} diverged"
    return measured


def summary_table(results: dict) -> str:
    """The printed table: each variant's metric beside its reference, then every claim's verdict."""
    rows = [("group", "variant", "metric", "measured mean ± sd (n)", "reference")]
    for name, v in results["variants"].items():
        ref, ref_text, _ = reference_status(v)
        metric = ref.metric if ref else v["metric"]
        rows.append((v["group"], name, metric, format_measured(v["aggregate"], metric), ref_text))
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.append("")
    for title, table in results.get("extras", {}).get("tables", {}).items():  # extras' own markdown tables
        lines += [title, "", table, ""]
    n_hold = sum(c["holds"] for c in results["claims"])
    lines.append(f"claims: {n_hold} of {len(results['claims'])} hold")
    for c in results["claims"]:
        verdict = "HOLDS" if c["holds"] else "FAILS"
        lines.append(f"  [{verdict}] {c['statement']}: measured {c['measured']:.4g} ({c['bound']})")
    lines.append(f"\n{results['experiment']}/{results['preset']}: {len(results['trials'])} trials in "
                 f"{results['wall_time']:.1f} s on {results['env']['device']} ({results['env']['workers']} workers)"
                 f"; results in {results['path']}")
    return "\n".join(lines)
