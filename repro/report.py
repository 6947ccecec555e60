"""Results JSON -> reports/REPORT.md and PNG figures under reports/figures/; never re-trains.

Every experiment (``repro.runner.experiment_names()``) with results gets a section built from one
results file: the preset asked for, or else its newest. A section opens
with the claims' verdict (failing claims marked FAILS, and counted again at the top of the report;
a claim the run's setup cannot judge is shown as not judged and counted with neither),
then the setup, a table of reference beside measured mean ± sd (n seeds) with the difference and
a verdict, every claim with its measured value, and the figures: those the experiment drew itself,
then accuracy and loss curves with a band across seeds and the gradient flow (gradient norm per
layer, one line per variant, log scale). Experiments without results are listed as not run.
Where ``python -m repro generalise`` has run, a last section puts every phenomenon claim under every
condition (results/generalise/<preset>.json), with the notes' statements beside it.
"""
from __future__ import annotations

import json
import re
import shutil
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from . import claims, figures, generalise
from .store import REQUIRED_KEYS
from .config import FIELDS
from .experiment import reference_status
from .overview import curves_figure, gradient_flow_figure
from .runner import experiment_names, load_experiment, paper_of
from .tables import format_measured, md_cell, md_table, plural

# Markers that survive every Markdown renderer (GitHub strips inline styles): an emoji and a word.
FAILS = "❌ **FAILS**"
HOLDS = "✅ holds"
NOT_JUDGED = "⏸️ not judged"
MARKS = {claims.HOLDS: HOLDS, claims.FAILS: FAILS, claims.NOT_JUDGED: NOT_JUDGED}
# Shown in the setup line even at their default values: what a reader needs to picture the run.
SETUP_KEYS = ("dataset", "model", "widths", "activation", "init", "optimizer", "lr", "batch_size", "iters")


@dataclass
class Entry:
    """One experiment in the report: its results, or why there are none."""
    name: str
    results: dict | None = None
    path: Path | None = None
    problem: str = ""                              # "not run", or why the file could not be read
    other_presets: list[str] = field(default_factory=list)

    def failing(self) -> list[dict]:
        return claims.failing((self.results or {}).get("claims", []))


@dataclass
class Summary:
    path: Path
    entries: list[Entry]

    @property
    def run(self) -> list[Entry]:
        return [e for e in self.entries if e.results is not None]

    @property
    def claims(self) -> list[dict]:
        return [c for e in self.run for c in e.results.get("claims", [])]

    @property
    def failing(self) -> list[tuple[str, dict]]:
        return [(e.name, c) for e in self.run for c in e.failing()]


# ---- reading results ----

def load_entries(results_dir: Path, preset: str | None = None) -> list[Entry]:
    """One entry per experiment: the ``preset`` results file, or the newest one when none is asked for."""
    results_dir = Path(results_dir)
    entries = []
    for name in experiment_names():
        files = sorted((results_dir / name).glob("*.json"), key=lambda f: f.stat().st_mtime, reverse=True)
        chosen = [f for f in files if f.stem == preset] if preset else files[:1]
        entry = Entry(name, other_presets=[f.stem for f in files if f not in chosen])
        if not chosen:
            entry.problem = f"not run (preset {preset})" if preset else "not run"
        else:
            entry.path = chosen[0]
            try:
                results = json.loads(entry.path.read_text())
                missing = [k for k in REQUIRED_KEYS if k not in results]
                if missing:
                    raise ValueError(f"not an experiment's results (no {', '.join(missing)})")
                entry.results = results
            except (OSError, ValueError) as err:
                entry.problem = f"unreadable results file {entry.path}: {err}"
        entries.append(entry)
    return entries


def printed_precision(*values: float) -> float:
    """Half a unit in the last decimal a reference was written with: 2.302 stands for 2.3015-2.3025."""
    return 0.5 * 10.0 ** min(Decimal(repr(float(v))).as_tuple().exponent for v in values)


def compare(reference: dict, stats: dict | None) -> tuple[float | None, str]:
    """Measured mean against a reference range: (mean minus the nearest end of the range, verdict).
    The range counts as wide as the reference's printed digits allow."""
    if not stats or stats.get("n", 0) == 0 or stats["mean"] is None:
        return None, "no value (diverged)" if stats else "not measured"
    low, high, mean = reference["low"], reference["high"], stats["mean"]
    slack = printed_precision(low, high)
    if low - slack <= mean <= high + slack:
        return 0.0, "✓ within reference"
    difference = mean - (high if mean > high else low)
    side = "above" if difference > 0 else "below"
    if stats["min"] <= high and stats["max"] >= low:
        return difference, f"≈ mean {side}, seed range overlaps"
    return difference, f"✗ {side} reference"


