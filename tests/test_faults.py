"""Faults injected where they happen: a full disk, a folder that refuses writes, signals, damaged trial
files, racing runs and values that cannot run. Each ends in one line (exit status 2, or a named
recovery) with nothing already written lost.

How each fault is made here:
- a full disk: os.write patched to write half of what it is given and raise ENOSPC (no small filesystem
  can be mounted without root tricks);
- a read-only folder: these tests run as root, whom chmod does not stop, so os.open and os.access are
  patched to refuse writes under the folder, as the system does for a user without write permission;
- signals: sent to a real `python -m repro run` subprocess; its workers are found in /proc.
"""
from __future__ import annotations

import errno
import json
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from repro import executor, runner
from repro.cli import main
from repro.config import TrialConfig
from repro.errors import ReproError
from repro.store import LOCK_NAME, RunLock, TrialStore, atomic_write, write_json

# 7 short trials: the course's 4 networks (100 steps) and the depth study's 3 at depth 5, one seed
TINY = ["vanishing", "--preset", "quick", "--seeds", "1", "--set", "iters=100", "--set", "depths=5",
        "--workers", "1", "--quiet"]


def run_cli(root: Path, *extra: str) -> int:
    return main(["run", *TINY, "--results", str(root / "results"), "--logdir", str(root / "runs"), *extra])


def results_file(root: Path) -> Path:
    return root / "results" / "vanishing" / "quick.json"


def trials_dir(root: Path) -> Path:
    return root / "results" / "vanishing" / "quick" / "trials"


def error_lines(capsys) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """A complete tiny run (results, trials, TensorBoard logs): each test works on a copy."""
    root = tmp_path_factory.mktemp("finished")
    assert run_cli(root) == 0
    return root


@pytest.fixture
def copy(finished, tmp_path) -> Path:
    shutil.copytree(finished, tmp_path / "run")
    return tmp_path / "run"


def no_training(monkeypatch) -> None:
    """Fail the test if any trial starts: the fault must be found before training."""
    def trained(*args, **kwargs):
        raise AssertionError("a trial started training")
    monkeypatch.setattr(runner, "execute_with_progress", trained)


# ---- a full disk ----

