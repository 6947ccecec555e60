"""Unit tests of the core: config parsing, data verification, probes, the loop's determinism, the CLI."""
from __future__ import annotations

import gzip
import hashlib
import json
import subprocess
import sys

import pytest
import torch

from conftest import random_dataset
from repro import data
from repro.config import ConfigError, TrialConfig, apply_overrides, coerce, value_text
from repro.nets import build_mlp, weighted_layers
from repro.probes import GradNormProbe, activation_stats
from repro.experiment import blows_up_at, diverged, ends_above_start, stats
from repro.results import Trial
from repro.engine import train

SMALL = TrialConfig(widths=(16, 8), iters=30, batch_size=20, eval_every=10, train_eval_size=200)


@pytest.fixture(scope="module")
def tiny_data():
    return random_dataset(0)


# ---- config ----

def test_parse_values_follow_field_types():
    assert coerce("lr", "0.05") == 0.05
    assert coerce("widths", "40,20") == (40, 20)
    assert coerce("batchnorm", "true") is True
    assert coerce("train_size", "none") is None
    assert coerce("iters", "1e3") == 1000


def test_python_values_travel_as_values():
    """The API passes values, not text: checked and normalised without a round trip through --set's syntax."""
    assert coerce("lr", 1) == 1.0 and isinstance(coerce("lr", 1), float)
    assert coerce("widths", [40, 20]) == (40, 20)
    assert coerce("iters", 1000.0) == 1000 and coerce("train_size", None) is None
    for key, value in (("batchnorm", 1), ("lr", True), ("iters", 2.5), ("widths", 40), ("activation", 3)):
        with pytest.raises(ConfigError, match=f"--set {key}="):
            coerce(key, value)
    assert [value_text(v) for v in (0.05, (100, 100), True, None, "he")] == ["0.05", "100,100", "true", "none", "he"]


