"""A real TensorBoard server over the logs of a quick run, queried through its HTTP data API.

No mocks: the server is `python -m tensorboard.main` on a free 127.0.0.1 port, and every check
goes through the same routes TensorBoard's own front end uses.
"""
from __future__ import annotations

import base64
import json
import shutil
import urllib.parse
from pathlib import Path

import numpy as np
import pytest
from torch.utils.tensorboard import SummaryWriter

from repro import metrics, tb
from repro.layout import Layout
from repro.runner import run_experiment

HPARAM_METRIC_TAGS = {m.tag for m in metrics.of_scope(metrics.TRIAL) if m.hparam}


@pytest.fixture(scope="module")
def vanishing(quick_run):
    return quick_run("vanishing")


def run_name(results, variant: str, leaf: str) -> str:
    return f"{results.experiment}/{results.preset}/{variant}/{leaf}"


def logdir_of(results) -> Path:
    logdir = Path(results.path).parents[2] / "runs"  # conftest's quick_run: <root>/results and <root>/runs
    assert logdir.is_dir(), f"no TensorBoard logs at {logdir}"
    return logdir


@pytest.fixture(scope="module")
def server(vanishing, tensorboard):
    trial_runs = {run_name(vanishing, t.variant, f"seed{t.seed}") for t in vanishing.trials}
    srv = tensorboard(logdir_of(vanishing))

    def loaded():  # the hparams metrics are each trial's last write
        tags = srv.get("/data/plugin/scalars/tags")
        return all(HPARAM_METRIC_TAGS <= set(tags.get(run, {})) for run in trial_runs)
    srv.wait_until(loaded, "loaded every trial's scalars")
    return srv


def test_server_lists_every_trial_mean_layout_and_figures_run(vanishing, server):
    runs = set(server.get("/data/runs"))
    for t in vanishing.trials:
        assert run_name(vanishing, t.variant, f"seed{t.seed}") in runs
    for variant in vanishing.variants:
        assert run_name(vanishing, variant, "mean") in runs
    root = f"{vanishing.experiment}/{vanishing.preset}"
    assert root in runs and f"{root}/figures" in runs


def test_grad_norm_tag_for_every_layer_of_every_trial(vanishing, server):
    tags = server.get("/data/plugin/scalars/tags")
    for t in vanishing.trials:
        run = run_name(vanishing, t.variant, f"seed{t.seed}")
        expected = {f"grad_norm/{layer}" for layer in t.layers} | {"grad_norm/total"}
        expected |= {"loss/train", "loss/test", "accuracy/train", "accuracy/test", "lr"} | HPARAM_METRIC_TAGS
        # whatever the activation probe recorded, under its registered tag (repro/metrics.py): the unit
        # percentiles among them
        expected |= {f"{metrics.layer_metric('activations', key).tag}/{layer}"
                     for layer, stats in t.history[-1]["activations"].items() for key in stats}
        missing = expected - set(tags[run])
        assert not missing, f"{run} lacks {sorted(missing)}"


def test_served_gradient_norms_are_the_ones_in_the_results_json(vanishing, server):
    deepest = max(vanishing.params["depths"])
    trial = vanishing.trials_of(f"sigmoid-xavier-depth{deepest}")[0]
    run = run_name(vanishing, trial.variant, f"seed{trial.seed}")
    for layer in trial.layers:
        events = server.get("/data/plugin/scalars/scalars", run=run, tag=f"grad_norm/{layer}")
        assert [step for _, step, _ in events] == [p["step"] for p in trial.history]
        served = [value for _, _, value in events]
        assert served == pytest.approx([p["grad_norm"][layer] for p in trial.history], rel=1e-6)
    for key in ("unit0_q15", "unit0_q50", "unit0_q85"):  # recorded for Ioffe & Szegedy's Fig. 1; now logged too
        events = server.get("/data/plugin/scalars/scalars", run=run, tag=f"{key}/act1")
        assert [v for _, _, v in events] == pytest.approx([p["activations"]["act1"][key] for p in trial.history],
                                                          rel=1e-6)


