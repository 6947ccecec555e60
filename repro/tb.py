"""TensorBoard: the tag names, per-trial writers, seed aggregates, layouts, hparams and figures.

Run directories: runs/<experiment>/<preset>/<variant>/seed<k>/ for trials and .../<variant>/mean/
for the aggregate across seeds, tagged by chart group (see "the story of an experiment" below). The
custom-scalars layout lives in runs/<experiment>/<preset>/ itself, the figures in .../figures/. Every
run directory holds one event file, after a rerun or a resume too.
"""
from __future__ import annotations

import base64
import json
import math
import os
import urllib.parse
from pathlib import Path

import numpy as np
from torch.utils.tensorboard import SummaryWriter
from torch.utils.tensorboard.summary import hparams as hparams_summary

from . import metrics
from .config import value_text
from .layout import Layout
from .results import gradient_flow, group_variants

# What a trial logs, and under which tag, is repro/metrics.py's registry: every POINT metric, every
# statistic a probe recorded (LAYER metrics, <tag>/<layer>), and the hparams table's TRIAL metrics.
AGGREGATED = tuple(metrics.curves())   # the curves a mean run holds: mean, min and max over seeds


class TrialWriter:
    """Writes one trial's evaluation points and hparams into its own directory."""

    def __init__(self, path: Path, hparams: dict | None = None):
        self.writer = SummaryWriter(str(path))
        self.hparams = hparams or {}

    def log_point(self, point: dict) -> None:
        step, w = point["step"], self.writer
        for m in metrics.of_scope(metrics.POINT):
            if m.tag and m.name in point:
                w.add_scalar(m.tag, point[m.name], step)
        for layer, norm in point["grad_norm"].items():
            w.add_scalar(f"grad_norm/{layer}", norm, step)
        for group in ("activations", "layer_outputs"):
            for layer, stats in point.get(group, {}).items():
                for key, value in stats.items():
                    tag = metrics.layer_metric(group, key).tag
                    if tag:
                        w.add_scalar(f"{tag}/{layer}", value, step)

    def log_final(self, result: dict) -> None:
        hp = {k: v if isinstance(v, (bool, int, float, str)) else value_text(v)
              for k, v in {**result["config"], **self.hparams}.items()}
        finals = {m.tag: float(result["summary"][m.name]) for m in metrics.of_scope(metrics.TRIAL) if m.hparam}
        hp["status"] = result["status"]
        hp["seed"] = result["seed"]  # one row per trial in the hparams table, seeds told apart
        experiment, *session = hparams_summary(hp, finals)
        for summary in (_flag_compared(experiment, {*self.hparams, "seed"}), *session):
            self.writer.file_writer.add_summary(summary)
        step = result["config"]["iters"]
        for tag, value in finals.items():
            self.writer.add_scalar(tag, value, step)
        if result["status"] == "diverged":
            self.writer.add_text("status", f"diverged at step {result['diverged_at']}", step)
        self.writer.close()


def _flag_compared(summary, names: set[str]):
    """Mark ``names`` (the caller's columns, e.g. variant and group, and the seed: what tells trials
    apart) as differing in the experiment summary. TensorBoard's hparams table opens on five columns,
    differing ones first; torch marks none, so it would open on the alphabetically first config keys."""
    from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData
    plugin_data = summary.value[0].metadata.plugin_data
    data = HParamsPluginData.FromString(plugin_data.content)
    for info in data.experiment.hparam_infos:
        info.differs = info.name in names
    plugin_data.content = data.SerializeToString()
    return summary