@pytest.mark.parametrize("text, message", [
    ({"lr": "-1"}, "learning rate must be positive"),
    ({"batch_size": "0"}, "batch_size"),
    ({"iters": "abc"}, "--set iters=abc"),
    ({"activation": "sinc"}, "activation=sinc"),
    ({"init": "uniform"}, "init=uniform"),
    ({"nonsense": "1"}, "unknown config key 'nonsense'"),
    ({"dropout": "1.0"}, "dropout"),
])
def test_bad_values_are_one_line_errors(text, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")) as err:
        apply_overrides(TrialConfig(), text)
    assert "\n" not in str(err.value)


def test_trial_key_depends_on_config_and_seed():
    assert SMALL.key(0, "cpu") == SMALL.key(0, "cpu")
    assert SMALL.key(0, "cpu") != SMALL.key(1, "cpu")
    assert SMALL.key(0, "cpu") != SMALL.replace(lr=0.02).key(0, "cpu")
    # --resume never mixes CPU and CUDA trials; any GPU index of the same kind may finish a run
    assert SMALL.key(0, "cpu") != SMALL.key(0, "cuda") == SMALL.key(0, "cuda:1")


# ---- data ----

def _write_idx(folder, name, payload: bytes, gz=False):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (name + (".gz" if gz else ""))
    path.write_bytes(gzip.compress(payload) if gz else payload)
    return path


def test_corrupt_file_is_named_and_moved_aside(tmp_path, monkeypatch):
    raw = data.raw_dir("mnist", tmp_path)
    path = _write_idx(raw, "t10k-labels-idx1-ubyte", b"not mnist")
    monkeypatch.setitem(data.SOURCES["mnist"].md5, "t10k-labels-idx1-ubyte", "0" * 32)
    with pytest.raises(data.DataError, match="t10k-labels-idx1-ubyte.*moved aside"):
        data._read_verified(path, data.SOURCES["mnist"].md5["t10k-labels-idx1-ubyte"])
    assert not path.exists() and path.with_name(path.name + ".bad").exists()


def test_gzipped_file_is_checked_on_its_decompressed_bytes(tmp_path):
    payload = b"\x00\x00\x08\x01" + bytes(12)
    path = _write_idx(tmp_path, "x-idx1-ubyte", payload, gz=True)
    assert data._read_verified(path, hashlib.md5(payload).hexdigest()) == payload


def test_truncated_gzip_is_an_error(tmp_path):
    path = tmp_path / "x-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(b"0123456789" * 100)[:20])
    with pytest.raises(data.DataError, match="unreadable"):
        data._read_verified(path, "0" * 32)


def test_mnist_cache_loads_with_subsets():
    ds = data.load("mnist", train_size=500, test_size=100)
    assert ds.x_train.shape == (500, 784) and ds.x_test.shape == (100, 784)
    assert 0.0 <= float(ds.x_train.min()) and float(ds.x_train.max()) <= 1.0
    assert set(ds.y_test.tolist()) <= set(range(10))
    with pytest.raises(data.DataError, match="train_size=70000 is out of range"):
        data.load("mnist", train_size=70000)


# ---- probes ----

def test_grad_norm_probe_matches_hand_computation():
    model = build_mlp(SMALL, generator=torch.Generator().manual_seed(1))
    probe = GradNormProbe(model, steps=1)
    x, y = torch.rand(5, 784), torch.tensor([0, 1, 2, 3, 4])
    torch.nn.functional.cross_entropy(model(x), y).backward()
    probe.record(0)
    expected = [float(m.weight.grad.norm()) for _, m in weighted_layers(model)]
    total = float(torch.sqrt(sum((p.grad ** 2).sum() for p in model.parameters())))
    assert probe.layers == ["fc1", "fc2", "fc3"]
    assert probe.buffer[0, :-1].tolist() == pytest.approx(expected, rel=1e-6)
    assert float(probe.buffer[0, -1]) == pytest.approx(total, rel=1e-6)


def test_activation_stats_saturation_and_dead_share():
    s = activation_stats(torch.tensor([0.01, 0.5, 0.97, 0.999]), "sigmoid")
    assert float(s["saturated"]) == 0.75
    r = activation_stats(torch.tensor([0.0, 0.0, 1.0, 2.0]), "relu")
    assert float(r["dead"]) == 0.5 and float(r["saturated"]) == 0.0
    t = activation_stats(torch.tensor([-0.99, 0.0, 0.96, 0.5]), "tanh")
    assert float(t["saturated"]) == 0.5


def test_stats_give_mean_sd_and_t_interval():
    s = stats([1.0, 2.0, 3.0, float("nan")])
    assert s["n"] == 3 and s["mean"] == 2.0 and s["std"] == 1.0
    assert s["ci95"] == pytest.approx([2.0 - 4.302653 / 3 ** 0.5, 2.0 + 4.302653 / 3 ** 0.5], rel=1e-5)


# ---- the training loop ----

def test_same_seed_same_history_other_seed_differs(tiny_data):
    a = train(SMALL, 3, tiny_data)
    b = train(SMALL, 3, tiny_data)
    c = train(SMALL, 4, tiny_data)
    assert json.dumps(a["history"]) == json.dumps(b["history"]) and a["batch_loss"] == b["batch_loss"]
    assert a["batch_loss"] != c["batch_loss"]


def test_every_layer_has_a_gradient_norm_at_every_evaluation(tiny_data):
    result = train(SMALL, 0, tiny_data)
    assert [p["step"] for p in result["history"]] == [10, 20, 30]
    for point in result["history"]:
        assert set(point["grad_norm"]) == {"fc1", "fc2", "fc3", "total"}
        assert set(point["activations"]) == {"act1", "act2"}
    assert len(result["batch_loss"]) == 30


def test_learning_rate_10_is_recorded_as_diverged():
    # the book's ReLU network with SGD at lr 10 overflows to NaN within a few steps (step 5 for seed 0)
    mnist = data.load("mnist", train_size=2000, test_size=500)
    result = train(TrialConfig(lr=10.0, iters=50, eval_every=10, train_eval_size=500), 0, mnist)
    assert diverged(Trial.from_engine(result, "lr10")) and result["status"] == "diverged" and 1 <= result["diverged_at"] <= 50
    assert len(result["batch_loss"]) == result["diverged_at"] and result["history"][-1]["diverged"]
    assert result["summary"]["diverged"] and result["summary"]["final_test_acc"] != result["summary"]["final_test_acc"]


def test_one_divergence_rule_and_the_named_views_beside_it(tiny_data):
    """Diverged means a NaN/inf loss (the engine stops there); a finite blow-up or a run that ends
    above its start are other, named views that never change the engine's verdict."""
    result = Trial.from_engine(train(SMALL, 0, tiny_data), "small")
    assert not diverged(result) and result.status == "ok"
    blown = Trial("blown", 0, {}, "k", [], "ok", None, [], [2.0, 2.5, 25.0, 1.0], [], {"final_train_loss": 4.5}, 0.0)
    assert not diverged(blown)
    assert blows_up_at(blown, 10.0) == 3 and blows_up_at(blown, 20.0) is None
    assert ends_above_start(blown, 2.0) and not ends_above_start(blown, 2.5)


# ---- the command line ----

def _cli(*args):
    return subprocess.run([sys.executable, "-m", "repro", *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("args, message", [
    (("run", "nosuch"), "unknown experiment 'nosuch'"),
    (("run", "vanishing", "--preset", "huge"), "unknown preset 'huge'"),
    (("run", "vanishing", "--set", "lr=fast"), "--set lr=fast"),
    (("run", "vanishing", "--set", "bogus=1"), "unknown key 'bogus'"),
    (("train", "--set", "batch_size=0"), "batch_size=0"),
    (("train", "--set", "train_size=70000", "--set", "iters=1"), "train_size=70000 is out of range"),
])
def test_cli_errors_are_one_line_and_exit_2(args, message):
    proc = _cli(*args)
    assert proc.returncode == 2
    assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert "Traceback" not in proc.stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message given when no GPU is present")
def test_cuda_without_gpu_is_a_clear_error():
    proc = _cli("train", "--device", "cuda", "--set", "iters=1")
    assert proc.returncode == 2 and "no CUDA GPU" in proc.stderr


def test_train_prints_final_metrics_as_json(tmp_path):
    proc = _cli("train", "--device", "cpu", "--set", "iters=50", "--set", "lr=0.1", "--set", "widths=32", "--set", "train_size=2000",
                "--set", "eval_every=50", "--logdir", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    final = json.loads(proc.stdout.strip().splitlines()[-1])
    assert final["status"] == "ok" and 0.3 < final["final_test_acc"] <= 1.0
    assert {"final_train_acc", "final_train_loss", "final_test_loss", "grad_ratio_first_last", "wall_time"} <= set(final)