def test_custom_scalars_layout_tells_the_experiment_story(vanishing, server):
    name, preset = vanishing.experiment, vanishing.preset
    prefix = f"{name}/{preset}"
    groups = {v: d.group for v, d in vanishing.variants.items()}
    charts = tb.chart_groups(groups)
    # the course setup is one chart group; the 9 depth-study networks (3 families x 3 depths) are split
    # into one chart per family, so no chart repeats a colour
    assert [(label, len(names)) for label, names in charts] == \
        [("course setup", 4)] + [(f"depth study [{k} of 3]", 3) for k in (1, 2, 3)]
    layout = server.get("/data/plugin/custom_scalars/layout")
    categories = {c["title"]: c["chart"] for c in layout["category"]}
    assert [t for t in categories if t.startswith(prefix)] == [f"{prefix}: {label}" for label, _ in charts]

    runs = server.get("/data/runs")  # TensorBoard's run order: a run's colour is palette[index % 7]
    tags = server.get("/data/plugin/scalars/tags")
    trials = {v: vanishing.trials_of(v) for v in groups}
    field_of = {m.tag: m.name for m in metrics.of_scope(metrics.POINT)}
    for label, names in charts:
        shown = categories[f"{prefix}: {label}"][::-1]  # laid out last to first (see tb.layout)
        titles = [c["title"].split(" · ")[0] for c in shown]
        # the depth study trains 100 steps with one evaluation: no curves to draw, only the gradient flow
        assert titles == (["test accuracy", "training loss", "gradient flow"] if label == "course setup"
                          else ["gradient flow"])
        mean_runs = [run_name(vanishing, v, "mean") for v in names]
        for chart in shown:
            (series,) = chart["margin"]["series"]
            # exactly this group's mean runs hold the chart's tags: one line (and colour) per variant
            holders = [r for r in runs if {series["value"], series["lower"], series["upper"]} <= set(tags.get(r, {}))]
            assert holders == mean_runs, chart["title"]
            where = [runs.index(r) for r in holders]
            assert where == list(range(where[0], where[0] + len(where))), "a chart's runs take consecutive colours"
            for variant, run in zip(names, holders):
                served = {key: server.get("/data/plugin/scalars/scalars", run=run, tag=series[key])
                          for key in ("value", "lower", "upper")}
                if chart["title"].startswith("gradient flow"):
                    norms = np.array([[t.history[0]["grad_norm"][layer] for layer in t.layers]
                                      for t in trials[variant]])
                    expected = {"value": np.log10(norms).mean(0), "lower": np.log10(norms).min(0),
                                "upper": np.log10(norms).max(0)}
                    steps = list(range(1, norms.shape[1] + 1))  # x = layer number, 1 = input layer
                else:
                    field = field_of[series["value"].split("/", 3)[3].rsplit("/", 1)[0]]
                    per_seed = np.array([[p[field] for p in t.history] for t in trials[variant]])
                    expected = {"value": per_seed.mean(0), "lower": per_seed.min(0), "upper": per_seed.max(0)}
                    steps = [p["step"] for p in trials[variant][0].history]
                for key in ("value", "lower", "upper"):
                    assert [s for _, s, _ in served[key]] == steps
                    assert [v for _, _, v in served[key]] == pytest.approx(list(expected[key]), rel=1e-5, abs=1e-6)
    # the vanishing gradient itself, as the chart shows it: sigmoid + Xavier at depth 15 loses orders of
    # magnitude from the output layer (right) to the input (left); ReLU + He stays within one
    deep = {v: server.get("/data/plugin/scalars/scalars", run=run_name(vanishing, v, "mean"),
                          tag=tb.mean_tag(prefix, label, tb.FLOW, "mean"))
            for label, names in charts for v in names if v.endswith("depth15")}
    assert deep["sigmoid-xavier-depth15"][-1][2] - deep["sigmoid-xavier-depth15"][0][2] > 3
    assert abs(deep["relu-he-depth15"][-1][2] - deep["relu-he-depth15"][0][2]) < 1