# ---- the story of an experiment: Custom Scalars and Time Series, designed to TensorBoard's front end ----
#
# How TensorBoard draws (tensorflow/tensorboard, the 2.2x sources):
# - Custom Scalars colours a line by its *run*: tf-custom-scalar-helpers.ts (DataSeriesColorScale) parses
#   the run out of the series name "<tag> (<run>)" and asks runsColorScale (tf_color_scale/colorScale.ts),
#   which gives the i-th run of /data/runs the colour palette[i % 7] (tf_color_scale/palettes.ts: `standard`
#   is tensorboardColorBlindAssist, 7 colours); /data/runs lists runs by start time (core_plugin._serve_runs).
#   So lines to be told apart must be different runs, written one after another, at most 7 to a chart.
#   A tag holding "(" would break that parse (getColor throws), so tags never hold parentheses.
# - Its run selector (tf_runs_selector/tf-runs-selector.ts -> tf_dashboard_common/tf-multi-checkbox.ts,
#   maxNamesToEnableByDefault = 40) starts with every run selected only while at most 40 runs match its
#   regex (URL hash key `regexInput`), and with none selected above that, unless the URL hash carries
#   `runSelectionState` (base64 JSON, run -> bool; tf_storage/storage.ts).
# - Every chart of an open category asks /data/plugin/custom_scalars/scalars once per *selected* run
#   (tf-custom-scalar-margin-chart-card.ts, _requestData): requests = charts x selected runs. Selecting the
#   per-variant mean runs only, not every seed, keeps that small.
# - Time Series (webapp/runs/store/runs_types.ts, MAX_NUM_RUNS_TO_ENABLE_BY_DEFAULT = 500) starts with every
#   run selected and overlays every run holding a tag in that tag's card; the `runFilter` query parameter
#   (webapp/routes/dashboard_deeplink_provider.ts) hides the runs it does not match, and cards no selected
#   run holds are hidden (hideEmptyCards, on by default).
# Hence: one `mean` run per variant (runs/<experiment>/<preset>/<variant>/mean/) whose tags name the chart
# they belong to, <experiment>/<preset>/<group>/..., so that a chart (and a Time Series card) draws exactly
# the variants of one group, each in its own colour; groups of more than 7 variants are split.

PALETTE = 7
SELECT_ALL_MAX = 40
STORY_REGEX = "/mean$"  # the runs the story is drawn from: runs/<experiment>/<preset>/<variant>/mean
STORY_CURVES = {m.name: m.story for m in metrics.of_scope(metrics.POINT) if m.story}  # charted; all AGGREGATED written
FLOW = "grad_flow_log10"
_NO_PARENS = str.maketrans("()/", "[]-")


def tag_text(text: str) -> str:
    return text.translate(_NO_PARENS)


def mean_tag(prefix: str, label: str, what: str, stat: str) -> str:
    """The tag of a mean run: <experiment>/<preset>/<chart group>/<what>/<mean|min|max>. Tags are what a
    custom-scalars chart selects, so the prefix keeps one experiment's (and preset's) charts to its own runs."""
    return "/".join(p for p in (prefix, tag_text(label), what, stat) if p)