# ---- formatting ----

def _number(x) -> str:
    if x is None:
        return "-"
    if isinstance(x, bool):
        return str(x)
    return f"{x:.4g}"


def _difference(difference: float | None, reference: dict) -> str:
    if difference is None:
        return "-"
    if difference == 0:
        return "0"
    middle = (reference["low"] + reference["high"]) / 2
    relative = f" ({difference / middle:+.0%})" if middle and abs(difference / middle) >= 0.005 else ""
    return f"{difference:+.3g}{relative}"


def _value(value) -> str:
    if isinstance(value, (list, tuple)):
        if len(value) > 2 and len(set(value)) == 1:
            return f"{value[0]}×{len(value)}"
        return "-".join(map(str, value)) or "none"
    if value is None:
        return "none"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def claims_verdict(listed: list[dict]) -> str:
    """The verdict line of a set of claims, marked: judged claims only are counted as holding or failing."""
    if not listed:
        return "no claims"
    return f"{FAILS if claims.failing(listed) else '✅'} **{claims.count_text(listed)}**"


def split_config(results: dict) -> tuple[dict, list[str]]:
    """Config values every variant shares, and the keys whose values differ between variants."""
    configs = [v["config"] for v in results["variants"].values()]
    keys = list(configs[0]) if configs else []
    varying = [k for k in keys if any(c.get(k) != configs[0].get(k) for c in configs)]
    shared = {k: configs[0][k] for k in keys if k not in varying}
    return shared, varying


def _setup(entry: Entry) -> list[str]:
    r = entry.results
    env = r.get("env", {})
    shared, varying = split_config(r)
    shown = {k: v for k, v in shared.items()
             if k in SETUP_KEYS or k not in FIELDS or _value(v) != _value(FIELDS[k].default)}
    params = {k: v for k, v in r.get("params", {}).items() if k != "seeds"}
    text = (f"**Setup.** {plural(len(r['trials']), 'trial')} ({plural(len(r['variants']), 'variant')} × "
            f"{plural(r.get('seeds'), 'seed')}) "
            f"in {r.get('wall_time', float('nan')):.0f} s on {env.get('device')} ({env.get('device_name')}, "
            f"{env.get('workers')} workers), torch {env.get('torch')}, git {env.get('git_commit')}.")
    if r.get("resumed_trials"):
        text += f" {r['resumed_trials']} trials were finished by an earlier run and resumed, so the time is partial."
    if params:
        text += " Parameters: " + ", ".join(f"{k}={_value(v)}" for k, v in params.items()) + "."
    if r.get("forced"):
        text += " Overridden with --set: " + ", ".join(f"{k}={_value(v)}" for k, v in r["forced"].items()) + "."
    if shown:
        text += " Every variant: " + ", ".join(f"{k}={_value(v)}" for k, v in shown.items()) + "."
    if varying:
        text += " Varies between variants: " + ", ".join(varying) + " (see *Variant configurations*)."
    return [text]


def results_table(results: dict) -> list[str]:
    """Each variant's reference beside its measured mean ± sd (n), with the difference and a verdict."""
    rows = []
    for name, v in results["variants"].items():
        ref, ref_text, comparable = reference_status(v)
        metric = ref.metric if ref else v["metric"]
        stats = v["aggregate"].get(metric)
        measured = format_measured(v["aggregate"], metric) if stats else "not measured"
        ref_text += f"; {ref.note}" if ref and ref.note else ""
        if comparable:
            difference, verdict = compare(v["reference"], stats)
            rows.append([v["group"], name, metric, ref_text, measured, _difference(difference, v["reference"]),
                         verdict])
        else:
            rows.append([v["group"], name, metric, ref_text, measured, "-", "no verdict"])
    header = ["group", "variant", "metric", "reference", "measured mean ± sd (n seeds)",
              "difference (to nearest end of range)", "verdict"]
    return md_table(header, rows).split("\n")


def claims_table(results: dict) -> list[str]:
    rows = [[MARKS[claims.verdict(c)], c["statement"], c.get("kind", "-"), _number(c["measured"]), c["bound"],
             (f"needs {c['needs']}; " if c.get("needs") else "") + c.get("detail", "")]
            for c in results.get("claims", [])]
    header = ["verdict", "claim", "kind", "measured", "bound", "detail"]
    return md_table(header, rows).split("\n") if rows else ["No claims."]


