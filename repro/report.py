"""Results JSON -> reports/REPORT.md and PNG figures under reports/figures/; never re-trains.

Every experiment (``repro.runner.experiment_names()``) with results gets a section built from one
results file: the preset asked for, or else its newest. A section opens
with the claims' verdict (failing claims marked FAILS, and counted again at the top of the report;
a claim the run's setup cannot judge is shown as not judged and counted with neither),
then the setup, a table of reference beside measured mean ± sd (n seeds) with the difference and
a verdict, every claim with its measured value, and the figures: those the experiment drew itself,
then accuracy and loss curves with a band across seeds and the gradient flow (gradient norm per
layer, one line per variant, log scale). Experiments without results are listed as not run.
Where ``python -m repro profile`` has run, a section "Profiles" gives each kind's scorecard
(results/profile/<kind>/<preset>.json). Where ``python -m repro generalise`` has run, a last section puts
every phenomenon claim under every condition (results/generalise/<preset>.json), with the notes'
statements beside it.
"""
from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import claims, figures, generalise, uncertainty
from .config import FIELDS, ConfigError, value_text
from .layout import Layout
from .overview import standard_figures
from .results import ResultsError, Run, load
from .runner import experiment_names, paper_of
from .tables import format_measured, md_code, md_table, md_text, plural

# Markers that survive every Markdown renderer (GitHub strips inline styles): an emoji and a word.
FAILS = "❌ **FAILS**"
HOLDS = "✅ holds"
NOT_JUDGED = "⏸️ not judged"
MARKS = {claims.HOLDS: HOLDS, claims.FAILS: FAILS, claims.NOT_JUDGED: NOT_JUDGED}
VERDICT_MARKS = {uncertainty.CONSISTENT: "✓", uncertainty.IN_MODE: "✓", uncertainty.OUTSIDE: "✗",
                 uncertainty.IN_NO_MODE: "✗", uncertainty.TOO_FEW: "…"}
# Shown in the setup line even at their default values: what a reader needs to picture the run.
SETUP_KEYS = ("dataset", "model", "widths", "activation", "init", "optimizer", "lr", "batch_size", "iters")


@dataclass
class Entry:
    """One experiment in the report: its results, or why there are none."""
    name: str
    results: Run | None = None
    path: Path | None = None
    problem: str = ""                              # "not run", or why the file could not be read
    other_presets: list[str] = field(default_factory=list)

    def failing(self) -> list:
        return claims.failing(self.results.claims if self.results else [])


@dataclass
class Summary:
    path: Path
    entries: list[Entry]

    @property
    def run(self) -> list[Entry]:
        return [e for e in self.entries if e.results is not None]

    @property
    def claims(self) -> list:
        return [c for e in self.run for c in e.results.claims]

    @property
    def failing(self) -> list[tuple[str, object]]:
        return [(e.name, c) for e in self.run for c in e.failing()]

    @property
    def unreadable(self) -> list[Entry]:
        return [e for e in self.entries if e.problem and not e.problem.startswith("not run")]


# ---- reading results ----

def load_entries(layout: Layout, preset: str | None = None) -> list[Entry]:
    """One entry per experiment: the ``preset`` results file, or the newest one when none is asked for,
    read through the validating loader (repro/results.py): results files are untrusted input."""
    entries = []
    for name in experiment_names():
        files = layout.presets_run(name)
        chosen = layout.find(name, preset) if preset else (files[0] if files else None)
        entry = Entry(name, other_presets=[f.stem for f in files if f != chosen])
        if chosen is None:
            entry.problem = f"not run (preset {preset})" if preset else "not run"
        else:
            entry.path = chosen
            try:
                entry.results = load(chosen)
                if entry.results.experiment != name:
                    raise ResultsError(f"{chosen}: holds results of '{entry.results.experiment}', not {name}")
            except ResultsError as err:
                entry.results, entry.problem = None, f"unreadable results file: {err}"
        entries.append(entry)
    return entries


# ---- formatting ----

def _number(x) -> str:
    if x is None:
        return "-"
    if isinstance(x, bool):
        return str(x)
    return f"{x:.4g}"


