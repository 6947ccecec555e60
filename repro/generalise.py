"""Do the phenomena generalise? Every experiment's phenomenon claims, judged again under other setups.

A condition changes every variant of an experiment in the same way (another dataset, hidden widths
x2, batch size halved or doubled with the learning rate and the number of iterations unchanged) or
draws a fresh block of seeds. Each (experiment, condition) is an ordinary run of the experiment,
saved as one: results/generalise/<condition>/<experiment>/<preset>.json, its trials under
runs/generalise/<condition>/ for TensorBoard, so it resumes and uses the executor as experiments do.

The matrix, results/generalise/<preset>.json, is built from those files alone: every claim of kind
PHENOMENON (repro/claims.py) with its verdict and value under each condition. Figures (tied to the
reference setup) and analytic claims (no condition reaches them) are judged at the reference only.
"""
from __future__ import annotations

import json
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .claims import FAILS, HOLDS, NOT_JUDGED, PHENOMENON, verdict
from .config import ConfigError, TrialConfig
from .errors import ReproError
from .layout import Layout
from .results import ResultsError, Run, load
from .store import write_json

NOT_APPLICABLE, NOT_RUN = "not applicable", "not run"


@dataclass(frozen=True)
class Condition:
    name: str
    label: str                                   # the matrix's column header
    description: str
    change: Callable[[TrialConfig], TrialConfig] | None = None   # applied to every variant's config
    first_seed: int = 0


def _dataset(name: str):
    return lambda c: c.replace(dataset=name) if c.dataset == "mnist" else c