def _details(results: dict) -> list[str]:
    _, varying = split_config(results)
    rows = [[v["group"], name] + [_value(v["config"].get(k)) for k in varying]
            for name, v in results["variants"].items()]
    lines = ["<details><summary>Variant configurations and other measurements</summary>", ""]
    lines += md_table(["group", "variant"] + varying, rows).split("\n")
    scalars = {k: v for k, v in results.get("extras", {}).items() if isinstance(v, (int, float, str, bool))}
    if scalars:
        lines += ["", "Other measurements: " + ", ".join(f"`{k}` = {_number(v) if not isinstance(v, str) else v}"
                                                         for k, v in scalars.items())]
    return lines + ["", "</details>"]


def _own_figures(entry: Entry, out: Path, results_dir: Path) -> tuple[list[tuple[str, str]], list[str]]:
    """Copy the PNGs an experiment listed in extras["figures"]: (title, file name) pairs and missing paths."""
    listed = entry.results.get("extras", {}).get("figures", {}) or {}
    if isinstance(listed, list):
        listed = {Path(p).stem: p for p in listed}
    copied, missing = [], []
    for title, path in listed.items():
        # A path as written at run time, or the same file name in this --results folder.
        folder = results_dir / entry.name
        candidates = (Path(path), folder / entry.results["preset"] / Path(path).name, folder / Path(path).name)
        source = next((p for p in candidates if p.is_file()), None)
        if source is None:
            missing.append(str(path))
            continue
        target = f"{entry.name}/{source.name}"  # a folder per experiment: no clash with the report's own
        (out / "figures" / entry.name).mkdir(exist_ok=True)
        shutil.copyfile(source, out / "figures" / target)
        copied.append((title, target))
    return copied, missing


CURVES_CAPTION = ("Accuracy (left) and cross-entropy (right) against training steps, one row per group: "
                  "the line is the mean over seeds, the band spans the lowest to the highest seed; "
                  "solid = test set, dashed = training set.")
FLOW_CAPTION = ("Gradient flow: the norm of each layer's weight gradient at the start of training, input "
                "layer on the left, output layer on the right, log scale (geometric mean over seeds; band: "
                "min-max). A line that falls steeply to the left means the gradient vanishes on its way "
                "down: the lower layers barely learn. A flat line means every layer gets a similar share.")


def _figures(entry: Entry, out: Path, results_dir: Path, written: set[str], paper=None) -> list[str]:
    """The experiment's own figures first (it drew them for its phenomenon, in the order it listed
    them; a paper experiment's each beside the paper's description of its own), then the learning
    curves and the gradient flow every experiment gets."""
    lines = []
    copied, missing = _own_figures(entry, out, results_dir)
    for title, target in copied:
        written.add(target)
        theirs = paper.figures.get(title) if paper else None
        lines += [f"![{entry.name}: {title}](figures/{target})", "", f"*Ours: {title}.*" if theirs else f"*{title}*", ""]
        if theirs:
            lines += [f"> **The paper.** {theirs}", ""]
    for path in missing:
        lines += [f"Figure missing: `{path}` (listed by the experiment but not found; re-run it).", ""]
    for suffix, build, alt, caption in (("curves", curves_figure, "accuracy and loss", CURVES_CAPTION),
                                        ("gradient-flow", gradient_flow_figure, "gradient flow", FLOW_CAPTION)):
        fig = build(entry.results)
        if fig is None:
            continue
        target = f"{entry.name}-{suffix}.png"
        figures.save(fig, out / "figures" / target)
        written.add(target)
        lines += [f"![{entry.name}: {alt}](figures/{target})", "", f"*{caption}*", ""]
    return lines


# ---- the report ----

PAPER_PARTS = ("The paper's claim", "Our setup", "What differs")


def paper_parts(name: str) -> dict[str, str]:
    """The paragraphs of a paper experiment's docstring that start with PAPER_PARTS' labels."""
    doc = " ".join((load_experiment(name).__doc__ or "").split())
    labels = "|".join(re.escape(p) for p in PAPER_PARTS + ("Runtime",))
    return {m.group(1): m.group(2).strip() for m in re.finditer(rf"({labels}): (.*?)(?= (?:{labels}):|$)", doc)
            if m.group(1) in PAPER_PARTS}