def _difference(reference, stats: dict | None) -> str:
    """Our mean minus the nearest end of the reference range (0 inside it, as wide as its printed digits)."""
    if not stats or not stats.get("n"):
        return "-"
    slack = uncertainty.printed_precision(reference.low, reference.high)
    mean = stats["mean"]
    if reference.low - slack <= mean <= reference.high + slack:
        return "0"
    difference = mean - (reference.high if mean > reference.high else reference.low)
    middle = (reference.low + reference.high) / 2
    relative = f" ({difference / middle:+.0%})" if middle and abs(difference / middle) >= 0.005 else ""
    return f"{difference:+.3g}{relative}"


def claims_verdict(listed: list) -> str:
    """The verdict line of a set of claims, marked: judged claims only are counted as holding or failing."""
    if not listed:
        return "no claims"
    return f"{FAILS if claims.failing(listed) else '✅'} **{claims.count_text(listed)}**"


def split_config(results: Run) -> tuple[dict, list[str]]:
    """Config values every variant shares, and the keys whose values differ between variants."""
    configs = [v.config for v in results.variants.values()]
    keys = list(configs[0]) if configs else []
    varying = [k for k in keys if any(c.get(k) != configs[0].get(k) for c in configs)]
    shared = {k: configs[0][k] for k in keys if k not in varying}
    return shared, varying


def _setup(entry: Entry) -> list[str]:
    r = entry.results
    env = r.env
    shared, varying = split_config(r)
    shown = {k: v for k, v in shared.items()
             if k in SETUP_KEYS or k not in FIELDS or value_text(v) != value_text(FIELDS[k].default)}
    params = {k: v for k, v in r.params.items() if k != "seeds"}
    text = (f"**Setup.** {plural(len(r.trials), 'trial')} ({plural(len(r.variants), 'variant')} × "
            f"{plural(r.seeds, 'seed')}) "
            f"in {r.wall_time:.0f} s on {env.get('device')} ({env.get('device_name')}, "
            f"{env.get('workers')} workers), torch {env.get('torch')}, git {env.get('git_commit')}.")
    if r.resumed_trials:
        text += f" {r.resumed_trials} trials were finished by an earlier run and resumed, so the time is partial."
    if params:
        text += " Parameters: " + ", ".join(f"{k}={value_text(v)}" for k, v in params.items()) + "."
    if r.forced:
        text += " Overridden with --set: " + ", ".join(f"{k}={value_text(v)}" for k, v in r.forced.items()) + "."
    if shown:
        text += " Every variant: " + ", ".join(f"{k}={value_text(v)}" for k, v in shown.items()) + "."
    if varying:
        text += " Varies between variants: " + ", ".join(varying) + " (see *Variant configurations*)."
    return [md_text(text)]


def results_table(results: Run) -> list[str]:
    """Each variant's reference beside its measured mean ± sd (n), with the difference and a verdict."""
    rows = []
    for v in results.variants.values():
        ref, ref_text, comparable = v.reference_status()
        metric = ref.metric if ref else v.metric
        stats = v.aggregate.get(metric)
        measured = format_measured(v.aggregate, metric) if stats else "not measured"
        ref_text += f"; {ref.note}" if ref and ref.note else ""
        cells = [md_text(v.group), md_text(v.label), md_text(metric), md_text(ref_text), measured]
        if comparable:
            judged = v.reference_verdict()
            rows.append(cells + [_difference(ref, stats), f"{VERDICT_MARKS[judged.verdict]} {judged.text()}"])
        else:
            rows.append(cells + ["-", "no verdict"])
    header = ["group", "variant", "metric", "reference", "measured mean ± sd (n seeds)",
              "difference (to nearest end of range)", "verdict: where one run of ours falls"]
    return md_table(header, rows).split("\n")


def claims_table(results: Run) -> list[str]:
    rows = [[MARKS[claims.verdict(c)] + (" (not settled)" if uncertainty.settled(c) is False else ""), md_text(c.statement),
             c.kind, _number(c.measured), md_text(c.bound), md_text(uncertainty.claim_text(c).partition("; ")[2] or "exact"),
             md_text((f"needs {c.needs}; " if c.needs else "") + c.detail)]
            for c in results.claims]
    header = ["verdict", "claim", "kind", "measured", "bound", "over seeds", "detail"]
    return md_table(header, rows).split("\n") if rows else ["No claims."]


