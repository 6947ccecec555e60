"""Shared fixtures: each experiment's quick preset runs once per test session, into a temp dir; what every
experiment's test checks is in tests/test_experiments.py, each experiment's own file keeps only its specifics."""
from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from repro.layout import Layout
from repro.runner import run_experiment


@pytest.fixture(scope="session")
def quick_run(tmp_path_factory):
    """``quick_run("vanishing")`` -> the repro.results.Run of that experiment's quick preset (cached)."""
    cache: dict = {}

    def run(name: str, **kwargs):
        if name not in cache:
            root = tmp_path_factory.mktemp(f"quick-{name}")
            cache[name] = run_experiment(name, "quick", device="cpu", layout=Layout(root / "results", root / "runs"),
                                         progress=False, **kwargs)
        return cache[name]
    return run


def random_dataset(seed: int = 0, n_train: int = 200, n_test: int = 100):
    """Random 784-pixel images with random labels: enough to exercise the engine, nothing to learn."""
    import torch
    from repro.data import Dataset
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n_train + n_test, 784, generator=g)
    y = torch.randint(0, 10, (n_train + n_test,), generator=g)
    return Dataset(x[:n_train], y[:n_train], x[n_train:], y[n_train:])


def per_seed(run, variant: str, metric: str = "final_test_acc") -> list[float]:
    """Each seed's TRIAL metric of a variant (by id) of a repro.results.Run."""
    return run.variant(variant).values(metric)


def assert_claims_hold(run) -> None:
    """Every claim the run judged holds, read from its results, and what the run prints and the
    report shows say exactly that: each claim with the verdict repro.claims.verdict gives it, no
    FAILS anywhere. A claim the run cannot judge (its ``needs``) is printed as such, not exempted here."""
    from repro import report
    from repro.claims import FAILS, verdict
    from repro.runner import summary_table
    from repro.tables import md_cell, md_text
    failed = [f"{c.id}: {c.statement}: measured {c.measured:.4g} ({c.bound})" for c in run.claims
              if verdict(c) == FAILS]
    assert not failed, "claims failed:\n" + "\n".join(failed)
    printed, shown = summary_table(run), "\n".join(report.claims_table(run))
    for c in run.claims:
        assert f"[{verdict(c).upper()}] {c.statement}: measured" in printed, c.id
        assert report.MARKS[verdict(c)] in next(line for line in shown.split("\n") if md_cell(md_text(c.statement)) in line)
    assert "[FAILS]" not in printed and report.FAILS not in shown


def assert_figures_drawn(run, count: int | None = None) -> None:
    """The experiment listed ``count`` figures (any number, with None), and each is a PNG in the run's
    outputs with something drawn on it: a readable image of at least 300 x 200 pixels whose pixels are
    not all one colour."""
    from matplotlib.image import imread
    listed, found = run.extras.get("figures") or {}, dict(run.figure_files())
    if count is not None:
        assert len(listed) == count, sorted(listed)
    assert set(found) == set(listed), f"listed but not found in the run's outputs: {set(listed) - set(found)}"
    for title, path in found.items():
        pixels = imread(path)
        assert pixels.shape[0] >= 200 and pixels.shape[1] >= 300, (title, pixels.shape)
        assert float(pixels[..., :3].std()) > 0.01, f"{title}: a blank image"


# ---- a real TensorBoard server (tests/test_tensorboard.py, tests/test_browser.py) ----

STARTUP_TIMEOUT = 180  # seconds; importing TensorBoard on a busy 2-core machine takes a while


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TensorBoard:
    """One TensorBoard process; ``get``/``post`` talk JSON to its data API, bypassing any proxy.

    By default it reads every event file once, completely, before answering (no half-loaded runs in a
    test); ``as_make=True`` starts it as `make tensorboard` does (``python -m repro.tb LOGDIR --port N``:
    TensorBoard's defaults, and the addresses it prints, read back by ``addresses``), for the browser."""

    def __init__(self, logdir: Path, log_path: Path, as_make: bool = False):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.log = open(log_path, "w")
        if as_make:
            command = [sys.executable, "-m", "repro.tb", str(logdir), "--port", str(self.port)]
        else:
            command = [sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir), "--host", "127.0.0.1",
                       "--port", str(self.port), "--load_fast", "false", "--reload_interval", "0",
                       "--reload_task", "blocking"]
        self.proc = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT)
        self.opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def addresses(self) -> list[str]:
        """Every address of this server that it has printed, in order."""
        return re.findall(re.escape(self.base) + r"/\S*", self.log_path.read_text())

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
        if self.log.closed:
            return  # stopped already
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


@pytest.fixture(scope="module")
def tensorboard(tmp_path_factory):
    """``tensorboard(logdir, as_make=False)`` -> a started TensorBoard, stopped after the module."""
    started = []

    def start(logdir: Path, **kwargs) -> TensorBoard:
        srv = TensorBoard(logdir, tmp_path_factory.mktemp("tensorboard") / "server.log", **kwargs)
        started.append(srv)
        return srv
    yield start
    for srv in started:
        srv.stop()


TIMINGS = {"browser_timing": "TensorBoard in Chromium: seconds from opening the page",
           "notebook_timing": "The notebook tour"}


def pytest_terminal_summary(terminalreporter):
    """The times tests measured and recorded (the browser's page -> charts drawn, the notebook's run),
    at the end of the run."""
    reports = terminalreporter.stats.get("passed", []) + terminalreporter.stats.get("failed", [])
    for key, title in TIMINGS.items():
        lines = [value for report in reports for k, value in getattr(report, "user_properties", []) if k == key]
        if lines:
            terminalreporter.section(title)
            for line in lines:
                terminalreporter.write_line(line)
