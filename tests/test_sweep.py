"""Sweeps: grids x seeds under the local executor and under Ray, resume after a kill, grid errors."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from repro.cli import main
from repro.config import TrialConfig, apply_overrides
from repro.executor import TrialSpec, run_trial
from repro.experiment import stats
from repro.sweep import sweep_name

# 2 x 2 cells x 2 seeds of a small MLP on a 2000-image train subset: 8 trials of 150 steps
GRID = ["--grid", "optimizer=sgd,adam", "--grid", "lr=0.01,0.1"]
SETS = {"iters": "150", "train_size": "2000", "test_size": "1000", "train_eval_size": "1000",
        "widths": "50,50", "eval_every": "50"}
SEEDS = 2
NAME = sweep_name({"optimizer": ["sgd", "adam"], "lr": [0.01, 0.1]})
CELLS = ["optimizer=sgd lr=0.01", "optimizer=sgd lr=0.1", "optimizer=adam lr=0.01", "optimizer=adam lr=0.1"]


def _argv(tmp: Path, *extra: str) -> list[str]:
    sets = [arg for key, value in SETS.items() for arg in ("--set", f"{key}={value}")]
    # on the CPU: the numbers are compared to the bit with a CPU trial (repro train)
    return ["sweep", *GRID, *sets, "--seeds", str(SEEDS), "--device", "cpu", "--quiet", "--results", str(tmp / "results"),
            "--logdir", str(tmp / "runs"), *extra]


def _cli(tmp: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "repro", *_argv(tmp, *extra)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _results_path(tmp: Path) -> Path:
    return tmp / "results" / "sweeps" / f"{NAME}.json"


def _numbers(results: dict) -> dict:
    """(cell, seed) -> everything a trial measured: its evaluation history and its summary."""
    return {(t["cell"], t["seed"]): (t["history"], t["summary"], t["status"]) for t in results["trials"]}


@pytest.fixture(scope="module")
def local_sweep(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sweep-local")
    assert main(_argv(tmp, "--executor", "local", "--workers", "2")) == 0
    return tmp, json.loads(_results_path(tmp).read_text())


def test_every_cell_gets_every_seed_and_its_statistics(local_sweep):
    _, results = local_sweep
    assert list(results["cells"]) == CELLS
    assert sorted((t["cell"], t["seed"]) for t in results["trials"]) == sorted(
        (c, s) for c in CELLS for s in range(SEEDS))
    for name, cell in results["cells"].items():
        trials = [t for t in results["trials"] if t["cell"] == name]
        assert cell["config"]["iters"] == 150 and cell["config"]["widths"] == [50, 50]
        assert cell["config"]["optimizer"] == cell["params"]["optimizer"]
        assert cell["config"]["lr"] == float(cell["params"]["lr"])
        assert cell["aggregate"]["final_test_acc"] == stats([t["summary"]["final_test_acc"] for t in trials])
        assert cell["aggregate"]["diverged"] == sum(t["status"] == "diverged" for t in trials)
    means = {name: c["aggregate"]["final_test_acc"]["mean"] for name, c in results["cells"].items()}
    assert results["best"]["final_test_acc"]["cell"] == max(means, key=lambda n: means[n] or -1)
    losses = {name: c["aggregate"]["final_test_loss"]["mean"] for name, c in results["cells"].items()}
    assert results["best"]["final_test_loss"]["cell"] == min(losses, key=lambda n: losses[n] or 1e9)
    # the cells did learn: chance is 0.1, and the worst cell of this grid reached about 0.8 when measured
    assert results["best"]["final_test_acc"]["mean"] > 0.5


def test_a_sweep_trial_is_the_same_trial_as_repro_train(local_sweep):
    _, results = local_sweep
    trial = next(t for t in results["trials"] if t["cell"] == "optimizer=adam lr=0.01" and t["seed"] == 1)
    cfg = apply_overrides(TrialConfig(), {**SETS, "optimizer": "adam", "lr": 0.01})
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as every worker runs: one intra-op thread
    try:
        alone = run_trial(TrialSpec(cfg, 1, "cpu"))
    finally:
        torch.set_num_threads(threads)
    assert alone["summary"] == trial["summary"] and alone["history"] == trial["history"]


def test_table_is_sorted_by_the_metric(local_sweep, capsys):
    tmp, results = local_sweep
    assert main(_argv(tmp, "--resume", "--metric", "final_test_loss")) == 0  # all resumed: nothing trains
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("sgd") or line.startswith("adam")]
    assert len(rows) == len(CELLS)
    printed = [float(row.split()[2]) for row in rows]
    assert printed == sorted(printed)  # loss: lowest first
    assert "4 cells x 2 seeds = 8 trials (8 resumed)" in out


def test_tensorboard_has_one_run_per_trial_with_the_grid_in_its_hparams(local_sweep):
    from google.protobuf import json_format
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    from tensorboard.plugins.hparams import plugin_data_pb2
    tmp, results = local_sweep
    for t in results["trials"]:
        folder = tmp / "runs" / "sweeps" / NAME / t["cell"].replace(" ", "_") / f"seed{t['seed']}"
        (events,) = folder.glob("events.out.tfevents.*")
        hparams = None
        for event in EventFileLoader(str(events)).Load():
            for value in event.summary.value:
                if value.metadata.plugin_data.plugin_name == "hparams":
                    data = plugin_data_pb2.HParamsPluginData.FromString(value.metadata.plugin_data.content)
                    if data.HasField("session_start_info"):
                        hparams = json_format.MessageToDict(data.session_start_info)["hparams"]
        assert hparams is not None, folder
        assert hparams["cell"] == t["cell"] and hparams["sweep"] == NAME and hparams["seed"] == t["seed"]
        assert hparams["optimizer"] == t["config"]["optimizer"] and hparams["lr"] == t["config"]["lr"]


@pytest.fixture(scope="module")
def ray_instance():
    ray = pytest.importorskip("ray", reason="the ray extra is not installed (pip install -e '.[ray]'; "
                                             "make test installs it)")
    context = ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield context.address_info["address"]
    ray.shutdown()


def test_ray_sweep_gives_the_same_numbers_as_local(local_sweep, ray_instance, tmp_path):
    # the CLI joins the Ray instance this test started, as a driver on a cluster would
    # with --deterministic, which every Ray task must apply itself (it changes no CPU number)
    proc = _cli(tmp_path, "--executor", "ray", "--address", ray_instance, "--deterministic")
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    assert "optimizer  lr" in out and f"results in {_results_path(tmp_path)}" in out
    on_ray = json.loads(_results_path(tmp_path).read_text())
    assert on_ray["env"]["executor"] == "ray" and on_ray["env"]["numerics"]["deterministic"]
    assert all(t["numerics"] == {"deterministic": True, "tf32_matmul": False, "tf32_cudnn": False,
                                 "cublas_workspace_config": ":4096:8"} for t in on_ray["trials"])
    _, local = local_sweep
    assert _numbers(on_ray) == _numbers(local)
    assert on_ray["cells"] == local["cells"]


def test_killed_sweep_resumes_to_the_same_numbers(local_sweep, tmp_path):
    proc = _cli(tmp_path, "--workers", "1")  # one trial after another, so the kill lands between trials
    trials = tmp_path / "results" / "sweeps" / NAME / "trials"
    deadline = time.time() + 300
    while len(list(trials.glob("*.json"))) < 1:
        assert proc.poll() is None, proc.stderr.read()
        assert time.time() < deadline, "no trial finished in time"
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    saved = len(list(trials.glob("*.json")))
    assert 1 <= saved < len(CELLS) * SEEDS
    assert not _results_path(tmp_path).exists()

    resumed = _cli(tmp_path, "--resume")
    out, err = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, err
    results = json.loads(_results_path(tmp_path).read_text())
    assert results["resumed_trials"] == saved
    assert _numbers(results) == _numbers(local_sweep[1])
    for seed_dir in (tmp_path / "runs" / "sweeps" / NAME).glob("*/seed*"):
        assert len(list(seed_dir.glob("events.out.tfevents.*"))) == 1, seed_dir  # the killed attempt replaced


@pytest.mark.parametrize("grid, message", [
    ("lr=abc", "--grid lr=abc: 'abc' is not a valid lr"),
    ("lr=0.1,-1", "--grid lr=0.1,-1: '-1' is not a valid lr (the learning rate must be positive)"),
    ("depth=2,3", "--grid depth=2,3: unknown config key 'depth'"),
    ("optimizer=sgd,sgd", "--grid optimizer=sgd,sgd: 'sgd' is listed twice"),
    ("lr", "--grid lr: expected KEY=V1,V2,..."),
])
def test_bad_grid_is_one_line_and_exit_2(grid, message, tmp_path, capsys):
    assert main(["sweep", "--grid", grid, "--results", str(tmp_path), "--logdir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {message}") and err.count("\n") == 1, err
    assert not list(tmp_path.iterdir())  # nothing was started


def test_bad_grid_from_the_shell_is_one_line_and_exit_2():
    proc = subprocess.run([sys.executable, "-m", "repro", "sweep", "--grid", "lr=abc"], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.splitlines() == ["error: --grid lr=abc: 'abc' is not a valid lr "
                                        "(could not convert string to float: 'abc')"]


def test_ray_executor_without_ray_installed_says_how_to_install(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError
    for command in (["sweep", "--grid", "lr=0.1"], ["run", "vanishing", "--preset", "quick"]):
        assert main([*command, "--executor", "ray", "--results", str(tmp_path), "--logdir", str(tmp_path)]) == 2
        err = capsys.readouterr().err
        assert err == "error: --executor ray: the ray package is not installed; install it with " \
                      "pip install -e '.[ray]' (or make setup-ray)\n"


def test_address_without_ray_executor_is_refused(tmp_path, capsys):
    assert main(["sweep", "--grid", "lr=0.1", "--address", "auto", "--results", str(tmp_path)]) == 2
    assert capsys.readouterr().err == "error: --address auto: only --executor ray joins a cluster\n"