def _details(results: Run) -> list[str]:
    _, varying = split_config(results)
    rows = [[md_text(v.group), md_text(v.label)] + [md_text(value_text(v.config.get(k))) for k in varying]
            for v in results.variants.values()]
    lines = ["<details><summary>Variant configurations and other measurements</summary>", ""]
    lines += md_table(["group", "variant"] + [md_text(k) for k in varying], rows).split("\n")
    scalars = {k: v for k, v in results.extras.items() if isinstance(v, (int, float, str, bool))}
    if scalars:
        lines += ["", "Other measurements: " + ", ".join(
            f"{md_code(k)} = {_number(v) if not isinstance(v, str) else md_text(v)}" for k, v in scalars.items())]
    return lines + ["", "</details>"]


def _figures(entry: Entry, out: Path, written: set[str], paper=None) -> list[str]:
    """The experiment's own figures first (it drew them for its phenomenon, in the order it listed
    them; a paper experiment's each beside the paper's description of its own), then the standard
    figures every experiment gets (repro.overview.STANDARD_FIGURES)."""
    lines = []
    listed = entry.results.extras.get("figures") or {}
    found = entry.results.figure_files()
    for title, source in found:
        target = f"{entry.name}/{source.name}"  # a folder per experiment: no clash with the report's own
        (out / "figures" / entry.name).mkdir(exist_ok=True)
        shutil.copyfile(source, out / "figures" / target)
        written.add(target)
        theirs = paper.figures.get(title) if paper else None
        lines += [f"![{entry.name}: {md_text(title)}](figures/{target})", "",
                  f"*Ours: {md_text(title)}.*" if theirs else f"*{md_text(title)}*", ""]
        if theirs:
            lines += [f"> **The paper.** {theirs}", ""]
    for title in [t for t in listed if t not in {title for title, _ in found}]:
        lines += [f"Figure missing: *{md_text(title)}* (listed by the experiment but not found in its results "
                  "folder; re-run it).", ""]
    for spec, fig in standard_figures(entry.results).items():
        target = f"{entry.name}-{spec.name}.png"
        figures.save(fig, out / "figures" / target)
        written.add(target)
        lines += [f"![{entry.name}: {spec.title}](figures/{target})", "", f"*{spec.caption}*", ""]
    return lines


# ---- the report ----

def paper_parts(paper) -> dict[str, str]:
    """The paper's claim, our setup and what differs, as a paper experiment's PAPER states them."""
    parts = {"The paper's claim": paper.claim, "Our setup": paper.setup, "What differs": paper.differs}
    return {label: text for label, text in parts.items() if text}


def _section(entry: Entry, out: Path, written: set[str]) -> list[str]:
    r = entry.results
    paper = paper_of(entry.name)
    lines = [f'<a id="{entry.name}"></a>', "", f"## {entry.name}: {md_text(r.title)}", "",
             f"{claims_verdict(r.claims)} · preset {md_code(r.preset)} · {plural(r.seeds, 'seed')} · "
             f"{md_code(entry.path)}"]
    if entry.other_presets:
        lines[-1] += " · also run: " + ", ".join(f"{md_code(p)}" for p in entry.other_presets)
    lines.append("")
    for c in entry.failing():
        lines += [f"- {FAILS} {md_text(c.statement)}: measured {_number(c.measured)}, needs {md_text(c.bound)}"]
    if entry.failing():
        lines.append("")
    if paper is not None:
        for part, text in paper_parts(paper).items():
            lines += [f"**{part}:** {text}", ""]
    elif r.preset != "full":
        lines += [f"> Preset {md_code(r.preset)} is shortened; the references describe the full setup, so "
                  "differences from them are expected here.", ""]
    lines += _setup(entry) + [""]
    lines += results_table(r) + ["", "**Claims**", ""] + claims_table(r) + [""]
    tables = r.extras.get("tables") or {}
    for title, table in (tables.items() if isinstance(tables, dict) else ()):  # tables the experiment made
        lines += [f"**{md_text(title)}**", "", md_text(table, keep_lines=True), ""]
    lines += _figures(entry, out, written, paper)
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
        by_id = {c.id: c for c in e.results.claims}
        ours = "<br>".join(f"{MARKS[claims.verdict(by_id[i])]} {md_text(by_id[i].statement)}: "
                           f"{_number(by_id[i].measured)} ({md_text(by_id[i].bound)})" if i in by_id
                           else f"`{i}`: not measured" for i in paper.headline)
        rows.append([f"[{paper.citation}](#{e.name})", paper.says, f"{ours}<br>preset {md_code(e.results.preset)}"])
    return lines + md_table(["paper", "what it reports", "what we measured"], rows).split("\n") + [""]