def _section(entry: Entry, out: Path, results_dir: Path, written: set[str]) -> list[str]:
    r = entry.results
    paper = paper_of(entry.name)
    lines = [f'<a id="{entry.name}"></a>', "", f"## {entry.name}: {r.get('title', entry.name)}", "",
             f"{claims_verdict(r.get('claims', []))} · preset `{r['preset']}` · {plural(r.get('seeds'), 'seed')} · "
             f"`{entry.path}`"]
    if entry.other_presets:
        lines[-1] += " · also run: " + ", ".join(f"`{p}`" for p in entry.other_presets)
    lines.append("")
    for c in entry.failing():
        lines += [f"- {FAILS} {md_cell(c['statement'])}: measured {_number(c['measured'])}, needs {c['bound']}"]
    if entry.failing():
        lines.append("")
    if paper is not None:
        for part, text in paper_parts(entry.name).items():
            lines += [f"**{part}:** {text}", ""]
    elif r["preset"] != "full":
        lines += [f"> Preset `{r['preset']}` is shortened; the references describe the full setup, so "
                  "differences from them are expected here.", ""]
    lines += _setup(entry) + [""]
    lines += results_table(r) + ["", "**Claims**", ""] + claims_table(r) + [""]
    for title, table in r.get("extras", {}).get("tables", {}).items():  # tables an experiment made itself
        lines += [f"**{title}**", "", table, ""]
    lines += _figures(entry, out, results_dir, written, paper)
    lines += _details(r) + [""]
    return lines


def papers_section(entries: list[Entry]) -> list[str]:
    """Each paper beside our measurement of its headline result: the claims it names, as measured."""
    lines = ['<a id="papers"></a>', "", "## Papers", "",
             "The papers behind the notes, each reproduced at its own MNIST-scale setup (`make exp-papers`). "
             "The paper's result is described, never used as ours: every number here was measured by the run "
             "named in its section, whose budget and unstated settings are given there.", ""]
    rows = []
    for e in entries:
        paper = paper_of(e.name)
        if e.results is None:
            rows.append([f"{paper.citation}", paper.says, f"{e.problem}: `python -m repro run {e.name} --preset cpu`"])
            continue
        by_id = {c["id"]: c for c in e.results.get("claims", [])}
        ours = "<br>".join(f"{MARKS[claims.verdict(by_id[i])]} {md_cell(by_id[i]['statement'])}: "
                           f"{_number(by_id[i]['measured'])} ({by_id[i]['bound']})" if i in by_id else f"`{i}`: not measured"
                           for i in paper.headline)
        rows.append([f"[{paper.citation}](#{e.name})", paper.says, f"{ours}<br>preset `{e.results['preset']}`"])
    return lines + md_table(["paper", "what it reports", "what we measured"], rows).split("\n") + [""]


def _overview(entries: list[Entry]) -> list[str]:
    rows = []
    for e in entries:
        if e.results is None:
            hint = f"`python -m repro run {e.name}`" if e.problem.startswith("not run") else ""
            rows.append([e.name, "-", "-", "-", f"{e.problem}: {hint}" if hint else e.problem, "-"])
            continue
        r = e.results
        verdict = claims_verdict(r.get("claims", []))
        rows.append([f"[{e.name}](#{e.name})", r.get("title", ""), r["preset"], r.get("seeds"), verdict,
                     f"{r.get('wall_time', float('nan')):.0f} s"])
    return md_table(["experiment", "phenomenon", "preset", "seeds", "claims", "runtime"], rows).split("\n")


HOW_TO_READ = (
    "How to read this report: each section starts with its claims' verdict, then the setup, then a "
    "table of every variant's reference figure (book or course) beside our mean ± sd over n seeds, "
    "with the difference to the nearest end of the reference range and a verdict (✓ within, ≈ the "
    "seeds' range overlaps the reference, ✗ outside), then every claim with its measured value and its kind "
    "(phenomenon: a relation meant to hold beyond this setup; figure: a number tied to it; analytic: no "
    "training involved). The "
    "figures follow: those the experiment drew for its phenomenon, then accuracy and loss against "
    "steps (band: min-max over seeds), then the gradient flow (each layer's gradient norm, input to "
    "output, log scale: a line falling steeply to the left is a vanishing gradient).")


# ---- do the phenomena generalise? ----

def _matrix_cell(cell: dict) -> str:
    value = f" {_number(cell['measured'])}" if "measured" in cell else ""
    value += " (= reference)" if cell.get("unchanged") else ""
    if cell["verdict"] == claims.HOLDS:
        return "✅" + value
    if cell["verdict"] in MARKS:
        return MARKS[cell["verdict"]] + value
    return "n/a" if cell["verdict"] == generalise.NOT_APPLICABLE else "–"