def test_hparams_table_compares_trials_with_final_metrics(vanishing, server):
    experiment = server.post("/data/plugin/hparams/experiment", {"experimentName": ""})
    metrics = {m["name"]["tag"] for m in experiment["metricInfos"]}
    assert metrics == HPARAM_METRIC_TAGS
    first_columns = [h["name"] for h in experiment["hparamInfos"][:3]]  # the table opens on these
    assert sorted(first_columns) == ["group", "seed", "variant"]

    groups = server.post("/data/plugin/hparams/session_groups", {
        "experimentName": "", "startIndex": 0, "sliceSize": 1000, "colParams": [],
        "allowedStatuses": ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"]})
    assert groups["totalSize"] == len(vanishing.trials)
    by_run = {g["name"]: g for g in groups["sessionGroups"]}
    for t in vanishing.trials:
        group = by_run[run_name(vanishing, t.variant, f"seed{t.seed}")]
        assert group["hparams"]["variant"] == vanishing.variant(t.variant).label and group["hparams"]["seed"] == t.seed
        served = {m["name"]["tag"]: m["value"] for m in group["metricValues"]}
        assert served["hparams/final_test_acc"] == pytest.approx(t.summary["final_test_acc"], rel=1e-6)


def test_overview_figures_are_images(vanishing, server):
    images = server.get("/data/plugin/images/tags")
    figures_run = f"{vanishing.experiment}/{vanishing.preset}/figures"
    assert {"overview/curves", "overview/gradient-flow"} <= set(images[figures_run])


def event_file_counts(logdir: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    for f in logdir.rglob("events.out.tfevents.*"):
        key = f.parent.relative_to(logdir).as_posix()
        counts[key] = counts.get(key, 0) + 1
    return counts


def test_a_resumed_run_leaves_one_event_file_in_every_run_directory(vanishing, tmp_path):
    """`--resume` over a run whose dashboards were written (as after a kill during the last steps):
    the mean runs, the layout and the figures are written again, replacing what was there."""
    root = Path(vanishing.path).parents[2]
    shutil.copytree(root / "runs", tmp_path / "runs")
    shutil.copytree(root / "results", tmp_path / "results")
    before = event_file_counts(tmp_path / "runs")
    assert before and set(before.values()) == {1}, before
    again = run_experiment("vanishing", "quick", device="cpu", layout=Layout(tmp_path / "results", tmp_path / "runs"),
                           progress=False, resume=True)
    assert again.resumed_trials == len(vanishing.trials)  # nothing trained again
    after = event_file_counts(tmp_path / "runs")
    assert after == before  # the same run directories, one event file each
    figures = tmp_path / "runs" / "vanishing" / "quick" / "figures"
    (events,) = tb.event_files(figures)
    images = [v.tag for e in tb._read_events(events) if e.WhichOneof("what") == "summary" for v in e.summary.value]
    assert sorted(images) == ["overview/curves", "overview/gradient-flow"]  # each image once


def test_compacting_a_run_keeps_the_newest_value_of_every_tag_and_step(tmp_path):
    for value in (1.0, 2.0):  # two writers one after another: a run written twice
        with SummaryWriter(str(tmp_path)) as w:
            w.add_scalar("a", value, 0)
            w.add_scalar("a", value * 10, 1)
    with SummaryWriter(str(tmp_path)) as w:
        w.add_scalar("b", 5.0, 0)
    assert len(tb.event_files(tmp_path)) == 3
    tb.compact_run(tmp_path)
    (only,) = tb.event_files(tmp_path)
    kept = {(v.tag, e.step): v.simple_value for e in tb._read_events(only) if e.WhichOneof("what") == "summary"
            for v in e.summary.value}
    assert kept == {("a", 0): 2.0, ("a", 1): 20.0, ("b", 0): 5.0}


def test_chart_groups_split_large_groups_into_parts_of_at_most_seven():
    variants = {f"lr {i}": "learning rate" for i in range(16)} | {"sgd": "book", "adam": "book"}
    charts = tb.chart_groups(variants)
    assert [(label, len(names)) for label, names in charts] == \
        [(f"learning rate [{k} of 4]", 4) for k in range(1, 5)] + [("book", 2)]
    assert [len(names) for _, names in tb.chart_groups({f"d{i}": "depth" for i in range(9)})] == [3, 3, 3]
    assert [len(names) for _, names in tb.chart_groups({f"p{i}": "prime" for i in range(11)})] == [6, 5]
    assert [n for _, names in charts for n in names] == list(variants)  # every variant once, in order
    assert "(" not in tb.mean_tag("claims_audit/quick", "overfitting (300 images)", "accuracy/test", "mean")


def test_story_url_selects_the_mean_runs_by_regex_up_to_40_and_by_name_above(tmp_path):
    def mean_runs(n):
        for i in range(n):
            with SummaryWriter(str(tmp_path / "exp" / "quick" / f"v{i}" / "mean")) as w:
                w.add_scalar("x", 1.0, 0)
    mean_runs(40)
    url = tb.story_url(tmp_path, "http://127.0.0.1:1")
    query, fragment = urllib.parse.urlsplit(url).query, urllib.parse.urlsplit(url).fragment
    assert urllib.parse.parse_qs(query)["runFilter"] == [tb.STORY_REGEX]
    assert fragment == "custom_scalars&_smoothingWeight=0&regexInput=" + urllib.parse.quote(tb.STORY_REGEX, safe="")
    mean_runs(41)
    fragment = urllib.parse.urlsplit(tb.story_url(tmp_path, "http://127.0.0.1:1")).fragment
    tab, smoothing, state = fragment.split("&")
    key, value = state.split("=")  # one "=": TensorBoard's hash parser drops a pair with more
    assert (tab, smoothing, key) == ("custom_scalars", "_smoothingWeight=0", "runSelectionState")
    selected = json.loads(base64.b64decode(urllib.parse.unquote(value)))
    assert selected == {f"exp/quick/v{i}/mean": True for i in range(41)}