def _overview(entries: list[Entry]) -> list[str]:
    rows = []
    for e in entries:
        if e.results is None:
            hint = f"`python -m repro run {e.name}`" if e.problem.startswith("not run") else ""
            rows.append([e.name, "-", "-", "-", f"{e.problem}: {hint}" if hint else md_text(e.problem), "-"])
            continue
        r = e.results
        rows.append([f"[{e.name}](#{e.name})", md_text(r.title), md_text(r.preset), r.seeds, claims_verdict(r.claims),
                     f"{r.wall_time:.0f} s"])
    return md_table(["experiment", "phenomenon", "preset", "seeds", "claims", "runtime"], rows).split("\n")


HOW_TO_READ = (
    "How to read this report: each section starts with its claims' verdict, then the setup, then a "
    "table of every variant's reference figure (book or course) beside our mean ± sd over n seeds, "
    "with the difference to the nearest end of the reference range and a verdict. A published figure is "
    "one run of its source (a range: several runs), so the verdict asks whether one run of ours could "
    "have given it: ✓ *consistent with our distribution* when the figure lies in the 95% prediction "
    "interval of one new run of ours (mean ± t·sd·√(1 + 1/n)), ✗ *outside our distribution* when it does "
    "not, … *too few seeds to tell* under 3 seeds; where our seeds split into modes (some stuck at chance, "
    "others learning; some diverged) the verdict counts the modes and says whether the figure lies in "
    "one of them. Example: the book's SGD figure 0.249 beside our 0.232 ± 0.015 (n=3) is consistent "
    "(one run of ours: 0.158-0.306), although it lies above all three seeds. Then every claim with its "
    "kind (phenomenon: a relation meant to hold beyond this setup; figure: a number tied to it; "
    "analytic: no training involved) and its measured value with a 95% interval over resampled seeds and "
    "the share of resamples in which it holds; a claim whose interval straddles its bound is marked "
    "*not settled* with an estimate of the seeds that would settle it. The figures follow: those the "
    "experiment drew for its phenomenon, then accuracy and loss against steps (band: min-max over seeds), "
    "then the gradient flow (each layer's gradient norm, input to output, log scale: a line falling "
    "steeply to the left is a vanishing gradient).")


# ---- profiles of components (repro/profiles.py) ----

PROFILES_INTRO = (
    "Components put through the phenomena that concern their kind, beside the notes' own on the same setup "
    "and seeds (`python -m repro profile`). Each cell gives the verdict in the notes' terms, then the value "
    "it rests on with its 95% interval over seeds (for a probe without training: over random nets); where "
    "the notes state a verdict for their own component, the cell says whether the profile reproduced it.")