def read_generalise(results_dir: Path, preset: str | None) -> dict | None:
    """The matrix at ``preset``, or the newest one when none is asked for."""
    files = sorted((Path(results_dir) / generalise.FOLDER).glob("*.json"), key=lambda f: f.stat().st_mtime,
                   reverse=True)
    chosen = [f for f in files if f.stem == preset] if preset else files[:1]
    return generalise.read_matrix(results_dir, chosen[0].stem) if chosen else None


REFERENCE_ONLY = {"figure": "figures", "analytic": "analytic checks"}
GENERALISE_INTRO = (
    "Each claim above is judged at the setting the notes or the book used. Here every **phenomenon** "
    "claim (an ordering, a ratio, a margin, \"stays at chance\") is judged again with one thing changed "
    "for every variant of its experiment; **figures** (numbers tied to the reference setup) and "
    "**analytic** checks (no training, so no condition reaches them) are judged at the reference only. "
    "A claim that fails under a condition is a finding about the phenomenon, not a bug: its bound is "
    "the one set at the reference, never retuned.")


def generalise_section(matrix: dict, audit_rows: list[dict] | None) -> list[str]:
    """The matrix (phenomenon claim x condition) per experiment, what fails where, and the notes'
    statements with the column 'beyond the reference setup'."""
    names = [c["name"] for c in matrix["conditions"]]
    label_of = {c["name"]: c["label"] for c in matrix["conditions"]}
    every = [c for e in matrix["experiments"].values() for c in e["claims"]]
    outcome = {k: sum(generalise.generalises(c) == k for c in every)
               for k in ("everywhere", "reference only", "fails at the reference", "not checked")}
    lines = ['<a id="generalise"></a>', "", "## Do the phenomena generalise?", "",
             f"Preset `{matrix['preset']}` · `python -m repro generalise --preset {matrix['preset']}` · "
             f"last run {matrix.get('wall_time', float('nan')):.0f} s", "", GENERALISE_INTRO, ""]
    lines += md_table(["condition", "what changes"],
                      [[c["label"], c["description"]] for c in matrix["conditions"]]).split("\n")
    reading = (f"**Reading.** Of {plural(len(every), 'phenomenon claim')} in "
               f"{plural(len(matrix['experiments']), 'experiment')}, {outcome['everywhere']} hold under every "
               f"condition that judged them, {outcome['reference only']} hold at the reference but fail under at "
               f"least one other condition, {outcome['fails at the reference']} fail at the reference itself, and "
               f"{outcome['not checked']} {'was' if outcome['not checked'] == 1 else 'were'} judged under no "
               "other condition.")
    judged = {n: [c["cells"][n]["verdict"] for c in every if c["cells"][n]["verdict"] in (claims.HOLDS, claims.FAILS)
                  and not c["cells"][n].get("unchanged")] for n in names}
    by_condition = [f"{label_of[n]} {v.count(claims.FAILS)} of {len(v)}" for n, v in judged.items() if v]
    if by_condition:
        reading += " Failing, by condition: " + "; ".join(by_condition) + "."
    unchanged = sum(bool(cell.get("unchanged")) for c in every for cell in c["cells"].values())
    if unchanged:
        reading += (f" {plural(unchanged, 'cell')} repeat the reference's value to the last digit, marked "
                    "(= reference): the condition did not reach what the claim measures (e.g. a CNN without "
                    "hidden fully connected layers under widths ×2), so they are counted with neither.")
    lines += ["", reading, ""]
    for name, claim, cond, cell in generalise.failures(matrix):
        lines.append(f"- {FAILS} {name}: {md_cell(claim['statement'])} under {label_of[cond]}: measured "
                     f"{_number(cell['measured'])}, needs {cell['bound']}")
    for key, error in matrix.get("errors", {}).items():
        lines.append(f"- {FAILS} {key} could not run: {md_cell(error)}")
    lines.append("")
    for exp, e in matrix["experiments"].items():
        lines += [f"**[{exp}](#{exp})**: {e['title']}", ""]
        rows = [[c["statement"], c["bound"]] + [_matrix_cell(c["cells"][n]) for n in names]
                for c in e["claims"]]
        lines += (md_table(["phenomenon claim", "bound"] + [label_of[n] for n in names], rows).split("\n")
                  if rows else ["No phenomenon claims."])
        rest = [f"{REFERENCE_ONLY[kind]} " + ", ".join(f"`{i}`" for i in ids) for kind, ids in e["reference_only"].items()
                if ids]
        if rest:
            lines += ["", "Judged at the reference only: " + "; ".join(rest) + "."]
        lines.append("")
    if audit_rows:
        rows = [[r["number"], r["statement"], r["kind"],
                 generalise.beyond_reference([tuple(x) for x in r["evidence_ids"]], matrix)]
                for r in audit_rows if r.get("evidence_ids")]
        lines += ["**The notes' statements beyond the reference setup**, judged by the same claims as in "
                  "[the audit](#claims_audit):", ""]
        lines += md_table(["#", "statement", "verdict at the reference", "its evidence beyond the reference setup"],
                          rows).split("\n") + [""]
    return lines