def chart_groups(variants: dict[str, str], most: int = PALETTE) -> list[tuple[str, list[str]]]:
    """(label, variant names) per chart group: each group of variants in order, split into consecutive
    parts of at most ``most`` variants, so no chart repeats a colour. Equal parts where up to twice the
    fewest parts allow them (9 -> 3 + 3 + 3, 16 -> 4 x 4): groups are usually a grid (3 families x 3
    depths, 2 optimisers x 8 rates), whose rows equal parts keep apart; else near-equal (11 -> 6 + 5)."""
    groups = group_variants(variants)
    out = []
    for group, names in groups.items():
        fewest = math.ceil(len(names) / most)
        parts = next((k for k in range(fewest, 2 * fewest + 1) if len(names) % k == 0), fewest)
        bounds = [-(-k * len(names) // parts) for k in range(parts + 1)]  # ceil: near-equal, 11 -> 6 + 5
        for k in range(parts):
            label = group if parts == 1 else f"{group} [{k + 1} of {parts}]"
            out.append((label, names[bounds[k]:bounds[k + 1]]))
    return out


def _finished(trials: list) -> list:
    return [t for t in trials if t.finished and t.history]


def gradient_flow_log10(trials: list) -> list[tuple[int, float, float, float]]:
    """(layer number from 1 = input, mean, min, max) over seeds of log10 of the layer's weight-gradient norm
    over the first evaluation interval (repro.results.gradient_flow; the mean of the logs is the log of
    the geometric mean). Layers whose norm is 0 in every seed are left out: a log axis has no place for them."""
    flow = gradient_flow(trials)
    if flow is None:
        return []
    out = []
    with np.errstate(divide="ignore"):
        logs = np.log10(flow["norms"])
    for number, column in enumerate(logs.T, start=1):
        column = column[np.isfinite(column)]
        if len(column):
            out.append((number, float(column.mean()), float(column.min()), float(column.max())))
    return out


def curve_points(trials: list) -> int:
    """Evaluation points every finished seed has (the curves are drawn over these); 0 under two."""
    n = min((len(t.history) for t in _finished(trials)), default=0)
    return n if n >= 2 else 0


def write_mean_run(path: Path, trials: list, experiment: str = "", label: str = "all variants") -> None:
    """Mean, min and max across seeds of the main curves, and the gradient flow (log10 norm by layer, the
    layer number as the step), tagged for the chart group ``label`` of ``experiment`` (mean_tag)."""
    clear_events(path)
    ok = _finished(trials)
    if not ok:
        return
    writer = SummaryWriter(str(path))
    for i in range(curve_points(ok)):
        step = ok[0].history[i]["step"]
        for field in AGGREGATED:
            values = np.array([t.history[i][field] for t in ok], dtype=float)
            for stat, value in (("mean", values.mean()), ("min", values.min()), ("max", values.max())):
                writer.add_scalar(mean_tag(experiment, label, metrics.BY_NAME[field].tag, stat), value, step)
    for number, mean, low, high in gradient_flow_log10(trials):
        for stat, value in (("mean", mean), ("min", low), ("max", high)):
            writer.add_scalar(mean_tag(experiment, label, FLOW, stat), value, number)
    writer.close()


def _margin(prefix: str, label: str, what: str) -> list[str]:
    return [mean_tag(prefix, label, what, stat) for stat in ("mean", "min", "max")]  # value, lower, upper


def layout(prefix: str, charts: list[tuple[str, list[str]]], curves: set[str] | None = None,
           flows: set[str] | None = None) -> dict:
    """Custom-scalars layout: a category per chart group, holding test accuracy and training loss (mean over
    seeds, band from the lowest to the highest seed) and the gradient flow. ``curves``/``flows``: the
    labels that have data for those charts (None: all), so no chart is laid out empty."""
    categories = {}
    for label, _ in charts:
        shown = []  # in the order a person reads them
        if curves is None or label in curves:
            shown += [(f"{text} · mean over seeds, band: lowest to highest seed", _margin(prefix, label, metrics.BY_NAME[f].tag))
                      for f, text in STORY_CURVES.items()]
        if flows is None or label in flows:
            shown.append(("gradient flow · log10 of each layer's weight-gradient norm at the start of training "
                          "(x: layer, 1 = input; mean over seeds, band: min-max)", _margin(prefix, label, FLOW)))
        if shown:
            # Laid out last to first: the category view stamps a chart's two dom-if templates per item and
            # inserts the next item before the previous one's second template (tf_paginated_view/
            # tf-dom-repeat.ts, _insertItem indexes `children` as if each item were one node), so margin
            # charts are drawn in the reverse of the layout's order.
            categories[f"{prefix}: {tag_text(label)}"] = {title: ["Margin", tags] for title, tags in reversed(shown)}
    return categories


def write_layout(path: Path, experiment: str, variants: list[str] | dict[str, str],
                 curves: set[str] | None = None, flows: set[str] | None = None) -> None:
    """The layout in ``path``'s own event file (a run of its own; an older one there is replaced).
    ``variants``: name -> group, or a plain list (a sweep's cells): one chart group of them all, as
    write_mean_run's default label has it."""
    if isinstance(variants, dict):
        charts = chart_groups(variants)
    else:
        charts = chart_groups({v: "" for v in variants}, most=max(len(variants), 1))
    clear_events(path)
    writer = SummaryWriter(str(path))
    writer.add_custom_scalars(layout(experiment, charts, curves, flows))
    writer.close()


def write_dashboards(layout: Layout, experiment: str, preset: str, run) -> None:
    """An experiment's story: each variant's mean run, one chart group after another (so each chart's runs
    are consecutive in TensorBoard's run order and take different colours), then the layout in the run's
    logdir (runs/<experiment>/<preset>/); then every run dir there is left with one event file. ``run``:
    a repro.results.Run."""
    prefix, logdir = f"{experiment}/{preset}", layout.logdir(experiment, preset)
    variants = {v.id: v.group for v in run.variants.values()}
    curves, flows = set(), set()
    for label, ids in chart_groups(variants):
        for vid in ids:
            trials = run.variant(vid).trials
            write_mean_run(layout.mean_logdir(experiment, preset, vid), trials, prefix, label)
            if curve_points(trials):
                curves.add(label)
            if gradient_flow_log10(trials):
                flows.add(label)
    write_layout(logdir, prefix, variants, curves, flows)
    for folder in sorted({f.parent for f in Path(logdir).rglob("events.out.tfevents.*")}):
        compact_run(folder)


def story_runs(logdir: Path) -> list[str]:
    """The mean runs under ``logdir``, as TensorBoard names them (paths relative to the logdir)."""
    logdir = Path(logdir)
    return sorted(Path(folder).relative_to(logdir).as_posix()
                  for folder, _, files in os.walk(logdir, followlinks=True)  # as TensorBoard walks it
                  if Path(folder).name == "mean" and any(f.startswith("events.out.tfevents.") for f in files))


def story_url(logdir: Path, base: str = "http://127.0.0.1:6006", explicit: bool | None = None) -> str:
    """The Custom Scalars page with the mean runs selected, and only those: by the selector's regex while at
    most 40 runs match it (it then selects every match), else (or with ``explicit``) by naming each run in
    runSelectionState. The query's runFilter keeps Time Series to the same runs, smoothing off: these
    are means already."""
    runs = story_runs(logdir)
    query = urllib.parse.urlencode({"runFilter": STORY_REGEX, "smoothing": 0})
    if explicit or (explicit is None and len(runs) > SELECT_ALL_MAX):
        selection = json.dumps({r: True for r in runs}, separators=(",", ":"))
        state = "runSelectionState=" + urllib.parse.quote(base64.b64encode(selection.encode()).decode(), safe="")
    else:
        state = "regexInput=" + urllib.parse.quote(STORY_REGEX, safe="")
    # _smoothingWeight (tf_custom_scalar_dashboard): 0, so the slider does not claim a smoothing margin charts never apply
    return f"{base.rstrip('/')}/?{query}#custom_scalars&_smoothingWeight=0&{state}"


def time_series_url(base: str = "http://127.0.0.1:6006") -> str:
    """Time Series with the mean runs' mean curves only: one card per chart group and quantity, a line per
    variant."""
    query = urllib.parse.urlencode({"runFilter": STORY_REGEX, "tagFilter": "/mean$", "smoothing": 0})
    return f"{base.rstrip('/')}/?{query}#timeseries"


def story_first(app, logdir: Path):
    """TensorBoard's WSGI app, with its bare address (``/`` without a query: what TensorBoard itself prints
    and what people type) redirected to the story, so that no address opens on every seed at smoothing 0.6
    or on an empty Custom Scalars. Any other request, the story's own address included, goes to TensorBoard."""
    def serve(environ, start_response):
        if environ.get("PATH_INFO", "") in ("", "/") and not environ.get("QUERY_STRING") and story_runs(logdir):
            start_response("302 Found", [("Location", story_url(logdir, base="")), ("Cache-Control", "no-store")])
            return [b""]
        return app(environ, start_response)
    return serve


def main(argv: list[str] | None = None) -> int:
    """`python -m repro.tb LOGDIR --port N` (make tensorboard): TensorBoard on 127.0.0.1, and each address
    it prints opens on the experiments' story; Ctrl-C stops it."""
    import argparse
    import sys
    import threading

    from tensorboard import program
    parser = argparse.ArgumentParser(prog="python -m repro.tb", description=main.__doc__)
    parser.add_argument("logdir", type=Path)
    parser.add_argument("--port", type=int, default=6006)
    args = parser.parse_args(argv)
    server = program.TensorBoard(server_class=lambda app, flags: program.create_port_scanning_werkzeug_server(
        story_first(app, args.logdir), flags))
    server.configure(logdir=str(args.logdir), host="127.0.0.1", port=args.port)
    try:
        base = server.launch().rstrip("/")  # serves from a thread, and prints no address of its own
    except program.TensorBoardServerException as err:
        print(f"error: {err.msg}; choose another port with TB_PORT=... (--port)", file=sys.stderr)
        return 2
    runs = story_runs(args.logdir)
    if runs:
        print(f"TensorBoard on 127.0.0.1 only (Ctrl-C stops it). The story of each experiment, {len(runs)} mean runs "
              f"selected (Custom Scalars: a chart per group of variants, the mean over seeds with its band from "
              f"the lowest to the highest seed, and the gradient flow):\n  {story_url(args.logdir, base)}", flush=True)
    else:
        print(f"TensorBoard on 127.0.0.1 only (Ctrl-C stops it). No experiment has written its dashboards to "
              f"{args.logdir}/ yet (e.g. make exp-optimizers); once one has, {base}/ opens on its story.", flush=True)
    experiments = sorted({run.split("/")[0] for run in runs})
    if len(experiments) > 1:
        # measured with six full presets here: every chart asks for every selected run, and the page
        # had not drawn in 2 minutes; one experiment's logdir drew in 3-11 s
        print(f"{len(experiments)} experiments here: every chart waits for every selected run, so the page fills "
              f"in slowly. One at a time draws in seconds: make tensorboard TB_LOGDIR={args.logdir}/<experiment> "
              f"({', '.join(experiments)})", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    return 0


# ---- one event file per run directory ----

def event_files(path: Path) -> list[Path]:
    return sorted(Path(path).glob("events.out.tfevents.*"))


def clear_events(path: Path) -> None:
    """Remove the event files directly in ``path`` (not below it): it is about to be written afresh."""
    for f in event_files(path):
        f.unlink()


def _read_events(path: Path) -> list:
    from tensorboard.backend.event_processing.event_file_loader import RawEventFileLoader
    from tensorboard.compat.proto.event_pb2 import Event
    return [Event.FromString(record) for record in RawEventFileLoader(str(path)).Load()]


def compact_run(path: Path) -> None:
    """Merge the event files of one run directory into one, keeping the newest write of every (tag, step):
    a rerun or a resume that wrote again beside an older file replaces what that file held, never doubles it
    (a truncated record, left by a killed writer, ends its file)."""
    files = event_files(path)
    if len(files) <= 1:
        return
    from tensorboard.summary.writer.event_file_writer import EventFileWriter
    per_file = sorted((_read_events(f) for f in files), key=lambda evs: evs[0].wall_time if evs else 0.0)
    latest = {}
    for events in per_file:
        for event in events:
            kind = event.WhichOneof("what")
            if kind == "file_version":
                continue
            what = tuple(v.tag for v in event.summary.value) if kind == "summary" else kind
            latest[(what, event.step)] = event
    writer = EventFileWriter(str(path))
    for event in latest.values():
        writer.add_event(event)
    writer.close()
    for f in files:
        f.unlink()


def log_figure(path: Path, tag: str, figure) -> None:
    """A matplotlib figure as a TensorBoard image (the same picture as the experiment's PNG)."""
    writer = SummaryWriter(str(path))
    writer.add_figure(tag, figure)
    writer.close()
    compact_run(Path(path))  # one event file for all the run's figures; a figure drawn again replaces its old one


if __name__ == "__main__":
    raise SystemExit(main())