def profiles_section(layout: Layout, preset: str | None, out: Path, written: set[str]) -> list[str]:
    """Each kind's profile (results/profile/<kind>/<preset>.json, else its newest): its scorecard, figures
    and claims. An unreadable file is named, and the other kinds are still reported."""
    from .profiles import scorecard_markdown
    files = layout.profiles(preset)
    if not files:
        return []
    lines = ['<a id="profiles"></a>', "", "## Profiles", "", PROFILES_INTRO, ""]
    for path in files:
        kind = path.parent.name
        try:
            run = load(path)
            table = scorecard_markdown(run)
        except (ResultsError, KeyError, TypeError, ValueError, IndexError, AttributeError) as err:
            lines += [f"### {md_text(kind)}", "", f"{FAILS} could not be reported ({md_text(err)}); {md_code(path)}", ""]
            continue
        lines += [f"### {md_text(kind)}: {md_text(run.title)}", "",
                  f"{claims_verdict(run.claims)} · preset {md_code(run.preset)} · {plural(run.seeds, 'seed')} · "
                  f"{run.wall_time:.0f} s · {md_code(path)}", "", table, ""]
        (out / "figures" / f"profile-{kind}").mkdir(exist_ok=True)
        for title, source in run.figure_files():
            target = f"profile-{kind}/{source.name}"
            shutil.copyfile(source, out / "figures" / target)
            written.add(target)
            lines += [f"![profile {md_text(kind)}: {md_text(title)}](figures/{target})", "", f"*{md_text(title)}*", ""]
        lines += ["<details><summary>Claims</summary>", ""] + claims_table(run) + ["", "</details>", ""]
    return lines


# ---- do the phenomena generalise? ----

def _matrix_cell(cell: dict) -> str:
    value = f" {_number(cell['measured'])}" if "measured" in cell else ""
    value += " (= reference)" if cell.get("unchanged") else ""
    if cell["verdict"] == claims.HOLDS:
        return "✅" + value
    if cell["verdict"] in MARKS:
        return MARKS[cell["verdict"]] + value
    return "n/a" if cell["verdict"] == generalise.NOT_APPLICABLE else "–"


def read_generalise(layout: Layout, preset: str | None) -> dict | None:
    """The matrix at ``preset``, or the newest one when none is asked for."""
    files = layout.matrices()
    chosen = [f for f in files if f.stem == preset] if preset else files[:1]
    return generalise.read_matrix(layout, chosen[0].stem) if chosen else None


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
        lines.append(f"- {FAILS} {name}: {md_text(claim['statement'])} under {label_of[cond]}: measured "
                     f"{_number(cell['measured'])}, needs {cell['bound']}")
    for key, error in matrix.get("errors", {}).items():
        lines.append(f"- {FAILS} {key} could not run: {md_text(error)}")
    lines.append("")
    for exp, e in matrix["experiments"].items():
        lines += [f"**[{exp}](#{exp})**: {e['title']}", ""]
        rows = [[md_text(c["statement"]), md_text(c["bound"])] + [_matrix_cell(c["cells"][n]) for n in names]
                for c in e["claims"]]
        lines += (md_table(["phenomenon claim", "bound"] + [label_of[n] for n in names], rows).split("\n")
                  if rows else ["No phenomenon claims."])
        rest = [f"{REFERENCE_ONLY[kind]} " + ", ".join(f"`{i}`" for i in ids) for kind, ids in e["reference_only"].items()
                if ids]
        if rest:
            lines += ["", "Judged at the reference only: " + "; ".join(rest) + "."]
        lines.append("")
    if audit_rows:
        rows = [[r["number"], md_text(r["statement"]), md_text(r["kind"]),
                 generalise.beyond_reference([tuple(x) for x in r["evidence_ids"]], matrix)]
                for r in audit_rows if r.get("evidence_ids")]
        lines += ["**The notes' statements beyond the reference setup**, judged by the same claims as in "
                  "[the audit](#claims_audit):", ""]
        lines += md_table(["#", "statement", "verdict at the reference", "its evidence beyond the reference setup"],
                          rows).split("\n") + [""]
    return lines


def _reported(entry: Entry, out: Path, written: set[str]) -> list[str]:
    """The entry's section, or, where its results file cannot be reported, a line that says why."""
    try:
        return _section(entry, out, written)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as err:
        # One results file the loader let through but a section cannot draw must not hide every other experiment.
        entry.problem = f"could not be reported ({type(err).__name__}: {err})"
        entry.results = None
        return [f'<a id="{entry.name}"></a>', "", f"## {entry.name}", "",
                f"{FAILS} {md_text(entry.problem)}; results file {md_code(entry.path)}.", ""]


TITLE_LINE = "# dl-repro report"
MANIFEST = ".written-by-dl-repro"   # in figures/: the PNGs the last report wrote, the only ones it may remove