def _reported(entry: Entry, out: Path, results_dir: Path, written: set[str]) -> list[str]:
    """The entry's section, or, where its results file cannot be reported, a line that says why."""
    try:
        return _section(entry, out, results_dir, written)
    except (KeyError, TypeError, ValueError, IndexError) as err:
        # One malformed or outdated results file must not hide every other experiment.
        entry.problem = f"could not be reported ({type(err).__name__}: {err})"
        entry.results = None
        return [f'<a id="{entry.name}"></a>', "", f"## {entry.name}", "",
                f"{FAILS} {entry.problem}; results file `{entry.path}`.", ""]


def build_report(results_dir: Path = Path("results"), out: Path = Path("reports"),
                 preset: str | None = None) -> Summary:
    """Write out/REPORT.md and out/figures/*.png from the results files alone."""
    results_dir, out = Path(results_dir), Path(out)
    (out / "figures").mkdir(parents=True, exist_ok=True)
    entries = load_entries(results_dir, preset)
    summary = Summary(out / "REPORT.md", entries)
    written: set[str] = set()
    papers = [e for e in entries if paper_of(e.name) is not None]
    body = [line for e in summary.run if e not in papers for line in _reported(e, out, results_dir, written)]
    paper_body = [line for e in summary.run if e in papers for line in _reported(e, out, results_dir, written)]
    if papers:  # after the sections of the notes; its table reads the paper sections' outcome
        body += papers_section(papers) + paper_body
    failing = summary.failing
    not_run = [e.name for e in entries if e.problem.startswith("not run")]
    broken = [e for e in entries if e.problem and not e.problem.startswith("not run")]
    head = [f"**{len(summary.run)} of {len(entries)} experiments run** · "]
    head[0] += claims_verdict(summary.claims)
    if failing:
        head[0] += " (" + ", ".join(sorted({name for name, _ in failing})) + ")"
    if broken:
        head[0] += f" · {FAILS} {plural(len(broken), 'results file')} unreadable: " + ", ".join(e.name for e in broken)
    if not_run:
        head.append(f"Not run: {', '.join(not_run)} (`python -m repro run <name>`, or `make exp-all`).")
    lines = ["# dl-repro report", "",
             f"Built by `python -m repro report` from `{results_dir}/` on {time.strftime('%Y-%m-%d %H:%M')}; "
             "nothing is re-trained to draw it.", ""]
    matrix = read_generalise(results_dir, preset)
    audit = next((e.results.get("extras", {}).get("audit") for e in summary.run if e.name == "claims_audit"), None)
    if matrix:
        every = [c for e in matrix["experiments"].values() for c in e["claims"]]
        everywhere = sum(generalise.generalises(c) == "everywhere" for c in every)
        bad = generalise.failures(matrix)
        head.append(f"[Beyond the reference setup](#generalise) (preset `{matrix['preset']}`): {everywhere} of "
                    f"{plural(len(every), 'phenomenon claim')} hold under every condition that judged them; "
                    + (f"❌ {plural(len(bad), 'cell')} of the matrix {'fails' if len(bad) == 1 else 'fail'}, "
                       "findings listed there." if bad else "no cell of the matrix fails."))
    else:
        head.append("Beyond the reference setup: not checked yet (`make exp-generalise`).")
    lines += [h + "\n" for h in head] + _overview(entries) + ["", HOW_TO_READ, ""] + body
    if matrix:
        lines += generalise_section(matrix, audit)
    summary.path.write_text("\n".join(lines).rstrip() + "\n")
    for stale in (out / "figures").rglob("*.png"):
        if stale.relative_to(out / "figures").as_posix() not in written:
            stale.unlink()
    return summary