def fill_disk_on(monkeypatch, marker: bytes) -> None:
    """The disk fills while a write whose data holds ``marker`` is under way: half of it lands, then ENOSPC."""
    real_write = os.write

    def write(fd, data):
        if marker in bytes(data):
            real_write(fd, bytes(data)[:len(data) // 2])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)
    monkeypatch.setattr(os, "write", write)


def test_a_full_disk_keeps_the_earlier_file_and_leaves_no_temporary_file(tmp_path, monkeypatch):
    target = tmp_path / "quick.json"
    write_json(target, {"run": 1})
    fill_disk_on(monkeypatch, b'"run"')
    with pytest.raises(ReproError) as err:
        write_json(target, {"run": 2, "padding": "x" * 10000})
    message = str(err.value)
    assert "\n" not in message and str(target) in message and "No space left on device" in message
    assert "free some space" in message and "the earlier quick.json is unchanged" in message
    assert json.loads(target.read_text()) == {"run": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["quick.json"]


def test_a_failed_weights_write_leaves_no_temporary_file(tmp_path, monkeypatch):
    fill_disk_on(monkeypatch, b"weights")
    with pytest.raises(ReproError, match="cannot write .*k.pt"):
        atomic_write(tmp_path / "k.pt", b"weights" * 1000)
    assert list(tmp_path.iterdir()) == []


def test_a_full_disk_at_the_results_write_is_one_line_and_the_run_resumes(copy, monkeypatch, capsys):
    before = results_file(copy).read_bytes()
    fill_disk_on(monkeypatch, b'"claims"')
    assert run_cli(copy, "--resume") == 2
    (line,) = error_lines(capsys)
    assert line.startswith(f"error: cannot write {results_file(copy)} (No space left on device)")
    assert results_file(copy).read_bytes() == before
    assert not list((copy / "results").rglob("*.tmp"))
    monkeypatch.undo()
    assert run_cli(copy, "--resume") == 0  # space again: the stored trials are judged, nothing trains


def test_temporary_files_of_a_killed_write_are_removed_by_the_next_run(copy):
    old = time.time() - 3600
    stale = [results_file(copy).parent / "quick.json.k1ll3d.tmp", trials_dir(copy) / "abc.json.x7y8z9.tmp"]
    kept = [results_file(copy).parent / "full.json.0ther1.tmp",   # another preset's run may be writing it
            results_file(copy).parent / "notes.tmp",                # not ours
            results_file(copy).parent / "quick.json.n3wer0.tmp"]    # written after the lock was taken
    for path in stale + kept:
        path.write_text("half a file")
        os.utime(path, (old, old))
    future = time.time() + 3600
    os.utime(kept[-1], (future, future))
    assert run_cli(copy, "--resume") == 0
    assert not any(p.exists() for p in stale)
    assert all(p.exists() for p in kept)


# ---- a folder that refuses writes ----

def read_only(monkeypatch, folder: Path) -> None:
    """``folder`` and everything under it refuse writes, as for a user without write permission."""
    folder = str(folder)
    real_open, real_access = os.open, os.access
    writes = os.O_WRONLY | os.O_RDWR | os.O_CREAT

    def inside(path) -> bool:
        path = os.path.abspath(os.fspath(path))
        return path == folder or path.startswith(folder + os.sep)

    def open_(path, flags, *args, **kwargs):
        if flags & writes and inside(path):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fspath(path))
        return real_open(path, flags, *args, **kwargs)

    def access(path, mode, *args, **kwargs):
        return False if mode & os.W_OK and inside(path) else real_access(path, mode, *args, **kwargs)
    monkeypatch.setattr(os, "open", open_)
    monkeypatch.setattr(os, "access", access)


def test_a_read_only_results_folder_that_holds_a_run_is_one_line(copy, monkeypatch, capsys):
    assert (copy / "results" / "vanishing" / "quick" / LOCK_NAME).exists()
    kept = sorted(trials_dir(copy).iterdir())
    read_only(monkeypatch, copy / "results" / "vanishing" / "quick")
    no_training(monkeypatch)
    assert run_cli(copy) == 2  # not --resume: a fresh run would have removed the stored trials first
    (line,) = error_lines(capsys)
    assert str(copy / "results" / "vanishing" / "quick") in line and "Permission denied" in line
    assert "--results" in line
    assert sorted(trials_dir(copy).iterdir()) == kept


@pytest.mark.parametrize("where", ["logdir", "one trial's folder"])
def test_a_read_only_logdir_that_holds_runs_is_refused_before_training(copy, monkeypatch, capsys, where):
    logs = copy / "runs" / "vanishing" / "quick"
    folder = logs if where == "logdir" else next(logs.glob("*/seed0"))
    read_only(monkeypatch, folder)
    no_training(monkeypatch)
    assert run_cli(copy) == 2
    (line,) = error_lines(capsys)
    assert str(folder) in line and "--logdir" in line
    assert results_file(copy).exists() and len(list(trials_dir(copy).glob("*.json"))) == 7


# ---- damaged trial files ----

def damage(path: Path, how: str) -> None:
    if how == "truncated":
        path.write_bytes(path.read_bytes()[:200])
    elif how == "wrong shape":
        path.write_text("{}")
    elif how == "edited":
        record = json.loads(path.read_text())
        record["summary"]["final_test_acc"] = 0.99
        path.write_text(json.dumps(record))


def test_damaged_trials_are_named_and_trained_again_quiet_or_not(copy, capsys):
    original = {t["key"]: t for t in json.loads(results_file(copy).read_text())["trials"]}
    victims = sorted(trials_dir(copy).glob("*.json"))[:3]
    whys = {"truncated": "not valid JSON", "wrong shape": "not a trial record",
            "edited": "does not match its checksum"}
    for path, how in zip(victims, whys):
        damage(path, how)
    assert run_cli(copy, "--resume") == 0  # TINY has --quiet
    lines = error_lines(capsys)
    assert len(lines) == 3
    for line, path, why in zip(sorted(lines), victims, whys.values()):
        assert line.startswith(f"trial {path.stem} in {path} was damaged (") and why in line
        assert line.endswith("; training it again")
    results = json.loads(results_file(copy).read_text())
    assert results["resumed_trials"] == 4
    for t in results["trials"]:  # retrained to the same numbers; the edit is gone
        assert t["summary"] == original[t["key"]]["summary"]
        assert t["batch_loss"] == original[t["key"]]["batch_loss"]


class Spec:
    """What a TrialStore reads of a repro.executor.TrialSpec."""
    config = TrialConfig(iters=1)
    seed = 0
    device = "cpu"
    tag = "v"
    keep_state = True


def stored_with_weights(tmp_path: Path) -> tuple[TrialStore, Path]:
    import torch
    key = Spec.config.key(Spec.seed, Spec.device)
    result = {"config": Spec.config.to_dict(), "seed": 0, "key": key, "device": "cpu", "layers": ["fc1"], "status": "ok", "history": [],
              "batch_loss": [1.0], "summary": {"final_test_acc": 0.5}, "state": {"w": torch.ones(3)}}
    store = TrialStore(tmp_path / "run" / "trials", "test", resume=True)
    with store:
        store.save(result)
    return store, store.folder / f"{key}.pt"


@pytest.mark.parametrize("how", ["corrupt", "missing"])
def test_a_damaged_weights_file_is_named_and_trained_again(tmp_path, capsys, how):
    store, weights = stored_with_weights(tmp_path)
    with store:
        assert store.load(Spec)["state"]["w"].tolist() == [1.0, 1.0, 1.0]
        capsys.readouterr()
        if how == "corrupt":
            weights.write_bytes(weights.read_bytes()[:-20] + b"\0" * 20)
        else:
            weights.unlink()
        assert store.load(Spec) is None
    (line,) = error_lines(capsys)
    assert f"its weights file {weights.name}" in line and line.endswith("training it again")


def test_a_trial_file_under_another_trials_name_is_not_taken_for_it(tmp_path, capsys):
    store, _ = stored_with_weights(tmp_path)

    class Other(Spec):
        seed = 1
    with store:
        own = store._path(Spec, ".json")
        own.rename(store._path(Other, ".json"))
        assert store.load(Other) is None
    (line,) = error_lines(capsys)
    assert "it holds another trial's config or seed" in line


# ---- signals ----

def descendants(pid: int) -> set[int]:
    """Every living process below ``pid`` (from /proc)."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


# 300 steps, so that the run is still going when the first trial is saved
LONGER = ["run", *({"iters=100": "iters=300"}.get(a, a) for a in TINY[:-3])]  # TINY without --workers 1 --quiet


def start_run(root: Path) -> subprocess.Popen:
    # two workers: a pool worker that must not outlive the run
    return subprocess.Popen([sys.executable, "-m", "repro", *LONGER, "--workers", "2", "--quiet",
                             "--results", str(root / "results"), "--logdir", str(root / "runs")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def first_trial_saved(root: Path, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while not list(trials_dir(root).glob("*.json")):
        assert proc.poll() is None, proc.communicate()
        assert time.time() < deadline, "no trial finished in time"
        time.sleep(0.1)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGKILL], ids=lambda s: s.name)
def test_a_signal_ends_the_run_and_its_workers(tmp_path, sig):
    proc = start_run(tmp_path)
    first_trial_saved(tmp_path, proc)
    workers = descendants(proc.pid)
    assert workers, "the run has no worker process"
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)  # returns once every holder of the stderr pipe has exited
    deadline = time.time() + 10
    while any(alive(pid) for pid in workers) and time.time() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in workers if alive(pid)], "a worker outlived its run"
    assert "Traceback" not in err, err
    if sig != signal.SIGKILL:
        assert proc.returncode == 128 + sig
        assert err.splitlines() == [f"interrupted ({sig.name}); the finished trials are saved: the same command "
                                    f"with --resume goes on"]
    with TrialStore(trials_dir(tmp_path), "vanishing/quick", resume=True,
                    logdir=tmp_path / "runs" / "vanishing" / "quick"):
        pass  # the lock was released, on the results and on the logs
    assert not list(tmp_path.rglob("*.tmp"))
    if sig == signal.SIGTERM:  # the same command with --resume finishes (here in this process: no start-up)
        saved = len(list(trials_dir(tmp_path).glob("*.json")))
        assert main([*LONGER, "--workers", "1", "--quiet", "--resume", "--results", str(tmp_path / "results"),
                     "--logdir", str(tmp_path / "runs")]) == 0
        assert json.loads(results_file(tmp_path).read_text())["resumed_trials"] == saved


# ---- the lock ----

def _contend(folders, start, decided, rounds, held) -> None:
    for k in range(rounds):
        start.wait()
        try:
            with RunLock("race", [(Path(folders[k]), "--results")]):
                held.put(k)
                decided.wait()  # hold it until every process has tried
        except ReproError:
            decided.wait()


def test_eight_runs_starting_at_once_one_holds_the_lock(tmp_path):
    rounds, n = 20, 8
    folders = [str(tmp_path / f"round{k}") for k in range(rounds)]
    for folder in folders:
        os.mkdir(folder)
    context = multiprocessing.get_context("fork")  # the contenders need nothing but os and fcntl
    start, decided, held = context.Barrier(n), context.Barrier(n), context.Queue()
    procs = [context.Process(target=_contend, args=(folders, start, decided, rounds, held)) for _ in range(n)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    holders = [held.get(timeout=10) for _ in range(held.qsize())]
    assert sorted(holders) == list(range(rounds)), "every round: exactly one holder"


def test_one_logdir_is_one_run_whatever_the_results_folder(tmp_path):
    logs = tmp_path / "runs" / "vanishing" / "quick"
    logs.mkdir(parents=True)
    with TrialStore(tmp_path / "a" / "vanishing" / "quick" / "trials", "vanishing/quick", False, logdir=logs):
        with pytest.raises(ReproError, match=f"another run of vanishing/quick is in progress .*{logs / LOCK_NAME}"):
            with TrialStore(tmp_path / "b" / "vanishing" / "quick" / "trials", "vanishing/quick", False, logdir=logs):
                pass
    with TrialStore(tmp_path / "b" / "vanishing" / "quick" / "trials", "vanishing/quick", False, logdir=logs):
        pass


# ---- values that cannot run ----

@pytest.mark.parametrize("command, expected", [
    (["run", "vanishing", "--set", "init=normal:-1"], "init=normal:-1: use normal:<std> with a finite number not below 0"),
    (["run", "vanishing", "--set", "widths=1000000000"], "widths=1000000000, batch_size=100: a trial would need about"),
    (["run", "vanishing", "--set", "iters=1e9"], "iters=1000000000: a trial would need about"),
    (["train", "--set", "model=cnn", "--set", "conv=99999x999"], "conv=99999x999, widths=100,100,100,100, batch_size=100: "
                                                                 "a trial would need about"),
    (["run", "batchnorm", "--set", "scales=2"], "scales=2: the claims judge BN at weight scales in [0.002, 0.05]"),
    (["run", "vanishing", "--set", "lr=inf"], "lr=inf: must be a finite number"),
], ids=["negative-std", "widths", "iters", "conv", "batchnorm-scales", "inf-lr"])
def test_values_that_cannot_run_are_refused_before_training(tmp_path, monkeypatch, capsys, command, expected):
    for name in ("run_trial", "_execute_local"):  # the memory check is in executor.execute, before these
        monkeypatch.setattr(executor, name, lambda *a, **k: pytest.fail("a trial started training"))
    if command[0] == "run":
        command += ["--preset", "quick", "--workers", "1", "--quiet", "--results", str(tmp_path / "results")]
    assert main([*command, "--logdir", str(tmp_path / "runs")]) == 2
    (line,) = error_lines(capsys)
    assert line.startswith(f"error: {expected}"), line
    if "need about" in expected:
        assert "available; make" in line


def test_batch_indices_drawn_in_chunks_are_the_stream_of_one_draw(monkeypatch):
    from conftest import random_dataset
    from repro import engine
    from repro.config import TrialConfig
    cfg = TrialConfig(widths=(20,), iters=25, eval_every=5, batch_size=16, train_eval_size=100)
    whole = engine.train(cfg, 3, random_dataset())
    monkeypatch.setattr(engine, "BATCH_CHUNK", 7)
    chunked = engine.train(cfg, 3, random_dataset())
    assert chunked["batch_loss"] == whole["batch_loss"] and chunked["history"] == whole["history"]