def _check_owned(report: Path) -> None:
    """Refuse to overwrite a REPORT.md this suite did not write."""
    try:
        with report.open(encoding="utf-8", errors="replace") as fh:
            first = fh.readline().rstrip("\n")
    except (FileNotFoundError, NotADirectoryError):
        return
    if first != TITLE_LINE:
        raise ConfigError(f"{report} exists and was not written by repro report; move it, or choose another "
                          "folder with --out")


def _remove_stale(figures_dir: Path, written: set[str]) -> None:
    """Remove the PNGs the previous report wrote and this one did not; never a file it did not write."""
    manifest = figures_dir / MANIFEST
    try:
        before = set(json.loads(manifest.read_text()))
    except (OSError, ValueError, TypeError):
        before = set()
    root = figures_dir.resolve()
    for name in before - written:
        path = (figures_dir / str(name)).resolve()
        if path.suffix == ".png" and path.is_relative_to(root) and path.is_file():
            path.unlink()
    manifest.write_text(json.dumps(sorted(written)))


def build_report(layout: Layout = Layout(), out: Path = Path("reports"), preset: str | None = None) -> Summary:
    """Write out/REPORT.md and out/figures/*.png from the results files alone. Unreadable results files
    are named in the report and in ``Summary.unreadable``; every other experiment is reported."""
    out = Path(out)
    _check_owned(out / "REPORT.md")
    (out / "figures").mkdir(parents=True, exist_ok=True)
    entries = load_entries(layout, preset)
    summary = Summary(out / "REPORT.md", entries)
    written: set[str] = set()
    papers = [e for e in entries if paper_of(e.name) is not None]
    body = [line for e in summary.run if e not in papers for line in _reported(e, out, written)]
    paper_body = [line for e in summary.run if e in papers for line in _reported(e, out, written)]
    if papers:  # after the sections of the notes; its table reads the paper sections' outcome
        body += papers_section(papers) + paper_body
    body += profiles_section(layout, preset, out, written)
    failing = summary.failing
    not_run = [e.name for e in entries if e.problem.startswith("not run")]
    broken = summary.unreadable
    head = [f"**{len(summary.run)} of {len(entries)} experiments run** · "]
    head[0] += claims_verdict(summary.claims)
    if failing:
        head[0] += " (" + ", ".join(sorted({name for name, _ in failing})) + ")"
    if broken:
        head[0] += f" · {FAILS} {plural(len(broken), 'results file')} unreadable: " + ", ".join(e.name for e in broken)
    if not_run:
        head.append(f"Not run: {', '.join(not_run)} (`python -m repro run <name>`, or `make exp-all`).")
    lines = [TITLE_LINE, "",
             f"Built by `python -m repro report` from {md_code(str(layout.results) + '/')} on "
             f"{time.strftime('%Y-%m-%d %H:%M')}; nothing is re-trained to draw it.", ""]
    matrix = read_generalise(layout, preset)
    audit = next((e.results.extras.get("audit") for e in summary.run if e.name == "claims_audit"), None)
    if matrix:
        every = [c for e in matrix["experiments"].values() for c in e["claims"]]
        everywhere = sum(generalise.generalises(c) == "everywhere" for c in every)
        bad = generalise.failures(matrix)
        head.append(f"[Beyond the reference setup](#generalise) (preset {md_code(matrix['preset'])}): {everywhere} of "
                    f"{plural(len(every), 'phenomenon claim')} hold under every condition that judged them; "
                    + (f"❌ {plural(len(bad), 'cell')} of the matrix {'fails' if len(bad) == 1 else 'fail'}, "
                       "findings listed there." if bad else "no cell of the matrix fails."))
    else:
        head.append("Beyond the reference setup: not checked yet (`make exp-generalise`).")
    lines += [h + "\n" for h in head] + _overview(entries) + ["", HOW_TO_READ, ""] + body
    if matrix:
        lines += generalise_section(matrix, audit)
    summary.path.write_text("\n".join(lines).rstrip() + "\n")
    _remove_stale(out / "figures", written)
    return summary
