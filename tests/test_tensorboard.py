"""A real TensorBoard server over the logs of a quick run, queried through its HTTP data API.

No mocks: the server is `python -m tensorboard.main` on a free 127.0.0.1 port, and every check
goes through the same routes TensorBoard's own front end uses.
"""
from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from repro import tb

STARTUP_TIMEOUT = 180  # seconds; importing TensorBoard on a busy 2-core machine takes a while
HPARAM_METRIC_TAGS = set(tb.HPARAM_METRICS.values())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One TensorBoard process; ``get``/``post`` talk JSON to its data API, bypassing any proxy."""

    def __init__(self, logdir: Path, log_path: Path):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.log = open(log_path, "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir), "--host", "127.0.0.1",
             "--port", str(self.port), "--load_fast", "false",
             # read every event file once, completely, before answering: no half-loaded runs in a test
             "--reload_interval", "0", "--reload_task", "blocking"],
            stdout=self.log, stderr=subprocess.STDOUT)
        self.opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def get(self, route: str, **params):
        query = "?" + urllib.parse.urlencode(params) if params else ""
        with self.opener.open(self.base + route + query, timeout=60) as response:
            return json.loads(response.read())

    def post(self, route: str, body: dict):
        request = urllib.request.Request(self.base + route, data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
        with self.opener.open(request, timeout=60) as response:
            return json.loads(response.read())

    def wait_until(self, ready, what: str) -> None:
        """Poll ``ready()`` until it is true; fail with the server's log if it exits or time runs out."""
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"tensorboard exited ({self.proc.returncode}): {self.log_path.read_text()}")
            try:
                if ready():
                    return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass  # not listening yet
            time.sleep(0.5)
        pytest.fail(f"TensorBoard had not {what} after {STARTUP_TIMEOUT} s; log:\n{self.log_path.read_text()}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


@pytest.fixture(scope="module")
def vanishing(quick_run):
    return quick_run("vanishing")


def run_name(results: dict, variant: str, leaf: str) -> str:
    return f"{results['experiment']}/{results['preset']}/{tb.safe_name(variant)}/{leaf}"


@pytest.fixture(scope="module")
def server(vanishing, tmp_path_factory):
    logdir = Path(vanishing["path"]).parents[2] / "runs"  # conftest's quick_run: <root>/results and <root>/runs
    assert logdir.is_dir(), f"no TensorBoard logs at {logdir}"
    trial_runs = {run_name(vanishing, t["variant"], f"seed{t['seed']}") for t in vanishing["trials"]}
    srv = Server(logdir, tmp_path_factory.mktemp("tensorboard") / "server.log")
    try:
        def loaded():  # the hparams metrics are each trial's last write
            tags = srv.get("/data/plugin/scalars/tags")
            return all(HPARAM_METRIC_TAGS <= set(tags.get(run, {})) for run in trial_runs)
        srv.wait_until(loaded, "loaded every trial's scalars")
        yield srv
    finally:
        srv.stop()


def test_server_lists_every_trial_mean_layout_and_figures_run(vanishing, server):
    runs = set(server.get("/data/runs"))
    for t in vanishing["trials"]:
        assert run_name(vanishing, t["variant"], f"seed{t['seed']}") in runs
    for variant in vanishing["variants"]:
        assert run_name(vanishing, variant, "mean") in runs
    root = f"{vanishing['experiment']}/{vanishing['preset']}"
    assert root in runs and f"{root}/figures" in runs


def test_grad_norm_tag_for_every_layer_of_every_trial(vanishing, server):
    tags = server.get("/data/plugin/scalars/tags")
    for t in vanishing["trials"]:
        run = run_name(vanishing, t["variant"], f"seed{t['seed']}")
        expected = {f"grad_norm/{layer}" for layer in t["layers"]} | {"grad_norm/total"}
        expected |= {"loss/train", "loss/test", "accuracy/train", "accuracy/test", "lr"} | HPARAM_METRIC_TAGS
        missing = expected - set(tags[run])
        assert not missing, f"{run} lacks {sorted(missing)}"


def test_served_gradient_norms_are_the_ones_in_the_results_json(vanishing, server):
    deepest = max(vanishing["params"]["depths"])
    trial = next(t for t in vanishing["trials"] if t["variant"] == f"sigmoid + xavier, depth {deepest}")
    run = run_name(vanishing, trial["variant"], f"seed{trial['seed']}")
    for layer in trial["layers"]:
        events = server.get("/data/plugin/scalars/scalars", run=run, tag=f"grad_norm/{layer}")
        assert [step for _, step, _ in events] == [p["step"] for p in trial["history"]]
        served = [value for _, _, value in events]
        assert served == pytest.approx([p["grad_norm"][layer] for p in trial["history"]], rel=1e-6)


def test_custom_scalars_layout_tells_the_experiment_story(vanishing, server):
    name = vanishing["experiment"]
    layout = server.get("/data/plugin/custom_scalars/layout")
    categories = {c["title"]: c["chart"] for c in layout["category"]}
    flow = next(charts for title, charts in categories.items() if title.startswith(f"{name}: gradient flow"))
    margins = next(charts for title, charts in categories.items() if title.startswith(f"{name}: accuracy and loss"))

    # gradient flow: one chart per variant, whose regex finds every layer in that variant's mean run only
    assert [c["title"] for c in flow] == list(vanishing["variants"])
    layers = {t["variant"]: t["layers"] for t in vanishing["trials"]}
    for chart in flow:
        (regex,) = chart["multiline"]["tag"]
        for variant in vanishing["variants"]:
            found = server.get("/data/plugin/custom_scalars/scalars", run=run_name(vanishing, variant, "mean"),
                               tag=regex)
            assert found["regex_valid"]
            expected = ({tb.mean_tag(name, f"grad_flow/{tb.safe_name(variant)}/{layer}") for layer in layers[variant]}
                        if variant == chart["title"] else set())
            assert set(found["tag_to_events"]) == expected, (chart["title"], variant)

    # margins: test accuracy and loss as mean with min and max across seeds, lower <= mean <= upper
    titles = [c["title"] for c in margins]
    assert any(t.startswith("accuracy/test") for t in titles) and any(t.startswith("loss/test") for t in titles)
    mean_run = run_name(vanishing, "relu + he", "mean")
    histories = [t["history"] for t in vanishing["trials"] if t["variant"] == "relu + he"]
    field_of = {tag: field for field, tag in tb.POINT_TAGS.items()}
    for chart in margins:
        (series,) = chart["margin"]["series"]
        served = {key: [v for _, _, v in server.get("/data/plugin/scalars/scalars", run=mean_run, tag=series[key])]
                  for key in ("value", "lower", "upper")}
        field = field_of[chart["title"].split(" ")[0]]
        per_seed = [[p[field] for p in h] for h in histories]
        assert served["value"] == pytest.approx([sum(v) / len(v) for v in zip(*per_seed)], rel=1e-5)
        assert served["lower"] == pytest.approx([min(v) for v in zip(*per_seed)], rel=1e-5)
        assert served["upper"] == pytest.approx([max(v) for v in zip(*per_seed)], rel=1e-5)


def test_hparams_table_compares_trials_with_final_metrics(vanishing, server):
    experiment = server.post("/data/plugin/hparams/experiment", {"experimentName": ""})
    metrics = {m["name"]["tag"] for m in experiment["metricInfos"]}
    assert metrics == HPARAM_METRIC_TAGS
    first_columns = [h["name"] for h in experiment["hparamInfos"][:3]]  # the table opens on these
    assert sorted(first_columns) == ["group", "seed", "variant"]

    groups = server.post("/data/plugin/hparams/session_groups", {
        "experimentName": "", "startIndex": 0, "sliceSize": 1000, "colParams": [],
        "allowedStatuses": ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"]})
    assert groups["totalSize"] == len(vanishing["trials"])
    by_run = {g["name"]: g for g in groups["sessionGroups"]}
    for t in vanishing["trials"]:
        group = by_run[run_name(vanishing, t["variant"], f"seed{t['seed']}")]
        assert group["hparams"]["variant"] == t["variant"] and group["hparams"]["seed"] == t["seed"]
        served = {m["name"]["tag"]: m["value"] for m in group["metricValues"]}
        assert served["hparams/final_test_acc"] == pytest.approx(t["summary"]["final_test_acc"], rel=1e-6)


def test_overview_figures_are_images(vanishing, server):
    images = server.get("/data/plugin/images/tags")
    figures_run = f"{vanishing['experiment']}/{vanishing['preset']}/figures"
    assert {"overview/curves", "overview/gradient_flow"} <= set(images[figures_run])