CONDITIONS = {c.name: c for c in (
    Condition("reference", "reference", "the experiment's own setup: MNIST, its widths and batch sizes, seeds 0, 1, ..."),
    Condition("fashion-mnist", "Fashion-MNIST", "every MNIST variant on Fashion-MNIST (same image size, ten classes, "
              "harder); CIFAR-10 variants unchanged", _dataset("fashion-mnist")),
    Condition("widths-x2", "widths ×2", "every hidden fully connected layer twice as wide (conv channels unchanged)",
              lambda c: c.replace(widths=tuple(2 * w for w in c.widths))),
    Condition("batch-half", "batch ÷2", "batch size halved; learning rate and iterations unchanged, so half the "
              "examples are seen", lambda c: c.replace(batch_size=max(1, c.batch_size // 2))),
    Condition("batch-double", "batch ×2", "batch size doubled; learning rate and iterations unchanged, so twice the "
              "examples are seen", lambda c: c.replace(batch_size=2 * c.batch_size)),
    Condition("fresh-seeds", "fresh seeds", "the reference setup with seeds 100, 101, ... (weights, batch order, "
              "dropout masks)", first_seed=100),
)}


def parse_conditions(text: str | None) -> list[Condition]:
    if not text:
        return list(CONDITIONS.values())
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in CONDITIONS]
    if unknown or not names:
        raise ConfigError(f"--conditions {text}: choose from {', '.join(CONDITIONS)}")
    return [CONDITIONS[n] for n in names]


def parse_experiments(text: str | None) -> list[str]:
    """The experiments named, or every section of the notes: the paper experiments reproduce one
    paper's own setup, so they are left out unless named."""
    from .runner import experiment_names, paper_of
    if not text:
        return [n for n in experiment_names() if paper_of(n) is None]
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in experiment_names()]
    if unknown or not names:
        raise ConfigError(f"--experiments {text}: unknown '{(unknown or [text])[0]}'; choose from "
                          f"{', '.join(experiment_names())}")
    return names


def untouched_variants(experiment: str, preset: str, condition: Condition) -> tuple[list[str], int]:
    """The variants of ``experiment`` whose config ``condition`` leaves as it is, and how many there are."""
    from .runner import build_variants, load_experiment, resolve
    module = load_experiment(experiment)
    params, _ = resolve(module, preset, {})
    before = build_variants(module, params, {})
    if condition.change is None:
        return [], len(before)
    return [v.id for v in before if condition.change(v.config) == v.config], len(before)


def why_not_applicable(experiment: str, preset: str, condition: Condition) -> str | None:
    """Why ``condition`` cannot test ``experiment`` (it changes none of its variants), or None."""
    untouched, n = untouched_variants(experiment, preset, condition)
    return "it changes none of this experiment's variants" if n and len(untouched) == n else None


def run(preset: str = "quick", conditions: list[Condition] | None = None, experiments: list[str] | None = None,
        *, seeds: int | None = None, device: str = "auto", layout: Layout = Layout(), workers: int | None = None,
        progress: bool = True, resume: bool = False, executor: str = "local", address: str | None = None,
        sets: dict | None = None, log=print) -> dict:
    """Run every experiment under every condition, then write and return the matrix. ``sets``: --set
    values, applied to every run before the condition (runner.resolve).

    An experiment that crashes under one condition is reported and the others go on; the matrix
    lists the error. ``log`` gets one line per finished (experiment, condition)."""
    from .claims import count_text
    from .runner import run_experiment
    conditions = conditions or list(CONDITIONS.values())
    experiments = experiments or parse_experiments(None)
    started, errors = time.perf_counter(), {}
    for name in experiments:
        for condition in conditions:
            where = f"{name} / {condition.name}"
            why = why_not_applicable(name, preset, condition)
            if why:
                log(f"{where}: not applicable ({why})")
                continue
            try:
                results = run_experiment(name, preset, seeds=seeds, device=device, sets=sets or {},
                                         layout=layout.condition(condition.name), workers=workers,
                                         progress=progress, resume=resume, executor=executor, address=address,
                                         condition=condition)
            except ConfigError:
                raise  # a bad --device, --seeds or executor: the same for every run, so stop here
            except Exception as err:  # noqa: BLE001 - one broken run must not hide the rest of the matrix
                errors[f"{name}/{condition.name}"] = f"{type(err).__name__}: {err}"
                # a ReproError (data that cannot be had) says all in one line; anything else is a bug
                trace = "" if isinstance(err, ReproError) else "\n" + traceback.format_exc(limit=3)
                log(f"{where}: ERROR {type(err).__name__}: {err}{trace}")
                continue
            phenomena = [c for c in results.claims if c.kind == PHENOMENON]
            log(f"{where}: {len(results.trials)} trials in {results.wall_time:.0f} s; phenomena: "
                f"{count_text(phenomena)}")
    # every condition and experiment with runs on disk, not only this call's: a --conditions run adds its columns
    matrix = build_matrix(layout, preset, parse_experiments(None))
    matrix["errors"] = errors
    matrix["wall_time"] = time.perf_counter() - started
    write_json(layout.matrix_file(preset), matrix)
    return matrix


def _read(path: Path) -> Run | None:
    """A condition's run, or None where there is none or it cannot be read (its cells then say "not run")."""
    try:
        return load(path)
    except ResultsError:
        return None


def _cell(claim: dict | None, why_not: str | None, ran: bool) -> dict:
    if why_not:
        return {"verdict": NOT_APPLICABLE, "why": why_not}
    if not ran:
        return {"verdict": NOT_RUN}
    if claim is None:
        return {"verdict": NOT_RUN, "why": "claim missing from this run's results (re-run it)"}
    cell = {"verdict": verdict(claim), "measured": claim.measured, "bound": claim.bound}
    return cell | ({"needs": claim.needs} if claim.needs else {})


def build_matrix(layout: Layout, preset: str, experiments: list[str],
                 conditions: list[Condition] | None = None) -> dict:
    """The matrix from the runs on disk: each experiment's phenomenon claims x conditions."""
    conditions = conditions or list(CONDITIONS.values())
    out = {"preset": preset, "conditions": [{"name": c.name, "label": c.label, "description": c.description}
                                            for c in conditions], "experiments": {}}
    for name in experiments:
        runs = {c.name: _read(layout.condition(c.name).results_file(name, preset)) for c in conditions}
        why_not = {c.name: why_not_applicable(name, preset, c) for c in conditions}
        partial = {c.name for c in conditions if untouched_variants(name, preset, c)[0]}   # leaves some as they are
        listed = [r for r in runs.values() if r]
        if not listed:
            continue
        first = runs.get("reference") or listed[0]   # the reference run's wording and order
        by_id = {c: {claim.id: claim for claim in (r.claims if r else [])} for c, r in runs.items()}
        claims = []
        for claim in first.claims:
            if claim.kind != PHENOMENON:
                continue
            cells = {c.name: _cell(by_id[c.name].get(claim.id), why_not[c.name], runs[c.name] is not None)
                     for c in conditions}
            reference = cells.get("reference", {}).get("measured")
            for c in conditions:
                # where the condition leaves some variants as they are, a value repeated to the last bit
                # comes from those: the change never reached this claim (where it changes every variant,
                # the same value is an outcome, e.g. a net stuck on one class scores that class's share)
                value = cells[c.name].get("measured")
                if c.name in partial and value == reference and value is not None and value != round(value):
                    cells[c.name]["unchanged"] = True
            claims.append({"id": claim.id, "statement": claim.statement, "bound": claim.bound, "cells": cells})
        others = {kind: [c.id for c in first.claims if c.kind == kind] for kind in ("figure", "analytic")}
        out["experiments"][name] = {
            "title": first.title, "claims": claims, "reference_only": others,
            "runs": {c: {"path": str(r.path), "trials": len(r.trials), "wall_time": r.wall_time, "seeds": r.seeds,
                         "first_seed": r.first_seed, "git_commit": r.env.get("git_commit")}
                     for c, r in runs.items() if r}}
    return out


def read_matrix(layout: Layout, preset: str) -> dict | None:
    """The matrix file at ``preset``; None where there is none. A file of the wrong shape is refused in one
    line (a matrix is shared like any results file)."""
    path = layout.matrix_file(preset)
    try:
        matrix = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as err:
        raise ResultsError(f"cannot read {path} ({err}); run python -m repro generalise again") from None
    try:
        assert isinstance(matrix["preset"], str) and isinstance(matrix["experiments"], dict)
        assert all(isinstance(c["name"], str) and isinstance(c["label"], str) for c in matrix["conditions"])
        for e in matrix["experiments"].values():
            for claim in e["claims"]:
                assert isinstance(claim["statement"], str) and isinstance(claim["bound"], str)
                assert all(cell["verdict"] in SHORT for cell in claim["cells"].values())
    except (AssertionError, KeyError, TypeError, AttributeError):
        raise ResultsError(f"{path} is not a generalisation matrix; run python -m repro generalise again") from None
    return matrix


def failures(matrix: dict) -> list[tuple[str, dict, str, dict]]:
    """(experiment, claim, condition, cell) for every cell that fails."""
    return [(name, claim, cond, cell) for name, e in matrix["experiments"].items() for claim in e["claims"]
            for cond, cell in claim["cells"].items() if cell["verdict"] == FAILS]


def generalises(claim: dict) -> str:
    """'everywhere' when the claim holds under every condition that judged it beyond the reference,
    'reference only' when it holds at the reference and fails elsewhere, 'fails at the reference',
    or 'not checked' when no other condition judged it (a cell that repeats the reference's value,
    "unchanged", judged nothing new)."""
    cells = claim["cells"]
    ref = cells.get("reference", {}).get("verdict")
    beyond = [c["verdict"] for name, c in cells.items()
              if name != "reference" and c["verdict"] in (HOLDS, FAILS) and not c.get("unchanged")]
    if ref == FAILS:
        return "fails at the reference"
    if not beyond:
        return "not checked"
    return "reference only" if FAILS in beyond else "everywhere"


def beyond_reference(evidence: list[tuple[str, str]], matrix: dict | None) -> str:
    """The audit's column for a statement judged by ``evidence`` ((experiment, claim id) pairs): how
    its evidence claims fare beyond the reference: 'holds beyond the reference setup', 'holds only at
    the reference setup: ...' or 'not checked: ...'. (For a statement that does not hold, the claims
    are its refutation: then 'holds beyond' says the refutation does.)"""
    if not evidence:
        return "not checked: no evidence"
    if matrix is None:
        return "not checked: no generalise results at this preset (make exp-generalise)"
    found, failed = [], []
    for experiment, key in evidence:
        claim = next((c for c in matrix["experiments"].get(experiment, {}).get("claims", []) if c["id"] == key), None)
        if claim is None:
            continue
        found.append(claim)
        labels = {c["name"]: c["label"] for c in matrix["conditions"]}
        failed += [f"{key} under {labels.get(cond, cond)}: {cell['measured']:.3g} ({cell['bound']})"
                   for cond, cell in claim["cells"].items() if cond != "reference" and cell["verdict"] == FAILS]
    if not found:
        return "not checked: its evidence is figures or analytic checks"
    unjudged = [c["id"] for c in found if c["cells"].get("reference", {}).get("verdict") == NOT_JUDGED]
    if unjudged:
        return f"not checked: {', '.join(unjudged)} is not judged at this preset"
    if failed:
        return "holds only at the reference setup: fails " + "; ".join(failed)
    if all(generalises(c) == "not checked" for c in found):
        return "not checked: no condition beyond the reference was run"
    return "holds beyond the reference setup"


# ---- the printed matrix ----

SHORT = {HOLDS: "holds", FAILS: "FAILS", NOT_JUDGED: "not judged", NOT_APPLICABLE: "n/a", NOT_RUN: "-"}


def cell_text(cell: dict) -> str:
    if cell["verdict"] in (HOLDS, FAILS, NOT_JUDGED):
        return f"{SHORT[cell['verdict']]} {cell['measured']:.3g}" + (" =ref" if cell.get("unchanged") else "")
    return SHORT[cell["verdict"]]


def matrix_table(matrix: dict) -> str:
    from .tables import plural, text_table
    labels = [c["label"] for c in matrix["conditions"]]
    names = [c["name"] for c in matrix["conditions"]]
    rows = [("experiment", "claim", "bound", *labels)]
    for name, e in matrix["experiments"].items():
        rows += [(name, claim["id"], claim["bound"], *(cell_text(claim["cells"][n]) for n in names))
                 for claim in e["claims"]]
    lines = [text_table(rows), ""]
    bad = failures(matrix)
    claims = [c for e in matrix["experiments"].values() for c in e["claims"]]
    everywhere = sum(generalises(c) == "everywhere" for c in claims)
    lines.append(f"{plural(len(claims), 'phenomenon claim')} in {plural(len(matrix['experiments']), 'experiment')}; {everywhere} hold under "
                 f"every condition that judged them; {len(bad)} failing cells:")
    labels_of = dict(zip(names, labels))
    lines += [f"  [FAILS] {name}: {claim['statement']} under {labels_of[cond]}: measured {cell['measured']:.4g} "
              f"({cell['bound']})" for name, claim, cond, cell in bad]
    for key, error in matrix.get("errors", {}).items():
        lines.append(f"  [ERROR] {key}: {error}")
    return "\n".join(lines)
